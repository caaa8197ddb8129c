#!/usr/bin/env bash
# Installs what gradecast needs on a Debian machine with Node 20, skipping what
# is already there, so it is safe to run again: Debian packages (nats-server,
# protoc and its gRPC Python plugin, Python's grpcio/protobuf runtimes, Go with
# its protoc plugins and the Go sources the Go examples build against), the npm
# dependencies from package-lock.json, and the compiled service in dist/.
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

# Go (scripts/go-build.sh): Debian's toolchain, protoc plugins and Go source
# packages under /usr/share/gocode, for builds in GOPATH mode without a module
# proxy. protoc-gen-go must be the APIv2 one (1.28, Debian's `protoc-gen-go`),
# which protoc-gen-go-grpc's output pairs with, and github.com/golang/protobuf
# the 1.5 shim over APIv2 that grpc-go and genproto then compile against.
has_deb() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
for package in golang-go protoc-gen-go protoc-gen-go-grpc golang-google-protobuf-dev \
  golang-github-golang-protobuf-1-5-dev golang-google-grpc-dev golang-google-genproto-dev \
  golang-github-nats-io-nkeys-dev golang-github-nats-io-nuid-dev; do
  has_deb "$package" || missing+=("$package")
done

if ((${#missing[@]})); then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages: already installed"
fi

# nats.go's Debian package (golang-github-nats-io-go-nats-dev) cannot be
# installed beside protoc-gen-go: it depends on the old golang-goprotobuf-dev
# (protobuf 1.3 and its protoc-gen-go), which conflicts with both packages
# above, though nats.go needs neither. So its sources are unpacked from the
# .deb, with no dependency resolution, into a GOPATH tree of their own that
# scripts/go-build.sh puts on GOPATH.
nats_go=/usr/local/share/gocode/src/github.com/nats-io/nats.go
if [ -f "$nats_go/js.go" ]; then
  log "nats.go sources: already in $nats_go"
else
  log "unpacking golang-github-nats-io-go-nats-dev into /usr/local/share/gocode"
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  deb_dir="$(mktemp -d)"
  (cd "$deb_dir" && apt-get download -qq -o APT::Sandbox::User=root golang-github-nats-io-go-nats-dev)
  dpkg-deb -x "$deb_dir"/golang-github-nats-io-go-nats-dev_*.deb "$deb_dir/root"
  $sudo mkdir -p "$(dirname "$nats_go")"
  $sudo cp -R "$deb_dir/root/usr/share/gocode/src/github.com/nats-io/nats.go" "$nats_go"
  rm -rf "$deb_dir"
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
