#!/usr/bin/env bash
# The README's first quick start line: install what is missing, start NATS
# (only if none answers on 127.0.0.1:4222), start gradecast on its embedded
# SQLite store, run the sample grader for a few submissions (one retry, one
# regrade), look the scores up, and stop everything it started. Re-runnable:
# each run starts from an empty store under .data/quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

data=.data/quickstart
nats_url="${GRADECAST_NATS_URL:-nats://127.0.0.1:4222}"
listen="${GRADECAST_QUICKSTART_LISTEN:-127.0.0.1:50151}"
rm -rf "$data"
mkdir -p "$data"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

say() { printf '\n[quickstart] %s\n' "$*"; }

nats_hostport="${nats_url#nats://}"
if (exec 3<>"/dev/tcp/${nats_hostport%:*}/${nats_hostport##*:}") 2>/dev/null; then
  say "using the NATS server at $nats_url"
else
  nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  say "no NATS at $nats_url: starting $nats_bin with JetStream under $data/nats"
  "$nats_bin" -js -a "${nats_hostport%:*}" -p "${nats_hostport##*:}" -sd "$data/nats" >"$data/nats.log" 2>&1 &
  pids+=($!)
fi

say "starting gradecast on $listen (log: $data/gradecast.log)"
node bin/gradecast.js serve --listen "$listen" --nats-url "$nats_url" --data-dir "$data" \
  --stream GRADECAST_QUICKSTART --subject-prefix gradecast-quickstart >"$data/gradecast.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  grep -q '"stream ready"' "$data/gradecast.log" 2>/dev/null && break
  sleep 0.1
done
grep -q '"stream ready"' "$data/gradecast.log" || { cat "$data/gradecast.log"; exit 1; }

grader() { node dist/examples/sample-grader.js --server "$listen" "$@"; }
say "sample grader: submission 101 scores 0.8, submission 102 scores 1.0"
grader --submission-id 101 --score 0.8
grader --submission-id 102 --score 1 --user 2b4f0c3e9d8a4e1f8c7b6a5d4e3f2a1b
say "the grader retries submission 101 (same score): same event id, replayed, nothing new published"
grader --submission-id 101 --score 0.8
say "submission 101 is regraded to 0.9: a new event with submission_sequence 2"
grader --submission-id 101 --score 0.9
say "a score for queue 'bad.queue' is refused, naming the field and the rule it broke"
grader --submission-id 103 --score 0.8 --queue bad.queue || true
say "GetScore 101 (the latest event, as published on JetStream)"
node bin/gradecast.js get-score --server "$listen" --submission-id 101

say "stopping"
