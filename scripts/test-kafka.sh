#!/usr/bin/env bash
# The Kafka suite (issue 4): `fraudops attack` and `fraudops stream` against a real Kafka-protocol broker
# (tansu, in-memory storage, a fresh one per test on a random port), with the real API and a real
# Alertmanager: rate accuracy, keys, exactly one prediction per input, at-least-once across SIGKILL,
# dead letters, lag, the closed loop.
#
#   scripts/test-kafka.sh            the short variants (about a minute)
#   scripts/test-kafka.sh --long     also the long ones (20,000 msg/s for 30 s, three SIGKILLs)
#
# Installs tansu if missing (scripts/ensure/tansu.sh; ~20 min once) and Alertmanager (apt), then runs the
# test binary with FRAUDOPS_KAFKA_TESTS=require: in a plain `cargo test` the suite skips visibly without
# tansu, here a skip or an empty run is a failure.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ "${1:-}" == "--long" ]] && export FRAUDOPS_LONG_TESTS=1

tansu="$(scripts/ensure/tansu.sh | tail -n1)"
export PATH="$(dirname "$tansu"):$PATH"
scripts/ensure/apt.sh prometheus-alertmanager:prometheus-alertmanager
export FRAUDOPS_KAFKA_TESTS=require

log="$(mktemp "${TMPDIR:-/tmp}/fraudops-test-kafka.XXXXXX")"
trap 'rm -f "$log"' EXIT

echo "--- cargo test -p fraudops-cli --test kafka ($(tansu --version))"
if ! cargo test --locked -p fraudops-cli --test kafka 2>&1 | tee "$log"; then
  echo "FAIL: kafka suite" >&2
  exit 1
fi
if grep -q 'SKIPPED' "$log"; then
  echo "FAIL: the kafka suite skipped although tansu is installed" >&2
  exit 1
fi
if ! grep -Eq '^test result: ok\. [1-9][0-9]* passed' "$log"; then
  echo "FAIL: the kafka suite ran no test" >&2
  exit 1
fi
