#!/usr/bin/env bash
# Builds the Go examples (examples/go-grader, examples/go-lms) into .data/go-bin/
# against the generated stubs in gen/go, offline and without Go modules.
#
# There is no Go module proxy here, so this builds in GOPATH mode
# (GO111MODULE=off) against Debian's Go source packages in /usr/share/gocode
# (grpc-go, protobuf-go, genproto) plus nats.go, which scripts/install.sh unpacks
# into /usr/local/share/gocode (see there for why). The protos' go_package is
# `gradecast/gen/go/gradecast/v1`, so a throwaway GOPATH gets one link,
# src/gradecast -> this repository, and the examples import the stubs by that
# path. Checks gofmt and runs `go vet` on both examples first. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[go-build] %s\n' "$*"; }

command -v go >/dev/null 2>&1 || {
  echo "go-build: no 'go' on PATH: run scripts/install.sh (Debian's golang-go)" >&2
  exit 1
}
for dir in /usr/share/gocode/src/google.golang.org/grpc \
  /usr/share/gocode/src/google.golang.org/genproto/googleapis/rpc/errdetails \
  /usr/local/share/gocode/src/github.com/nats-io/nats.go; do
  [ -d "$dir" ] || {
    echo "go-build: $dir is missing: run scripts/install.sh" >&2
    exit 1
  }
done

gopath="$(mktemp -d)"
trap 'rm -rf "$gopath"' EXIT
mkdir -p "$gopath/src"
ln -s "$PWD" "$gopath/src/gradecast"

export GO111MODULE=off
export GOPATH="$gopath:/usr/local/share/gocode:/usr/share/gocode"
export GOFLAGS=-trimpath
# The build cache is only a speed-up; keep it with the binaries, not in $HOME.
export GOCACHE="$PWD/.data/go-cache"

out=.data/go-bin
mkdir -p "$out"
packages=(gradecast/examples/go-grader gradecast/examples/go-lms)
log "$(go version)"
log "gofmt -l examples/go-grader examples/go-lms"
unformatted="$(gofmt -l examples/go-grader examples/go-lms)"
if [ -n "$unformatted" ]; then
  echo "go-build: not gofmt-formatted (run gofmt -w):" >&2
  echo "$unformatted" >&2
  exit 1
fi
log "go vet ${packages[*]}"
go vet "${packages[@]}"
for package in "${packages[@]}"; do
  log "go build -o $out/${package##*/} $package"
  go build -o "$out/${package##*/}" "$package"
done
