#!/usr/bin/env bash
# Creates (idempotently) the Python virtualenv of the Kafka benchmark's baseline consumer (confluent-kafka
# and requests: the seeds' design) and prints its bin directory on the last line.
#   KAFKA_BENCH_VENV  where it lives (default <repo>/.venv-kafka-bench)
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
venv="${KAFKA_BENCH_VENV:-$repo_root/.venv-kafka-bench}"
requirements=("confluent-kafka==2.12.1" "requests==2.32.5")
if [[ ! -x "$venv/bin/python" ]]; then
  echo "kafka-bench-venv: creating $venv" >&2
  python3 -m venv "$venv"
fi
frozen="$("$venv/bin/python" -m pip freeze 2>/dev/null || true)"
for r in "${requirements[@]}"; do
  if ! grep -qx "$r" <<<"$frozen"; then
    echo "kafka-bench-venv: installing ${requirements[*]}" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${requirements[@]}" >&2
    break
  fi
done
echo "$venv/bin"
