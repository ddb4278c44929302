#!/usr/bin/env bash
# The moves of docs/evolution.md, measured on release builds (`make evolution`):
#  1. notifications moved out of the running monolith under a purchase load (archlab migrate),
#     the hybrid started on the moved rows, audited; then moved back and audited again;
#  2. what one more process costs: a second payments-service replica against a second monolith,
#     each balanced by the gateway.
# Loopback only, every load bounded in time; fresh databases, dropped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${ARCHLAB_BIN_DIR:-target/release}
PG=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432}
tag=evo$(date +%s)
OUT=$(mktemp -d)
export DATABASE_URL=$PG NO_COLOR=1 RUST_LOG=warn
# A load generator is one address hammering a few accounts: the abuse limits off, as in compare.
export AUTH_LIMIT_PER_ADDRESS_PER_MINUTE=0 AUTH_LIMIT_PER_ACCOUNT_PER_HOUR=0 PASSWORD_HASH_CONCURRENCY=0
export MONOLITH_DATABASE=${tag}_monolith NOTIFICATIONS_DATABASE=${tag}_notifications
export AUTH_DATABASE=${tag}_auth USERS_DATABASE=${tag}_users PAYMENTS_DATABASE=${tag}_payments
export AMQP_EXCHANGE=$tag.events AMQP_QUEUE=$tag.notifications AMQP_QUEUE_EXPIRES_MS=600000

# One extsim for the whole run: it keeps the charges and emails the audits compare against,
# across the builds started one after the other.
"$BIN/extsim" >"$OUT/extsim.log" 2>&1 &
extsim=$!
for _ in $(seq 1 100); do curl -sf http://127.0.0.1:8090/health >/dev/null && break; sleep 0.1; done

pid=
up() { # up <log> <archlab up args...>: start, wait for the ready line
  local log=$OUT/$1; shift
  "$BIN/archlab" up --no-extsim "$@" >"$log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do
    grep -q "ready in" "$log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.1
  done
  cat "$log"; exit 1
}
down() { kill -TERM "$pid"; wait "$pid" || true; }
cleanup() {
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  kill -TERM "$extsim" 2>/dev/null && wait "$extsim" 2>/dev/null
  for db in $MONOLITH_DATABASE $NOTIFICATIONS_DATABASE $AUTH_DATABASE $USERS_DATABASE $PAYMENTS_DATABASE; do
    psql "$PG/postgres" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
  rm -rf "$OUT"
}
trap cleanup EXIT
load() { # load <target> <rate> <seconds>: purchases, open loop; prints the summary line
  "$BIN/archlab" load --target "$1" --scenario purchase --rate "$2" --duration-s "$3" --warmup-s 0 2>&1 |
    grep -E "^window|^errors|^\(ms\)|^latency"
}
audit() { "$BIN/archlab" audit "$@" 2>&1 | grep -vE "^  [a-z_]+ +0$|^violations per kind" || true; }

echo "== 1. notifications out of the running monolith, under load, and back"
up monolith.log monolith
load http://127.0.0.1:8080 50 20 >/dev/null
echo "-- extract, while 30 purchases a second keep coming:"
load http://127.0.0.1:8080 30 12 >"$OUT/load-extract" &
loader=$!
sleep 4
"$BIN/archlab" migrate extract notifications
wait $loader
echo "-- the purchase load meanwhile:"; cat "$OUT/load-extract"
echo "-- refused writes the monolith logged after the switch (each an outbox event kept for later):"
grep -c "the module has moved" "$OUT/monolith.log" || true
down
up hybrid.log hybrid --extract notifications
load http://127.0.0.1:8000 30 8 >/dev/null
echo "-- the hybrid, on the moved rows, after 8 s of purchases through the gateway:"
audit hybrid --extract notifications
down
echo "-- consolidate:"
"$BIN/archlab" migrate consolidate notifications
up monolith-again.log monolith
load http://127.0.0.1:8080 30 5 >/dev/null
echo "-- the monolith again, audited:"
audit monolith
down

echo "== 2. one more process: a payments-service replica against a whole monolith"
rss() { ps -o rss= -p "$1" | awk '{printf "%.1f MB", $1/1024}'; }
conns() { psql "$PG/postgres" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = '$1' AND pid <> pg_backend_pid()"; }
up micro.log micro --replicas payments=2
load http://127.0.0.1:8000 40 10 >/dev/null
first=$(pgrep -f "$BIN/payments-service" | head -1); second=$(pgrep -f "$BIN/payments-service" | tail -1)
echo "payments-service: $(rss "$first"), payments-service-2: $(rss "$second"), connections to ${PAYMENTS_DATABASE}: $(conns "$PAYMENTS_DATABASE") (both replicas)"
down
up monolith-two.log monolith --replicas monolith=2
load http://127.0.0.1:8000 40 10 >/dev/null
first=$(pgrep -f "$BIN/monolith" | head -1); second=$(pgrep -f "$BIN/monolith" | tail -1)
echo "monolith: $(rss "$first"), monolith-2: $(rss "$second"), connections to ${MONOLITH_DATABASE}: $(conns "$MONOLITH_DATABASE") (both)"
down
