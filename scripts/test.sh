#!/usr/bin/env bash
# The project's whole test suite: the one command README.md names and .ci/run calls.
#
#   scripts/test.sh            everything CI runs (short variants of the slow end-to-end suites)
#   scripts/test.sh --long     also the long variants (reference-scale model quality, full drill)
#
# Each stage prints a line; the run ends with a summary table and a non-zero exit if anything failed.
# Tools the suites need are installed idempotently by scripts/ensure/*.sh (apt packages, Python venvs,
# cargo-installed binaries), so a fresh machine passes and a warm one skips straight to the tests.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

LONG=0
[[ "${1:-}" == "--long" ]] && LONG=1
export FRAUDOPS_LONG_TESTS=$LONG
# The Kafka suite needs a broker; its own stage runs it (scripts/test-kafka.sh), the workspace stage skips it.
export FRAUDOPS_KAFKA_TESTS=skip
# The drill's unit tests run promtool and create cgroups: install promtool first, and make a missing tool
# a failure rather than a skip (as root, where the cgroups are writable).
scripts/ensure/apt.sh prometheus:prometheus promtool:prometheus prometheus-alertmanager:prometheus-alertmanager
[[ $(id -u) -eq 0 ]] && export FRAUDOPS_REQUIRE_DRILL_TOOLS=1
# The feature store's tests (and the label consumer's in the Kafka suite) run a real redis-server: install
# it (and redis-cli), and make a missing one a failure rather than a skip.
scripts/ensure/apt.sh redis-server:redis-server redis-cli:redis-tools
export FRAUDOPS_REQUIRE_REDIS=1

declare -a names=() results=() durations=()
stage() {
  local name="$1"; shift
  echo
  echo "=== $name"
  local t0=$SECONDS
  if "$@"; then results+=(pass); else results+=(FAIL); fi
  names+=("$name"); durations+=($((SECONDS - t0)))
}

stage "rustfmt" cargo fmt --all -- --check
stage "clippy -D warnings" cargo clippy --workspace --all-targets --locked -- -D warnings
stage "unit + integration tests" cargo test --workspace --locked
if ((LONG)); then
  stage "long tests (ignored by default)" cargo test --workspace --locked --release -- --ignored
fi
stage "schemathesis against /openapi.json" scripts/test-schemathesis.sh
stage "mlflow (real server)" scripts/test-mlflow.sh
stage "airflow DAG (real airflow + mlflow)" scripts/test-airflow.sh
stage "alert -> retraining (alertmanager, bridge, airflow)" scripts/test-retrain-trigger.sh
stage "retraining loop (drift -> new champion)" scripts/test-retrain-loop.sh
if ((LONG)); then
  stage "kafka (real broker)" scripts/test-kafka.sh --long
else
  stage "kafka (real broker)" scripts/test-kafka.sh
fi
stage "transaction lake (readers, S3, lake = file)" scripts/test-lake.sh
stage "online evaluation (direct /predict + feature store)" scripts/test-eval-online.sh
stage "attack drill (quick + negative)" scripts/test-drill.sh
if ((LONG)); then
  stage "attack drill (full, real time)" scripts/test-drill.sh --full
fi
stage "deploy and monitoring checks" bash deploy/check.sh
stage "container image (build, smoke test)" deploy/image.sh

echo
printf '%-40s %-6s %8s\n' stage result seconds
failed=0
for i in "${!names[@]}"; do
  printf '%-40s %-6s %8s\n' "${names[$i]}" "${results[$i]}" "${durations[$i]}"
  [[ "${results[$i]}" == FAIL ]] && failed=1
done
exit $failed
