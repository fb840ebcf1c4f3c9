#!/usr/bin/env bash
# Creates the project's virtual environment (.venv) and installs the provider with its test and demo
# dependencies. Idempotent: a second run only checks that everything is in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON_BIN="${PYTHON:-python3.11}"
command -v "$PYTHON_BIN" >/dev/null 2>&1 || PYTHON_BIN=python3

if ! command -v uv >/dev/null 2>&1; then
  echo "bootstrap: installing uv" >&2
  "$PYTHON_BIN" -m pip install --quiet --user uv 2>/dev/null || "$PYTHON_BIN" -m pip install --quiet uv
  export PATH="$HOME/.local/bin:$PATH"
fi
UV="$(command -v uv || echo "$PYTHON_BIN -m uv")"

if [ ! -x .venv/bin/python ]; then
  $UV venv --quiet --python "$PYTHON_BIN" .venv
fi
stamp=.venv/.userattrs-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ scripts/uv-overrides.txt -nt "$stamp" ]; then
  echo "bootstrap: installing airflow-provider-userattrs and its dependencies into .venv" >&2
  $UV pip install --quiet --python .venv/bin/python --overrides scripts/uv-overrides.txt -e ".[test]"
  touch "$stamp"
fi
