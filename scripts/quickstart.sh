#!/usr/bin/env bash
# The README's first quick start line (also `npm run demo`): install what is
# missing, start NATS (only if none answers on 127.0.0.1:4222), start gradecast
# on its embedded SQLite store and the sample LMS, run the sample grader for a
# few submissions (one retry, one regrade, one refused), show the LMS gradebook,
# and stop everything it started. Re-runnable: each run starts from an empty
# store and gradebook under .data/quickstart; the LMS's durable consumer resumes
# after the events of earlier runs.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

data=.data/quickstart
nats_url="${GRADECAST_NATS_URL:-nats://127.0.0.1:4222}"
listen="${GRADECAST_QUICKSTART_LISTEN:-127.0.0.1:50151}"
stream=GRADECAST_QUICKSTART
prefix=gradecast-quickstart
rm -rf "$data"
mkdir -p "$data"
pids=()
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
}
trap cleanup EXIT

say() { printf '\n[quickstart] %s\n' "$*"; }

# Waits up to 15 s for a line matching $2 in file $1.
wait_for() {
  for _ in $(seq 1 150); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "[quickstart] timed out waiting for '$2' in $1:" >&2
  cat "$1" >&2
  return 1
}

nats_hostport="${nats_url#nats://}"
if (exec 3<>"/dev/tcp/${nats_hostport%:*}/${nats_hostport##*:}") 2>/dev/null; then
  say "using the NATS server at $nats_url"
else
  nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  say "no NATS at $nats_url: starting $nats_bin with JetStream under $data/nats"
  "$nats_bin" -js -a "${nats_hostport%:*}" -p "${nats_hostport##*:}" -sd "$data/nats" >"$data/nats.log" 2>&1 &
  pids+=($!)
  wait_for "$data/nats.log" "Server is ready"
fi

say "starting gradecast on $listen (log: $data/gradecast.log)"
node bin/gradecast.js serve --listen "$listen" --nats-url "$nats_url" --data-dir "$data" \
  --stream "$stream" --subject-prefix "$prefix" --metrics-listen 127.0.0.1:0 --insecure-no-auth >"$data/gradecast.log" 2>&1 &
pids+=($!)
wait_for "$data/gradecast.log" '"stream ready"'

say "starting the sample LMS (log: $data/lms.log)"
node dist/examples/sample-lms/lms.js --nats-url "$nats_url" --stream "$stream" \
  --subject-prefix "$prefix" --durable sample-lms-quickstart --from new \
  --db "$data/lms/gradebook.sqlite" >"$data/lms.log" 2>&1 &
lms_pid=$!
pids+=("$lms_pid")
wait_for "$data/lms.log" "subscribed to"

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

say "the LMS receives three events (the retry published nothing):"
wait_for "$data/lms.log" "submission 101 seq 2"
grep '^\[lms\] \(applied\|duplicate\|stale\)' "$data/lms.log"

say "stopping the LMS; it prints its gradebook"
kill -TERM "$lms_pid"
wait "$lms_pid"
sed -n '/^gradebook/,$p' "$data/lms.log"

say "GetScore 101 (the latest event, as published on JetStream)"
node bin/gradecast.js get-score --server "$listen" --submission-id 101

say "stopping"
