#!/usr/bin/env bash
# The whole test suite (`npm test`), in the order a contract change should
# fail: lint the .proto, guard it against breaking changes, prove gen/ is
# reproducible, then typecheck, lint the TypeScript and run vitest.
# Expects what scripts/install.sh installs; .ci/run runs both.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }
buf=node_modules/.bin/buf

step "buf lint"
"$buf" lint

step "buf breaking"
# Against HEAD while proto/ has uncommitted changes, else against the commit
# before HEAD: on CI's clean clone that is the previous commit of main.
against=""
if git rev-parse --verify -q HEAD >/dev/null; then
  if [ -n "$(git status --porcelain -- proto buf.yaml)" ]; then
    against="HEAD"
  elif git rev-parse --verify -q 'HEAD~1' >/dev/null; then
    against="HEAD~1"
  fi
fi
if [ -n "$against" ] && git cat-file -e "${against}:proto" 2>/dev/null \
  && git cat-file -e "${against}:buf.yaml" 2>/dev/null; then
  sha="$(git rev-parse "$against")"
  echo "against $against ($sha)"
  "$buf" breaking --against ".git#ref=${sha}"
else
  echo "skipped: no earlier commit with a proto tree"
fi

step "generated code is reproducible"
npm run --silent generate
if [ -n "$(git status --porcelain -- gen)" ]; then
  git status --short -- gen
  git --no-pager diff --stat -- gen
  echo "gen/ differs from what npm run generate writes: run 'npm run generate' and commit" >&2
  exit 1
fi
echo "gen/ matches npm run generate"

step "typecheck"
node_modules/.bin/tsc -p tsconfig.json --noEmit

step "lint"
node_modules/.bin/biome ci .

step "vitest"
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
node_modules/.bin/vitest run --reporter=default --reporter=json --outputFile="$report" || status=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped`);
' "$report" || true
exit "$status"
