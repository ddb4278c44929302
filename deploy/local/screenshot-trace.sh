#!/usr/bin/env bash
# Reproduce docs/images/trace-waterfall.png, the waterfall page of the README's
# "Look at a trace" section: one real purchase through the microservices.
#
# Starts `archlab traces serve` on spare ports, runs `archlab up micro` (sync notifications,
# so the whole purchase is one request's timeline) exporting to it, signs a user up, makes
# two purchases through the gateway, waits until the second's trace has stopped growing,
# and screenshots its page with headless Chromium (Debian: apt-get install chromium).
# Everything stays on loopback and stops when the script ends. The build's ports and
# databases are `make run-micro`'s: stop a running lab first.
#
#   deploy/local/screenshot-trace.sh                 # writes docs/images/trace-waterfall.png
#   deploy/local/screenshot-trace.sh shot.png         # elsewhere
set -euo pipefail
cd "$(dirname "$0")/../.."

out=${1:-docs/images/trace-waterfall.png}
otlp=127.0.0.1:${TRACES_OTLP_PORT:-14317}
http=127.0.0.1:${TRACES_HTTP_PORT:-16697}
gateway=http://${GATEWAY_ADDR:-127.0.0.1:8000}
# ARCHLAB_BIN_DIR: where the binaries are, as for `archlab up`.
bin=${ARCHLAB_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
chromium=${CHROMIUM:-chromium}

command -v "$chromium" >/dev/null || { echo "$chromium not found; on Debian: apt-get install chromium" >&2; exit 1; }
cargo build --release --workspace --bins

pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# Wait until `url` answers 2xx, at most 60 s.
wait_for() {
  local deadline=$((SECONDS + 60))
  until curl -sf -o /dev/null "$1"; do
    [ $SECONDS -lt $deadline ] || { echo "$1 did not answer within 60 s" >&2; exit 1; }
    sleep 0.2
  done
}

"$bin/archlab" traces serve --addr "$otlp" --http "$http" &
pids+=($!)
wait_for "http://$http/api/stats"

OTEL_EXPORTER_OTLP_ENDPOINT="http://$otlp" NOTIFICATION_MODE=sync "$bin/archlab" up micro >/dev/null &
pids+=($!)
wait_for "$gateway/ready"

email="screenshot-$(date +%s)-$RANDOM@example.com"
token=$(curl -sf -X POST "$gateway/api/auth/signup" -H 'content-type: application/json' \
  -d "{\"email\": \"$email\", \"password\": \"correct horse battery\", \"name\": \"Ada Lovelace\"}" | jq -r .token)
headers=$(mktemp)
trap 'rm -f "$headers"; cleanup' EXIT
# Two purchases; the picture is the second's. The first pays for what a fresh process does
# once: the services' lazily opened connections to each other (tens of milliseconds).
for n in 1 2; do
  curl -sf -D "$headers" -o /dev/null -X POST "$gateway/api/payments" -H "authorization: Bearer $token" \
    -H "idempotency-key: screenshot-$n-$RANDOM$RANDOM" -H 'content-type: application/json' \
    -d '{"amount_cents": 1200, "currency": "EUR"}'
done
trace=$(awk 'tolower($1) == "traceparent:" {split($2, p, "-"); print p[2]}' "$headers")
[ -n "$trace" ] || { echo "the purchase answered without a traceparent" >&2; exit 1; }

# The processes export every second: the trace is whole once its span count holds for 3 s.
last=-1 still=0 deadline=$((SECONDS + 60))
while [ $still -lt 3 ]; do
  [ $SECONDS -lt $deadline ] || { echo "trace $trace kept changing for 60 s" >&2; exit 1; }
  sleep 1
  n=$(curl -s "http://$http/api/traces/$trace" | jq length)
  if [ "$n" -gt 0 ] && [ "$n" -eq "$last" ]; then still=$((still + 1)); else still=0; fi
  last=$n
done

mkdir -p "$(dirname "$out")"
"$chromium" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --window-size=1400,1000 --screenshot="$PWD/$out" "http://$http/trace/$trace" 2>/dev/null
echo "wrote $out (trace $trace, $last spans; the page was http://$http/trace/$trace)"
