#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv of the Kafka benchmark's baseline consumer (confluent-kafka
# and requests: the seeds' design) and prints its bin directory on the last line.
#   KAFKA_BENCH_VENV  where it lives (default <repo>/.venv-kafka-bench)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/lib/common.sh"  # venv_create, venv_require
venv="${KAFKA_BENCH_VENV:-$repo_root/.venv-kafka-bench}"
requirements=("confluent-kafka==2.12.1" "requests==2.32.5")
venv_create kafka-bench-venv "$venv"
venv_require kafka-bench-venv "$venv" "${requirements[@]}"
echo "$venv/bin"
