#!/usr/bin/env bash
# Makes sure the test suite has a PostgreSQL server: one that answers on
# 127.0.0.1:5432, trusts the current user over loopback and has a database
# `test` (the tests create and drop their own databases next to it). A server
# that already does is used as it is. Otherwise Debian's postgresql is
# installed when missing, its cluster created and started, and the role,
# the database and a loopback trust rule for that one role are added.
# Safe to run again. With GRADECAST_TEST_POSTGRES_URL set, nothing is done:
# the tests use that server.
set -euo pipefail

log() { printf '[postgres] %s\n' "$*"; }

if [ -n "${GRADECAST_TEST_POSTGRES_URL:-}" ]; then
  log "tests use GRADECAST_TEST_POSTGRES_URL"
  exit 0
fi

user="$(id -un)"
answers() { psql -h 127.0.0.1 -p 5432 -d test -Atc 'SELECT 1' >/dev/null 2>&1; }

if command -v psql >/dev/null 2>&1 && answers; then
  log "PostgreSQL on 127.0.0.1:5432: ready"
  exit 0
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
as_postgres() { $sudo runuser -u postgres -- "$@"; }

if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
  log "installing Debian's postgresql"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

version="$(ls /usr/lib/postgresql | sort -V | tail -n 1)"
if ! $sudo pg_lsclusters -h | awk '{print $1, $2}' | grep -qx "$version main"; then
  log "creating cluster $version/main"
  $sudo pg_createcluster "$version" main >/dev/null
fi
if ! $sudo pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $4}' | grep -qx online; then
  log "starting cluster $version/main"
  $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main start
fi
for _ in $(seq 1 50); do
  pg_isready -q -h 127.0.0.1 -p 5432 && break
  sleep 0.2
done
pg_isready -q -h 127.0.0.1 -p 5432 || { log "PostgreSQL does not answer on 127.0.0.1:5432" >&2; exit 1; }

if ! answers; then
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  rule="host all $user 127.0.0.1/32 trust"
  if ! $sudo grep -qxF "$rule" "$hba"; then
    log "trusting role $user over 127.0.0.1 in $hba"
    # First match wins in pg_hba.conf: the rule goes above the defaults.
    $sudo sed -i "1i $rule" "$hba"
    $sudo pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  fi
  if ! as_postgres psql -Atc "SELECT 1 FROM pg_roles WHERE rolname = '$user'" | grep -q 1; then
    log "creating role $user"
    as_postgres createuser --superuser "$user"
  fi
  if ! as_postgres psql -Atc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    log "creating database test"
    as_postgres createdb --owner "$user" test
  fi
fi

answers || { log "cannot connect to 127.0.0.1:5432/test as $user" >&2; exit 1; }
log "PostgreSQL on 127.0.0.1:5432: ready"
