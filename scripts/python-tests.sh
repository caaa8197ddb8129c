#!/usr/bin/env bash
# The Python side's tests (python/): the grader client and the Open edX bridge,
# against a real nats-server and gradecast that the pytest fixtures start.
# Creates .data/python-venv (ignored by git and biome) with a Python >= 3.12
# (openedx-events 11 needs it; Debian 12's is 3.11, so pyenv's, or
# GRADECAST_PYTHON) and the pinned python/requirements/test.txt, reusing it
# while both are unchanged; builds gradecast when src/ is newer than dist/;
# installs ./python as a wheel, the way an operator would; lints python/ and
# the Python examples with ruff; runs pytest (arguments are passed on); and
# ends with a line `pytest: N passed, N failed, N skipped`. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[python-tests] %s\n' "$*"; }

venv=.data/python-venv
requirements=python/requirements/test.txt

find_python() {
  local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}" candidate
  for candidate in ${GRADECAST_PYTHON:-} python3.12 python3.13 \
    "$pyenv_root"/versions/3.12*/bin/python3.12 "$pyenv_root"/versions/3.13*/bin/python3.13; do
    # A pyenv shim exists for versions that are not active: ask the interpreter itself.
    if "$candidate" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 12))' \
      >/dev/null 2>&1; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

python="$(find_python)" || {
  echo "python-tests: no Python >= 3.12 with venv found (set GRADECAST_PYTHON)" >&2
  exit 1
}

stamp="$venv/.gradecast-requirements"
wanted="$("$python" --version) $(sha256sum "$requirements" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  log "venv $venv: up to date ($wanted)"
else
  log "creating $venv with $python"
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
  echo "$wanted" >"$stamp"
fi

if [ ! -f dist/src/cli/run.js ] || [ -n "$(find src -newer dist/src/cli/run.js -print -quit)" ]; then
  log "npm run build (gradecast for the tests)"
  npm run --silent build
fi

# A wheel built from the checkout, exactly what `pip install ./python` installs; the
# dependencies are the pinned ones above.
log "installing ./python"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  --no-deps --no-build-isolation --force-reinstall ./python

log "ruff"
lint_paths=(python examples/python-grader examples/python-lms)
"$venv/bin/ruff" check --quiet --config python/pyproject.toml "${lint_paths[@]}"
"$venv/bin/ruff" format --check --quiet --config python/pyproject.toml "${lint_paths[@]}"

report="$(mktemp)"
trap 'rm -f "$report"' EXIT
status=0
(cd python && PYTHONDONTWRITEBYTECODE=1 "../$venv/bin/python" -m pytest --junitxml="$report" "$@") \
  || status=$?
"$venv/bin/python" - "$report" <<'PY' || true
import sys
import xml.etree.ElementTree as ElementTree

suite = ElementTree.parse(sys.argv[1]).getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
total, failed = int(suite.get("tests")), int(suite.get("failures")) + int(suite.get("errors"))
skipped = int(suite.get("skipped"))
print(f"pytest: {total - failed - skipped} passed, {failed} failed, {skipped} skipped")
PY
if [ "$status" = 5 ]; then
  echo "python-tests: pytest collected no tests" >&2
fi
exit "$status"
