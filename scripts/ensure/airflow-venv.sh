#!/usr/bin/env bash
# Creates (idempotently) a Python virtualenv with a pinned Apache Airflow and the cncf.kubernetes provider
# (which the DAG imports for its cluster mode), for scripts/test-airflow.sh, and prints the path of its
# `airflow` binary on stdout (last line).
#
#   AIRFLOW_VENV      where the venv lives              (default: <repo>/.venv-airflow)
#   AIRFLOW_VERSION   the Airflow version to pin        (default below; tested with Python 3.11)
#   PYTHON            the interpreter to use            (default: python3)
#
# The pins match deploy/platform/airflow.values.yaml (airflowVersion). Installed from PyPI without Airflow's
# constraints file (not reachable here), so the two top-level packages are pinned and pip resolves the rest.
# A cold install takes about 3 minutes; a warm run returns at once.
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_pip
venv="${AIRFLOW_VENV:-$repo_root/.venv-airflow}"
version="${AIRFLOW_VERSION:-3.3.2}"
provider="apache-airflow-providers-cncf-kubernetes==10.25.0"

venv_create airflow-venv "$venv" "${PYTHON:-python3}"

installed() {
  "$venv/bin/python" - "$version" "${provider#*==}" <<'PY' >/dev/null 2>&1
import sys
from importlib.metadata import version
assert version("apache-airflow") == sys.argv[1]
assert version("apache-airflow-providers-cncf-kubernetes") == sys.argv[2]
PY
}

if ! installed || [[ ! -x "$venv/bin/airflow" ]]; then
  echo "airflow-venv: installing apache-airflow==$version and $provider into $venv (takes a few minutes)" >&2
  venv_pip "$venv" --upgrade pip
  venv_pip "$venv" "apache-airflow==$version" "$provider"
fi

echo "$venv/bin/airflow"
