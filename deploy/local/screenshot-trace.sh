#!/usr/bin/env bash
# Reproduce docs/images/trace-waterfall.png, the waterfall page of the README's
# "Look at a trace" section.
#
# Starts `archlab traces serve` on spare ports, sends it the two demonstration traces of
# bench/traces/examples/demo-trace.rs through the OpenTelemetry SDK's OTLP exporter, and
# screenshots the microservices trace's page with headless Chromium (Debian: apt-get install
# chromium). Everything stays on loopback and stops when the script ends.
#
#   deploy/local/screenshot-trace.sh                 # writes docs/images/trace-waterfall.png
#   deploy/local/screenshot-trace.sh shot.png         # elsewhere
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-docs/images/trace-waterfall.png}
otlp=127.0.0.1:${TRACES_OTLP_PORT:-14317}
http=127.0.0.1:${TRACES_HTTP_PORT:-16697}
# ARCHLAB_BIN_DIR: where archlab and examples/demo-trace are, as for `archlab up`.
bin=${ARCHLAB_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
chromium=${CHROMIUM:-chromium}

command -v "$chromium" >/dev/null || { echo "$chromium not found; on Debian: apt-get install chromium" >&2; exit 1; }
cargo build --release -p archlab-harness -p archlab-traces --example demo-trace

"$bin/archlab" traces serve --addr "$otlp" --http "$http" &
serve=$!
trap 'kill "$serve" 2>/dev/null; wait "$serve" 2>/dev/null || true' EXIT

# The page's port answering is the signal that the receiver is up too (it starts first).
deadline=$((SECONDS + 30))
until (exec 3<>"/dev/tcp/${http%:*}/${http#*:}") 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "archlab traces serve did not start" >&2; exit 1; }
  sleep 0.2
done

# The example exits after its exporters have flushed, and the receiver stores a batch before
# it answers the export, so the traces are complete when it prints their ids.
ids=$("$bin/examples/demo-trace" "http://$otlp")
echo "$ids"
micro=$(awk '$1 == "micro" {print $2}' <<<"$ids")

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1400,900 --screenshot="$PWD/$out" "http://$http/trace/$micro" 2>/dev/null
echo "wrote $out (trace $micro; the page was http://$http/trace/$micro)"
