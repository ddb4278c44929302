#!/usr/bin/env bash
# Make sure the test tools that do not come with Cargo are installed, at the versions
# deploy/local/requirements-test.txt pins: today schemathesis (PyPI), which the contract
# tests run against both builds. Installs with the `python3` on PATH, the same interpreter
# the tests run it with (`python3 -m schemathesis.cli`); does nothing when already there.
set -euo pipefail
cd "$(dirname "$0")/../.."

requirements=deploy/local/requirements-test.txt
pin=$(sed -n 's/^schemathesis==//p' "$requirements")

if ! command -v python3 >/dev/null; then
  echo "ensure-tools: python3 is missing; install Python 3.9 or newer with pip (e.g. apt-get install python3-pip)" >&2
  exit 1
fi
have=$(python3 -m schemathesis.cli --version 2>/dev/null | sed -n 's/.*version //p' || true)
if [ "$have" = "$pin" ]; then
  echo "schemathesis $have"
  exit 0
fi
echo "installing schemathesis $pin (found: ${have:-none})"
python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r "$requirements"
python3 -m schemathesis.cli --version
