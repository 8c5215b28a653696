#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv with the test tools of the API suites (schemathesis) and
# prints its bin directory on the last line.   TOOLS_VENV  where it lives (default <repo>/.venv-tools)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_pip
venv="${TOOLS_VENV:-$repo_root/.venv-tools}"
requirements=("schemathesis==4.32.5")
venv_create tools-venv "$venv"
if ! "$venv/bin/python" -m pip freeze 2>/dev/null | grep -qx "${requirements[0]}"; then
  echo "tools-venv: installing ${requirements[*]}" >&2
  venv_pip "$venv" "${requirements[@]}"
fi
echo "$venv/bin"
