#!/usr/bin/env bash
# The README's "Other languages" session: one gradecast (a grader token for three queues), a
# TypeScript, a Python and a Go grader each reporting a score, and `gradecast tail` showing the
# three events on one stream. Needs what `.ci/run` builds: dist/ (npm run build), the Python
# venv (scripts/python-tests.sh) and the Go grader (scripts/go-build.sh). Its own nats-server
# and data live in a temp dir; ports 14377 (NATS), 50377 (gRPC) and 9377 (metrics) must be free.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
nats-server -js -a 127.0.0.1 -p 14377 -sd "$dir/nats" >"$dir/nats.log" 2>&1 &
nats=$!
trap 'kill $nats ${serve:-} 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$dir"' EXIT
export GRADECAST_NATS_URL=nats://127.0.0.1:14377
TOKEN=$(node bin/gradecast.js credentials add polyglot --queues ts-grader,python-grader,go-grader \
  --credentials "$dir/graders.json" 2>/dev/null)
node bin/gradecast.js serve --credentials "$dir/graders.json" --data-dir "$dir/data" \
  --listen 127.0.0.1:50377 --metrics-listen 127.0.0.1:9377 >"$dir/serve.log" 2>&1 &
serve=$!
curl -sf --retry 30 --retry-connrefused --retry-delay 1 http://127.0.0.1:9377/readyz >/dev/null

# Echo each command with the token shown as "$TOKEN", then run it.
run() { local line="$*"; printf '$ %s\n' "${line//"$TOKEN"/\"\$TOKEN\"}"; "$@"; }
run node dist/examples/sample-grader.js --server 127.0.0.1:50377 --token "$TOKEN" --queue ts-grader --submission-id 501 --score 0.7
run .data/python-venv/bin/python examples/python-grader/grader.py --address 127.0.0.1:50377 --token "$TOKEN" --queue-name python-grader --submission-id 502 --points-earned 8
run .data/go-bin/go-grader --address 127.0.0.1:50377 --token "$TOKEN" --queue-name go-grader --submission-id 503 --points-earned 9
run node bin/gradecast.js tail --human --since 1h --max 3
