#!/usr/bin/env bash
# Install everything the tests need into .venv (from scratch on a fresh machine), then run
# the test suite, which includes ruff, mypy and the import contract (no torch on the inference path).
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# torch is pinned: pip then takes the local CPU build; an unpinned torch pulls GBs of CUDA packages.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==2.13.0" -e ".[dev]" 2>&1 \
  | grep -v "is ignored: it is neither a file nor a directory" || true
.venv/bin/python -c "import emolens, torch, onnxruntime, cv2" # fail fast if the install did not work

# Browser end-to-end tests drive Debian's chromium + chromedriver.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && SUDO="sudo"
  if command -v apt-get >/dev/null; then
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
      || echo "warning: could not install chromium; browser tests will fail under CI=true" >&2
  fi
fi

# ruff, mypy and the import contract run inside the test suite (tests/test_quality.py).
exec .venv/bin/pytest "$@"
