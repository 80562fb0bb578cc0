#!/bin/sh
# The part of the official entrypoint compose.yaml relies on: POSTGRES_USER/PASSWORD/DB create the
# cluster, the role and the database on first start; password (scram) auth over TCP; run as postgres.
set -e
PGDATA=${PGDATA:-/var/lib/postgresql/data}; export PGDATA
POSTGRES_USER=${POSTGRES_USER:-postgres}; POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql && chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pw=$(mktemp); printf '%s\n' "$POSTGRES_PASSWORD" > "$pw"
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm -f "$pw"; echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  # Socket only while initialising, as upstream: the TCP health check sees the server once it is ready.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then createdb -U "$POSTGRES_USER" "$POSTGRES_DB"; fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' "$@"
