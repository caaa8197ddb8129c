#!/usr/bin/env bash
# The README's first quick start line: install what is missing, build, and
# print the contract's summary. (The service itself is not built yet.)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install.sh
node bin/gradecast.js contract
