#!/usr/bin/env bash
# The real-MLflow suites: the MLflow REST client, `fraudops train` logging/registering/gating,
# `serve` following models:/NAME@champion under load, and MLflow-down behaviour, each against a real
# `mlflow server` (sqlite backend, proxied local artifact store) that the tests start and stop themselves;
# `register --pushgateway-url` against a real Prometheus Pushgateway (Debian's prometheus-pushgateway).
#
#   scripts/test-mlflow.sh
#
# Installs MLflow into a venv if missing (scripts/ensure/mlflow-venv.sh; ~1.5 min once), then runs the test
# binaries with MLFLOW_BIN set and FRAUDOPS_REQUIRE_MLFLOW=1 (and PUSHGATEWAY_BIN, FRAUDOPS_REQUIRE_PUSHGATEWAY=1,
# installed through scripts/ensure/apt.sh if missing). Fails if any test skipped or none ran: in a plain
# `cargo test` these tests skip visibly, here they must not.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # require_suite

MLFLOW_BIN="$(scripts/ensure/mlflow-venv.sh | tail -n1)"
export MLFLOW_BIN FRAUDOPS_REQUIRE_MLFLOW=1
echo "mlflow: $("$MLFLOW_BIN" --version 2>/dev/null | tail -n1) ($MLFLOW_BIN)"
scripts/ensure/apt.sh prometheus-pushgateway:prometheus-pushgateway
PUSHGATEWAY_BIN="$(command -v prometheus-pushgateway)"
export PUSHGATEWAY_BIN FRAUDOPS_REQUIRE_PUSHGATEWAY=1
echo "pushgateway: $("$PUSHGATEWAY_BIN" --version 2>&1 | head -n1) ($PUSHGATEWAY_BIN)"

# suite PACKAGE TEST: one test binary; its output is shown and checked.
suite() {
  local package="$1" test="$2"
  echo "--- cargo test -p $package --test $test"
  require_suite "$package/$test" '^SKIPPED' "MLFLOW_BIN is set" cargo test --locked -p "$package" --test "$test"
}

suite fraudops-mlflow real_server
suite fraudops-cli retrain
