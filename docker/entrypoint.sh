#!/bin/sh
# Container start. `serve` (the default command): wait for the database (bounded by HEADWATER_DB_WAIT_SECONDS),
# apply the migrations, then replace this shell with the server, so that `docker stop`'s SIGTERM reaches it and
# requests in flight finish. Any other command runs as a headwater command against the same database:
#   docker compose -f docker/docker-compose.yml run --rm headwater purge --older-than 30d
set -eu

if [ "$#" -eq 0 ] || [ "$1" = "serve" ]; then
    [ "$#" -gt 0 ] && shift
    headwater db upgrade
    HEADWATER_MIGRATE_ON_START=false exec headwater serve "$@"
fi
exec headwater "$@"
