#!/usr/bin/env bash
# Set up .venv with everything rag_attrib needs. Idempotent; safe to re-run.
#   bash scripts/setup.sh          rag_attrib + all integrations (for the examples); no torch
#   bash scripts/setup.sh --test   also the [st] extra (CPU torch), test/benchmark tools and
#                                  Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
TORCH_CPU=https://download.pytorch.org/whl/cpu
step() { echo "setup: $*"; }

if [ -x .venv/bin/python ]; then
  step "using the existing .venv ($(.venv/bin/python --version))"
else
  step "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

if [ "${1:-}" = "--test" ]; then
  # The tests need the [st] extra, hence torch: take the CPU build (the default index would
  # fetch gigabytes of CUDA wheels on Linux). Without access to the PyTorch index, torch
  # comes from the configured index like any other package.
  if .venv/bin/python -c "import urllib.request as u; u.urlopen('$TORCH_CPU/', timeout=5)" \
    >/dev/null 2>&1; then
    step "installing torch, CPU build, from $TORCH_CPU"
    pip install torch --index-url "$TORCH_CPU"
  else
    step "$TORCH_CPU unreachable: torch comes from the configured index"
  fi
  step "installing rag_attrib in editable mode with the [dev] extra (tests, benchmarks, [st])"
  pip install -e ".[dev]"
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # the HTML view is tested in a real headless browser; tests skip with a reason without one
    step "installing chromium with apt-get, for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; browser tests will be skipped" >&2
  fi
else
  step "installing rag_attrib in editable mode with the [all] extra (integrations, views; no torch)"
  pip install -e ".[all]"
fi
step "done: .venv/bin/python has rag_attrib $(.venv/bin/python -c 'import rag_attrib; print(rag_attrib.__version__)')"
