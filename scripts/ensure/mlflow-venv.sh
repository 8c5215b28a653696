#!/usr/bin/env bash
# Creates (idempotently) a Python virtualenv with a pinned MLflow for the real-server tests of
# crates/fraudops-mlflow, `fraudops train` and the Airflow DAG, and prints the path of its `mlflow` binary on stdout (last line).
#
#   MLFLOW_VENV     where the venv lives        (default: <repo>/.venv-mlflow)
#   MLFLOW_VERSION  the pip requirement to pin  (default: see below; tested with Python 3.11)
#   PYTHON          the interpreter to use      (default: python3)
#
# Usage in a test script:  export MLFLOW_BIN="$(scripts/ensure/mlflow-venv.sh | tail -n1)"
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_pip
venv="${MLFLOW_VENV:-$repo_root/.venv-mlflow}"
requirement="${MLFLOW_VERSION:-mlflow==3.17.2}"

venv_create mlflow-venv "$venv" "${PYTHON:-python3}"

if ! "$venv/bin/python" -c 'import mlflow' >/dev/null 2>&1 || [[ ! -x "$venv/bin/mlflow" ]]; then
  echo "mlflow-venv: installing $requirement into $venv (takes a few minutes)" >&2
  venv_pip "$venv" --upgrade pip
  venv_pip "$venv" "$requirement"
fi

echo "$venv/bin/mlflow"
