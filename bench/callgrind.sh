#!/usr/bin/env bash
# Instructions per request of `GET /api/users/me`, counted by valgrind's callgrind, for the
# monolith or the baseline (docs/benchmarks.md, "Monolith vs baseline: where the instructions go").
#
#   bench/callgrind.sh monolith|baseline <database> <token> [requests] [warm-up]
#
# <database> is a monolith database with the user of <token> signed up in it. The server runs
# under callgrind on one tokio worker (TOKIO_WORKER_THREADS=1, the same for both), gets the
# warm-up requests, has its counters zeroed, gets <requests> identical authenticated requests
# over one keep-alive connection, and is dumped; it prints instructions per request and the
# database transactions per request (pg_stat_database, read after the backends have flushed).
# Binaries are taken from $CARGO_TARGET_DIR/release (default target/release): build them with
#   CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p archlab-monolith -p archlab-baseline
set -euo pipefail
what=${1:?monolith or baseline} db=${2:?database} token=${3:?token} n=${4:-2000} warm=${5:-200}
bin_dir=${CARGO_TARGET_DIR:-target}/release
out=${OUT:-$(mktemp -d)}
export DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432} MONOLITH_DATABASE=$db RUST_LOG=warn \
    AUTH_LIMIT_PER_ADDRESS_PER_MINUTE=0 AUTH_LIMIT_PER_ACCOUNT_PER_HOUR=0 PASSWORD_HASH_CONCURRENCY=0 \
    OUTBOX_POLL_MS=600000 TOKIO_WORKER_THREADS=1
case $what in
    monolith) port=18080 bin=$bin_dir/monolith; export MONOLITH_ADDR=127.0.0.1:$port ;;
    baseline) port=18070 bin=$bin_dir/archlab-baseline; export BASELINE_ADDR=127.0.0.1:$port ;;
    *) echo "monolith or baseline, not $what" >&2; exit 2 ;;
esac

load() { # $1 requests over one connection; every answer must be a 200
    python3 - "$port" "$token" "$1" <<'EOF'
import http.client, sys
port, token, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", "/api/users/me", headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
EOF
}
xacts() {
    psql "$DATABASE_URL/postgres" -tAc "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '$db'"
}

valgrind --tool=callgrind --dump-instr=no --callgrind-out-file="$out/callgrind.$what" "$bin" \
    > "$out/$what.log" 2>&1 &
pid=$!
until curl -sf -o /dev/null "http://127.0.0.1:$port/health"; do sleep 0.5; done
load "$warm"
sleep 11 # idle backends flush their statistics within 10 s
before=$(xacts)
callgrind_control -z $pid > /dev/null 2>&1
load "$n"
callgrind_control -d $pid > /dev/null 2>&1
sleep 11
after=$(xacts)
kill -INT $pid
wait $pid || true
dump=$(ls "$out/callgrind.$what".* | head -1)
ir=$(grep -m1 '^summary:' "$dump" | awk '{print $2}')
awk -v w="$what" -v ir="$ir" -v n="$n" -v tx="$((after - before))" -v d="$dump" \
    'BEGIN { printf "%s: %d instructions/request, %.2f transactions/request (%s)\n", w, ir / n, tx / n, d }'
echo "top inclusive: callgrind_annotate --inclusive=yes $dump | head -60"
