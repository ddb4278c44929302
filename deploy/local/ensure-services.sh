#!/usr/bin/env bash
# Make sure PostgreSQL, Redis and RabbitMQ answer on their standard local ports.
#
# A service that is installed but down is started with the same command the lab's machines
# use; one that is not installed is named, with how to get it. Exits non-zero if any is
# still missing, so `make test` fails early with a clear message instead of deep in a test.
#
#   deploy/local/ensure-services.sh            # all three
#   deploy/local/ensure-services.sh postgres   # just the ones named
set -u

want=("$@")
[ ${#want[@]} -eq 0 ] && want=(postgres redis rabbitmq)

# True when something accepts TCP connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait up to $2 seconds for port $1.
wait_port() {
  local port=$1 deadline=$((SECONDS + $2))
  until listening "$port"; do
    [ $SECONDS -ge $deadline ] && return 1
    sleep 0.5
  done
}

missing=0
say() { printf '%-9s %s\n' "$1" "$2"; }

ensure() {
  local name=$1 port=$2 binary=$3 start=$4 install=$5 timeout=$6
  if listening "$port"; then
    say "$name" "up on 127.0.0.1:$port"
    return
  fi
  if command -v "$binary" >/dev/null 2>&1 || [ -x "$binary" ]; then
    say "$name" "down; starting: $start"
    if ! bash -c "$start" >/dev/null 2>&1; then
      say "$name" "the start command failed (see its log); try running it yourself: $start"
    fi
    if wait_port "$port" "$timeout"; then
      say "$name" "up on 127.0.0.1:$port"
      return
    fi
    say "$name" "did not come up on 127.0.0.1:$port within ${timeout}s"
  else
    say "$name" "not installed. Install it ($install), or run it in Docker: docker compose -f deploy/compose/deps.yml up -d"
  fi
  missing=1
}

for w in "${want[@]}"; do
  case "$w" in
    postgres)
      ensure postgres 5432 pg_ctlcluster \
        'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -n1) main start' \
        'Debian/Ubuntu: apt-get install postgresql; local connections must be trusted for user postgres, or set DATABASE_URL' 30 ;;
    redis)
      ensure redis 6379 redis-server \
        'mkdir -p /var/lib/redis /var/log/redis; redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log' \
        'apt-get install redis-server' 15 ;;
    rabbitmq)
      ensure rabbitmq 5672 rabbitmq-server 'rabbitmq-server -detached' 'apt-get install rabbitmq-server' 90 ;;
    *) echo "unknown service: $w (postgres, redis, rabbitmq)"; exit 2 ;;
  esac
done
exit $missing
