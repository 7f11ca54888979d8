# PostgreSQL for the multi-worker tests (tests/test_workers.py): a throwaway cluster in a temporary
# directory, listening on 127.0.0.1 only, on a free port; stopped and removed when .ci/run exits.
# Sourced by .ci/run. Exports NAVIGATOR_TEST_POSTGRES_URL (a role that may create databases; the tests
# create and drop their own database) and NAVIGATOR_REQUIRE_POSTGRES=1 (the tests fail, not skip,
# without it).

_pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$found" ] && [ -x "$found/pg_ctl" ]; then echo "$found"; return; fi
  command -v pg_ctl >/dev/null 2>&1 && dirname "$(command -v pg_ctl)"
}

if [ -z "$(_pg_bin)" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
fi
NAVIGATOR_PG_BIN=$(_pg_bin)
[ -n "$NAVIGATOR_PG_BIN" ] || { echo "30-postgres: no pg_ctl after installing postgresql" >&2; return 1; }

NAVIGATOR_PG_DIR=$(mktemp -d /tmp/navigator-pg.XXXXXX)
NAVIGATOR_PG_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# initdb and postgres refuse to run as root: run them as the postgres user then.
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  chown postgres "$NAVIGATOR_PG_DIR"
  _pg() { runuser -u postgres -- "$@"; }
else
  _pg() { "$@"; }
fi
_pg "$NAVIGATOR_PG_BIN/initdb" -D "$NAVIGATOR_PG_DIR/data" -U postgres --auth=trust -E UTF8 >/dev/null
_pg "$NAVIGATOR_PG_BIN/pg_ctl" -D "$NAVIGATOR_PG_DIR/data" -l "$NAVIGATOR_PG_DIR/server.log" -w start \
  -o "-c listen_addresses=127.0.0.1 -p $NAVIGATOR_PG_PORT -k $NAVIGATOR_PG_DIR -c max_connections=200" >/dev/null
# Stop the server and remove the cluster when .ci/run ends (after whatever EXIT trap was there).
_navigator_pg_stop() {
  _pg "$NAVIGATOR_PG_BIN/pg_ctl" -D "$NAVIGATOR_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$NAVIGATOR_PG_DIR"
}
_navigator_pg_previous_trap=$(trap -p EXIT | sed -E "s/^trap -- '(.*)' EXIT$/\1/")
trap "_navigator_pg_stop; ${_navigator_pg_previous_trap:-:}" EXIT

"$NAVIGATOR_PG_BIN/psql" -q -h 127.0.0.1 -p "$NAVIGATOR_PG_PORT" -U postgres -d postgres \
  -c "CREATE ROLE navigator LOGIN CREATEDB" -c "CREATE DATABASE navigator OWNER navigator"
export NAVIGATOR_TEST_POSTGRES_URL="postgresql://navigator@127.0.0.1:$NAVIGATOR_PG_PORT/navigator"
export NAVIGATOR_REQUIRE_POSTGRES=1
echo "30-postgres: PostgreSQL $("$NAVIGATOR_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$NAVIGATOR_PG_PORT"
