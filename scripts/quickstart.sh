#!/usr/bin/env bash
# The README's first quick start line (also `npm run demo`): install what is
# missing, start a NATS server of its own (JetStream, a free port, a temp store
# dir), start gradecast on its embedded SQLite store and the sample LMS, run the
# sample grader for a few submissions (one retry, one regrade, one refused, one
# the LMS fails on purpose so it is dead-lettered), show the LMS gradebook and
# the dead letter, and stop everything it started. It touches no other NATS
# server and no port it did not pick itself.
#
# Overrides (environment):
#   GRADECAST_QUICKSTART_NATS_URL  use this NATS server (JetStream on) instead of
#                                  starting one; the quick start creates its
#                                  streams GRADECAST_QUICKSTART(_DLQ) and a durable
#                                  consumer there, and leaves them
#   GRADECAST_QUICKSTART_LISTEN    gradecast's gRPC address (default: 127.0.0.1 on
#                                  a free port)
# Re-runnable: each run starts from an empty store and gradebook under
# .data/quickstart.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh

data=.data/quickstart
listen="${GRADECAST_QUICKSTART_LISTEN:-127.0.0.1:0}"
stream=GRADECAST_QUICKSTART
prefix=gradecast-quickstart
durable=sample-lms-quickstart
rm -rf "$data"
mkdir -p "$data"
pids=()
nats_store=""
cleanup() {
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  if [ -n "$nats_store" ]; then rm -rf "$nats_store"; fi
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

if [ -n "${GRADECAST_QUICKSTART_NATS_URL:-}" ]; then
  nats_url="$GRADECAST_QUICKSTART_NATS_URL"
  say "using the NATS server at $nats_url (GRADECAST_QUICKSTART_NATS_URL)"
else
  nats_bin="$(command -v nats-server || echo /usr/sbin/nats-server)"
  nats_store="$(mktemp -d "${TMPDIR:-/tmp}/gradecast-quickstart-nats.XXXXXX")"
  # -p -1: a port the kernel picks, so no other server is reached or disturbed.
  "$nats_bin" -js -a 127.0.0.1 -p -1 -sd "$nats_store" >"$data/nats.log" 2>&1 &
  pids+=($!)
  wait_for "$data/nats.log" "Server is ready"
  nats_port="$(sed -n 's/.*Listening for client connections on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$data/nats.log" | head -n 1)"
  nats_url="nats://127.0.0.1:$nats_port"
  say "started $nats_bin -js on $nats_url (store: $nats_store, removed at the end)"
fi

node bin/gradecast.js serve --listen "$listen" --nats-url "$nats_url" --data-dir "$data" \
  --stream "$stream" --subject-prefix "$prefix" --metrics-listen 127.0.0.1:0 --insecure-no-auth \
  --log-format json >"$data/gradecast.log" 2>&1 &
pids+=($!)
wait_for "$data/gradecast.log" '"gradecast is serving"'
wait_for "$data/gradecast.log" '"stream ready"'
server="127.0.0.1:$(sed -n 's/.*"port":\([0-9]*\).*"gradecast is serving".*/\1/p' "$data/gradecast.log" | head -n 1)"
say "started gradecast on $server (log: $data/gradecast.log)"

say "starting the sample LMS (log: $data/lms.log); it fails submission 104 on purpose"
node dist/examples/sample-lms/lms.js --nats-url "$nats_url" --stream "$stream" \
  --subject-prefix "$prefix" --durable "$durable" --from new \
  --fail-submission 104 --max-deliver 2 \
  --db "$data/lms/gradebook.sqlite" >"$data/lms.log" 2>&1 &
lms_pid=$!
pids+=("$lms_pid")
wait_for "$data/lms.log" "subscribed to"

grader() { node dist/examples/sample-grader.js --server "$server" "$@"; }
say "sample grader: submission 101 scores 0.8, submission 102 scores 1.0"
grader --submission-id 101 --score 0.8
grader --submission-id 102 --score 1 --user 2b4f0c3e9d8a4e1f8c7b6a5d4e3f2a1b
say "the grader retries submission 101 (same score): same event id, replayed, nothing new published"
grader --submission-id 101 --score 0.8
say "submission 101 is regraded to 0.9: a new event with submission_sequence 2"
grader --submission-id 101 --score 0.9
say "a score with 0 points possible and no learner id is refused, naming each field and the rule it broke"
grader --submission-id 103 --score 0.8 --points-possible 0 --user '' || true
say "submission 104: the LMS handler throws, is retried once, then the event is dead-lettered"
grader --submission-id 104 --score 0.5

say "the LMS applies three events (the retry published nothing):"
wait_for "$data/lms.log" "submission 101 seq 2"
grep '^\[lms\] \(applied\|duplicate\|stale\)' "$data/lms.log"

say "the dead letter, with the consumer that gave up and its last error (gradecast dlq list):"
wait_for "$data/lms.log" '"type":"dead-lettered"'
node bin/gradecast.js dlq list --nats-url "$nats_url" --stream "$stream" --consumer "$durable"

say "stopping the LMS; it prints its gradebook"
kill -TERM "$lms_pid"
wait "$lms_pid"
sed -n '/^gradebook/,$p' "$data/lms.log"

say "GetScore 101 (the latest event, as published on JetStream)"
node bin/gradecast.js get-score --server "$server" --submission-id 101

say "stopping"
