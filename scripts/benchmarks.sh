#!/usr/bin/env bash
# The benchmarks of BENCHMARKS.md: hooks against the vendor sandbox, beside the loops people write instead.
# Installs what it needs (the project's .venv, then matplotlib for the chart and dlt for its baseline), then runs
#   .venv/bin/python -m benchmarks.run "$@"      (--quick for a smoke run, --out FILE, --scenarios 1,4)
set -euo pipefail
cd "$(dirname "$0")/.."

export PATH="$HOME/.local/bin:$PATH"  # where bootstrap.sh puts uv
bash scripts/bootstrap.sh
if command -v uv >/dev/null 2>&1; then
  uv pip install --quiet --python .venv/bin/python matplotlib dlt
elif .venv/bin/python -m pip --version >/dev/null 2>&1; then
  .venv/bin/python -m pip install -q matplotlib dlt
else
  echo "benchmarks: neither uv nor pip can install matplotlib and dlt; running without them" >&2
fi
exec .venv/bin/python -m benchmarks.run "$@"
