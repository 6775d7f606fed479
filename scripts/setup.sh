#!/usr/bin/env bash
# Set up .venv with everything rag_attrib needs. Idempotent; safe to re-run.
#   bash scripts/setup.sh          runtime + all integrations (for the examples)
#   bash scripts/setup.sh --test   also test/benchmark tools and Chromium for the browser tests
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
# torch first, pinned: 2.13.0 resolves to a local CPU build; an unpinned torch pulled in by
# sentence-transformers would fetch gigabytes of CUDA wheels.
pip install "torch==2.13.0"
if [ "${1:-}" = "--test" ]; then
  pip install -e ".[dev]"
  if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    # the HTML view is tested in a real headless browser; tests skip with a reason without one
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "setup: could not install chromium; browser tests will be skipped" >&2
  fi
else
  pip install -e ".[all]"
fi
