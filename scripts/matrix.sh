#!/usr/bin/env bash
# The Airflow version matrix of the test command (scripts/test.sh runs it after the full suite on .venv).
#
# For each supported Airflow line older than the newest, a virtual environment under .matrix/ with that line's
# latest patch and its dependencies as they were a few days after its release (uv's --exclude-newer: constraint
# files cannot be fetched here), running the tests that exercise Airflow (MATRIX_TESTS below). The newest line
# (Airflow 3.3, the full suite in .venv on Python 3.11) runs a selection on the newest supported Python too.
#
# An environment is reused while its inputs (its table row, the interpreter, pyproject.toml,
# scripts/uv-overrides.txt, RECIPE) are unchanged: a stamp file in it records their digest. Exits non-zero
# when any line's tests fail (or its environment cannot be installed).
#
#   bash scripts/matrix.sh            # every line
#   bash scripts/matrix.sh 3.0 3.2    # only these lines (names from the table)
#   MATRIX_PYTEST_ARGS="-x" bash scripts/matrix.sh
set -euo pipefail
cd "$(dirname "$0")/.."

# name        airflow  exclude-newer  python  tests (older: MATRIX_TESTS; noui: the same but the UI's, which
#                                              3.0 leaves out; newest: NEWEST_TESTS)
MATRIX=(
  "3.0        3.0.6    2025-09-02     3.11    noui"
  "3.1        3.1.8    2026-03-14     3.11    older"
  "3.2        3.2.2    2026-06-01     3.11    older"
  "3.3-py3.13 3.3.2    2026-09-20     3.13    newest"
)

# What exercises Airflow: the operators through dag.test() (every vendor, the report, retry and resume, replay,
# dry run, mapped chunks, SQL sources), deferral (and the deferrable parameter: its default, the deployment's
# setting, the worker sleeping the wait), the metrics sent through Airflow's Stats, incremental state (table and
# object storage), asset events, the provider metadata, the UI plugin's API (not on 3.0, which leaves the UI
# out), the example DAGs (parsing, the trigger form, runs) and the compatibility module. Left out (-k) to keep the matrix short: what repeats an
# Airflow path already covered with another vendor or warehouse, and the incremental diff's SQL cases.
MATRIX_TESTS=(
  tests/test_compat.py
  tests/test_provider_info.py
  tests/test_assets.py
  tests/operators/test_operators.py
  tests/operators/test_deferral.py
  tests/operators/test_deferrable.py
  tests/operators/test_metrics.py
  tests/operators/test_incremental.py
  tests/operators/test_connection_errors.py
  tests/dags/test_dags.py
  tests/ui/test_api.py
)
MATRIX_K="not (dirty_rows and not altatech) and not single_chunk and not warehouse_sync_from_postgres \
and not (defer_after and usercom) and not (test_incremental and (null_removes or failed_user_is_sent \
or altatech_cannot or postgres_state or writes_while or duckdb or null_values_skip or max_removals))"
# On the newest line the full suite already ran on Python 3.11: on the newest Python, a smaller selection.
NEWEST_TESTS=(
  tests/test_compat.py
  tests/test_provider_info.py
  tests/operators/test_operators.py
  tests/operators/test_deferral.py
  tests/operators/test_deferrable.py
  tests/operators/test_metrics.py
  tests/dags/test_dags.py
  tests/ui/test_api.py
)
NEWEST_K="(test_compat or test_provider_info or every_vendor or task_retry or mapped_chunks or (defer_after and dx) \
or (test_deferrable and not worker_sleeps) or (test_metrics and not (each_try or deferred_try)) \
or dags_parses or trigger_form or test_api)"

say() { echo "matrix: $*" >&2; }

if ! command -v uv >/dev/null 2>&1; then
  export PATH="$HOME/.local/bin:$PATH"
fi
command -v uv >/dev/null 2>&1 || { say "uv is missing (scripts/bootstrap.sh installs it)"; exit 1; }
export UV_PYTHON_DOWNLOADS=never # no interpreter downloads: the machine's own Pythons (PATH or pyenv)

find_python() { # X.Y -> an interpreter of that version that runs (pyenv shims of versions not selected don't)
  local version=$1 candidate
  for candidate in $(ls -d "$HOME"/.pyenv/versions/"$version".*/bin/python 2>/dev/null | sort -V -r) \
    "$(command -v "python$version" 2>/dev/null || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
      echo "$candidate"
      return 0
    fi
  done
  return 1
}

RECIPE=1 # how an environment is installed (prepare below): bump it when that changes

digest_of() {
  { echo "$RECIPE $*"; cat pyproject.toml scripts/uv-overrides.txt; } | sha256sum | cut -c1-16
}

prepare() { # name airflow date python -> echoes the environment's python
  local name=$1 airflow=$2 date=$3 python_version=$4
  local env=".matrix/$name" python stamp digest
  python="$(find_python "$python_version")" || { say "$name: no Python $python_version (PATH or ~/.pyenv)"; return 1; }
  digest="$(digest_of "$name $airflow $date $python $("$python" -V 2>&1)")"
  stamp="$env/.userattrs-matrix"
  if [ -x "$env/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$digest" ]; then
    echo "$env/bin/python"
    return 0
  fi
  say "$name: installing Airflow $airflow on Python $python_version with the dependencies of $date"
  local install_started=$SECONDS
  rm -rf "$env"
  mkdir -p .matrix
  # (errexit does not apply inside `if ! python="$(prepare ...)"`: every step says so itself)
  uv venv --quiet --python "$python" "$env" >&2 || return 1
  uv pip install --quiet --python "$env/bin/python" --exclude-newer "$date" \
    --overrides scripts/uv-overrides.txt "apache-airflow==$airflow" -e ".[test]" >&2 || return 1
  echo "$digest" >"$stamp" || return 1
  say "$name: installed in $((SECONDS - install_started)) s"
  echo "$env/bin/python"
}

wanted() { # name -> whether the command line asked for it (no arguments: all)
  [ "$#" -eq 1 ] && return 0
  local name=$1 arg
  shift
  for arg in "$@"; do [ "$arg" = "$name" ] && return 0; done
  return 1
}

failed=()
started=$SECONDS
for row in "${MATRIX[@]}"; do
  read -r name airflow date python_version kind <<<"$row"
  wanted "$name" "$@" || continue
  line_started=$SECONDS
  if ! python="$(prepare "$name" "$airflow" "$date" "$python_version")"; then
    failed+=("$name (install)")
    continue
  fi
  case "$kind" in
    newest) tests=("${NEWEST_TESTS[@]}") && k="$NEWEST_K" ;;
    noui) tests=() && for t in "${MATRIX_TESTS[@]}"; do [[ "$t" == tests/ui/* ]] || tests+=("$t"); done && k="$MATRIX_K" ;;
    *) tests=("${MATRIX_TESTS[@]}") && k="$MATRIX_K" ;;
  esac
  say "$name: Airflow $airflow, Python $python_version: pytest ${tests[*]}"
  # shellcheck disable=SC2086  # MATRIX_PYTEST_ARGS is a list of words
  if "$python" -m pytest -q -p no:cacheprovider -m "not slow" -k "$k" "${tests[@]}" ${MATRIX_PYTEST_ARGS:-}; then
    say "$name: passed in $((SECONDS - line_started)) s"
  else
    failed+=("$name")
    say "$name: FAILED (after $((SECONDS - line_started)) s)"
  fi
done
say "done in $((SECONDS - started)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  say "failed on: ${failed[*]}"
  exit 1
fi
