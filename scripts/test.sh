#!/usr/bin/env bash
# Set up codeloop with its test tools, then run the whole test suite.
# Extra arguments go to pytest. pytest's exit 5 (no test ran) fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"
