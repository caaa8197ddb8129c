#!/usr/bin/env bash
# Installs what gradecast needs on a Debian machine with Node 20, skipping what
# is already there, so it is safe to run again: Debian packages (nats-server,
# protoc and its gRPC Python plugin, Python's grpcio/protobuf runtimes), the
# npm dependencies from package-lock.json, and the compiled service in dist/.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[install] %s\n' "$*"; }

missing=()
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || missing+=(nats-server)
command -v protoc >/dev/null 2>&1 || missing+=(protobuf-compiler)
command -v grpc_python_plugin >/dev/null 2>&1 || missing+=(protobuf-compiler-grpc)
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import grpc' >/dev/null 2>&1; then
  missing+=(python3-grpcio)
fi
if [ ! -x /usr/bin/python3 ] || ! /usr/bin/python3 -c 'import google.protobuf' >/dev/null 2>&1; then
  missing+=(python3-protobuf)
fi

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: already installed"
fi

# npm ci rebuilds better-sqlite3 from source (about a minute), so only run it
# when node_modules was not installed from this exact lock file.
lock_sum="$(sha256sum package-lock.json | cut -d' ' -f1)"
stamp="node_modules/.gradecast-lock.sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ]; then
  log "npm dependencies: up to date"
else
  log "npm ci"
  npm ci --no-audit --no-fund
  echo "$lock_sum" >"$stamp"
fi

log "npm run build"
npm run --silent build
log "done"
