#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv of the Kafka benchmark's baseline consumer (confluent-kafka
# and requests: the seeds' design) and prints its bin directory on the last line.
#   KAFKA_BENCH_VENV  where it lives (default <repo>/.venv-kafka-bench)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_pip
venv="${KAFKA_BENCH_VENV:-$repo_root/.venv-kafka-bench}"
requirements=("confluent-kafka==2.12.1" "requests==2.32.5")
venv_create kafka-bench-venv "$venv"
frozen="$("$venv/bin/python" -m pip freeze 2>/dev/null || true)"
for r in "${requirements[@]}"; do
  if ! grep -qx "$r" <<<"$frozen"; then
    echo "kafka-bench-venv: installing ${requirements[*]}" >&2
    venv_pip "$venv" "${requirements[@]}"
    break
  fi
done
echo "$venv/bin"
