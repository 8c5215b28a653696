#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv of the lake readers' test (pyarrow, DuckDB: what data people read
# Parquet with) and prints its bin directory on the last line.   LAKE_VENV  where it lives (default <repo>/.venv-lake)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_require
venv="${LAKE_VENV:-$repo_root/.venv-lake}"
requirements=("pyarrow==26.0.1" "duckdb==2.0.1")
venv_create lake-venv "$venv"
venv_require lake-venv "$venv" "${requirements[@]}"
echo "$venv/bin"
