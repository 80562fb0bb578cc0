#!/bin/sh
# As the official image's entrypoint: flags alone mean redis-server; run unprivileged; protected mode off
# (the container's network is the boundary, and other containers connect without a password).
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then exec setpriv --reuid=redis --regid=redis --init-groups "$@" --protected-mode no; fi
exec "$@"
