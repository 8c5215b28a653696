#!/usr/bin/env bash
# The Kafka suite: `fraudops attack`, `fraudops stream` and `fraudops labels` against a real
# Kafka-protocol broker (tansu, in-memory storage, a fresh one per test on a random port), with the real API,
# a real Alertmanager and a real redis-server: rate accuracy, keys, exactly one prediction per input,
# at-least-once across SIGKILL, dead letters, lag, the closed loop, labels after their delay and applied once.
#
#   scripts/test-kafka.sh            the short variants (about a minute)
#   scripts/test-kafka.sh --long     also the long ones (20,000 msg/s for 30 s, three SIGKILLs)
#
# Installs tansu if missing (scripts/ensure/tansu.sh; ~20 min once), Alertmanager and Redis (apt), then runs the
# test binary with FRAUDOPS_KAFKA_TESTS=require: in a plain `cargo test` the suite skips visibly without
# tansu, here a skip or an empty run is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # require_suite

[[ "${1:-}" == "--long" ]] && export FRAUDOPS_LONG_TESTS=1

tansu="$(scripts/ensure/tansu.sh | tail -n1)"
export PATH="$(dirname "$tansu"):$PATH"
scripts/ensure/apt.sh prometheus-alertmanager:prometheus-alertmanager redis-server:redis-server redis-cli:redis-tools
export FRAUDOPS_KAFKA_TESTS=require
# The label consumer's tests need a real redis-server: missing, they fail here instead of skipping.
export FRAUDOPS_REQUIRE_REDIS=1

echo "--- cargo test -p fraudops-cli --test kafka ($(tansu --version))"
require_suite "the kafka suite" 'SKIPPED' "tansu is installed" cargo test --locked -p fraudops-cli --test kafka
