#!/usr/bin/env bash
# The retraining loop end to end, every component real (issues 23 and 28): drifted traffic -> alert ->
# retraining on the traffic the lake archived -> new champion served -> the drift gone.
#
#   MLflow            mlflow server (sqlite, artifact proxy), the pinned venv
#   serve             `fraudops serve` following models:/fraud-detector@champion (MODEL_POLL_SECONDS=1,
#                     DRIFT_WINDOW_SECONDS=10: the PSI covers the last 5-10 s)
#   Prometheus        scraping serve every 1 s, evaluating deploy/monitoring/rules/*.yaml every 1 s: a copy in
#                     which only `for:` is scaled (x 1/120: ScoreDistributionDrift's 30m -> 15s; checked: the
#                     parsed documents differ in nothing else), said in the output
#   Alertmanager      the deployed deploy/monitoring/alertmanager/alertmanager.yaml, only the bridge's
#                     in-cluster URL rewritten to loopback (as scripts/test-retrain-trigger.sh); group_wait 30s
#   the bridge        `fraudops retrain-trigger`
#   Airflow 3         api-server + scheduler (LocalExecutor, sqlite) + dag-processor on deploy/airflow/dags in
#                     local mode; use_job_schedule off, so the only run is the one the bridge queues
#   Kafka, the lake   tansu (in memory) and `fraudops archive` writing transactions-input and fraud-labels into a
#                     lake directory, which the DAG reads (LAKE_URL)
#
# Steps (scripts/lib/retrain_loop.py drives the traffic and prints the timeline):
#   1. an initial champion: `fraudops train` on a normal simulation (5000 cards, 127 days), registered in MLflow
#      as version 1 = @champion; serve loads it;
#   2. normal traffic (the 7 days after the simulation's test window, /predict/batch with the batch windows as
#      history, ~1000 transactions/s): score PSI < 0.2, no alert;
#   3. the world shifts (the same cards and terminals, every amount x2): `fraudops attack` sends the shifted
#      world's last 59 days (the retraining window and its feature history) through Kafka, labels follow a day
#      later on fraud-labels, the archive commits both to the lake; then the shifted traffic reaches serve
#      (its last week as /predict/batch with history, what the stream worker sends): PSI > 0.2,
#      ScoreDistributionDrift pending then firing in Prometheus, in Alertmanager, its notification reaches the
#      bridge, which queues one ml_model_retrain run with the alert in its conf;
#   4. Airflow runs it; fetch_data reads the alert's window out of the lake (`fraudops lake snapshot`, labels
#      known at the data's end), the new version is trained on the archived traffic, passes the gate on the
#      alert's test window and becomes @champion;
#   5. serve swaps to it while the traffic flows: zero failed requests;
#   6. the PSI against the new model's reference is back under 0.2 on the continued shifted traffic.
#   Exit status 1 if any step fails or times out.
#
#   scripts/test-retrain-loop.sh        (~3-4 min warm)
#
# Installs Airflow and MLflow into their venvs if missing, Prometheus and Alertmanager (apt), tansu (cargo). Starts and stops
# its own processes (each in its own process group, by PID), in a temporary directory it removes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir, free_port, scratch_with_groups, start_group, start_tansu, wait_until
source scripts/lib/alert_path.sh  # prepare_airflow_for_bridge, start_bridge_and_alertmanager
REPO="$PWD"
t0=$SECONDS

AIRFLOW_BIN="$(scripts/ensure/airflow-venv.sh | tail -n1)"
MLFLOW_BIN="$(scripts/ensure/mlflow-venv.sh | tail -n1)"
scripts/ensure/apt.sh prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager
TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
PY="$(dirname "$AIRFLOW_BIN")/python"
cargo build --locked -q -p fraudops-cli
cargo build --locked -q -p fraudops-serve --example replay_bodies
FRAUDOPS_BIN="$(target_dir)/debug/fraudops"
REPLAY_BODIES="$(target_dir)/debug/examples/replay_bodies"

scratch_with_groups retrain-loop  # TMP, pids, the EXIT trap (scripts/lib/common.sh)
# Every binary runs with cwd $TMP (start_group: the repository's .env stays out of their configuration).

# --- MLflow first (its start-up is the slowest) -------------------------------------------------------------
mlflow_port="$(free_port)"
MLFLOW="http://127.0.0.1:$mlflow_port"
mkdir -p "$TMP/mlflow"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false start_group mlflow.log "$MLFLOW_BIN" server \
  --backend-store-uri "sqlite:///$TMP/mlflow/mlflow.db" --artifacts-destination "$TMP/mlflow/artifacts" \
  --serve-artifacts --host 127.0.0.1 --port "$mlflow_port" --workers 1

# --- Airflow: database, then api-server, scheduler and dag-processor ------------------------------------------
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
# The weekly schedule would queue a scheduled run as soon as the DAG is unpaused: only the alert's run here.
export AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE=False
export AIRFLOW__API_AUTH__JWT_SECRET="jwt-$RANDOM$RANDOM$RANDOM$RANDOM"
export FRAUDOPS_BIN FRAUDOPS_WORK_DIR="$TMP/work"
# --- Kafka and the lake: what the retraining reads is what the archive wrote from the topics ------------------
kafka_port="$(free_port)" archive_metrics="$(free_port)"
KAFKA="127.0.0.1:$kafka_port"
start_tansu tansu.log "$kafka_port"
RUST_LOG=info start_group archive.log "$FRAUDOPS_BIN" archive --bootstrap-servers "$KAFKA" --lake "$TMP/lake" \
  --metrics-port "$archive_metrics" --flush-interval 1s
export LAKE_URL="$TMP/lake"
# The shifted world reaches the lake through `fraudops attack`, which marks its traffic synthetic; a snapshot
# leaves synthetic traffic out unless told, and this drill retrains on its own traffic (fetch_data's
# `lake snapshot` reads LAKE_INCLUDE_SYNTHETIC from the environment the local runner passes on).
export LAKE_INCLUDE_SYNTHETIC=true
export AIRFLOW_CONN_MLFLOW_DEFAULT="$MLFLOW"
unset MLFLOW_TRACKING_URI ALERT_WEBHOOK_URL PUSHGATEWAY_URL
mkdir -p "$TMP/work"
prepare_airflow_for_bridge  # scripts/lib/alert_path.sh: environment, the bridge's user and secrets, database
af_port="$(free_port)"
AIRFLOW="http://127.0.0.1:$af_port"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="$AIRFLOW/execution/"
start_group api-server.log "$AIRFLOW_BIN" api-server --host 127.0.0.1 --port "$af_port"
# INFO in the task logs: what fetch_data read from the lake is checked there.
AIRFLOW__LOGGING__LOGGING_LEVEL=INFO start_group scheduler.log "$AIRFLOW_BIN" scheduler
start_group dag-processor.log "$AIRFLOW_BIN" dag-processor
echo "[retrain-loop] airflow db migrate done, api-server/scheduler/dag-processor starting: $((SECONDS - t0)) s"

# --- the data: a normal world and the same world with amounts x2 -------------------------------------------
# 127 days ending today; the champion trains on days 99-120 (train 7, delay 7, test 7 days), the traffic is
# days 120-127, never seen by training. Batch windows over the whole file go with each request as history.
start_date="$(date -u -d "today - 127 days" +%F)"
train_start="$(date -u -d "today - 28 days" +%F)"
replay_from="$(date -u -d "today - 7 days" +%F) 00:00:00"
replays=()
for scale in 1 2; do
  "$FRAUDOPS_BIN" simulate --out "$TMP/world-x$scale.csv.gz" --days 127 --start-date "$start_date" --seed 11 \
    --amount-scale "$scale" >"$TMP/simulate-x$scale.log" 2>&1
  "$REPLAY_BODIES" "$TMP/world-x$scale.csv.gz" "$replay_from" "$TMP/bodies-x$scale.jsonl" 2>>"$TMP/simulate-x$scale.log" &
  replays+=($!)
done
wait_until "MLflow" 900 curl -sf "$MLFLOW/health"
(cd "$TMP" && MLFLOW_TRACKING_URI="$MLFLOW" RUST_LOG=warn "$FRAUDOPS_BIN" train --data "$TMP/world-x1.csv.gz" \
  --out "$TMP/champion" --train-start "$train_start") >"$TMP/train.log" 2>&1 || { tail -n 40 "$TMP/train.log"; exit 1; }
grep -E "gate:" "$TMP/train.log" | sed 's/^/[retrain-loop] initial champion: /' || true
for pid in "${replays[@]}"; do wait "$pid" || { cat "$TMP"/simulate-x*.log; exit 1; }; done
# What the attack sends through Kafka when the world shifts: the shifted world's last 59 days (the alert run's
# window, days -20..0, and the 38 days of feature history `lake snapshot` reads before it).
"$PY" - "$TMP/world-x2.csv.gz" "$TMP/shifted-traffic.csv.gz" "$(date -u -d "today - 58 days" +%F) 00:00:00" <<'PY'
import gzip, sys
src, dst, since = sys.argv[1:]
with gzip.open(src, "rt") as f, gzip.open(dst, "wt", compresslevel=1) as out:
    header = f.readline()
    out.write(header)
    column = [c.strip().lower() for c in header.split(",")].index("tx_datetime")
    out.writelines(line for line in f if line.split(",")[column] >= since)
PY
echo "[retrain-loop] MLflow up, version 1 registered as @champion, traffic prepared: $((SECONDS - t0)) s"

# --- serve following @champion -----------------------------------------------------------------------------
serve_port="$(free_port)"
SERVE="http://127.0.0.1:$serve_port"
MLFLOW_TRACKING_URI="$MLFLOW" MLFLOW_MODEL_URI="models:/fraud-detector@champion" MODEL_POLL_SECONDS=1 \
  DRIFT_WINDOW_SECONDS=10 RUST_LOG=info start_group serve.log "$FRAUDOPS_BIN" serve --bind 127.0.0.1 --port "$serve_port"

# --- Prometheus on the deployed rules, `for:` scaled ------------------------------------------------------
am_port="$(free_port)" bridge_port="$(free_port)"
AM="http://127.0.0.1:$am_port" BRIDGE="http://127.0.0.1:$bridge_port"
start_prometheus_on_deployed_rules "$serve_port"  # scripts/lib/alert_path.sh: sets PROM
alert_for="$(grep -A1 'alert: ScoreDistributionDrift' -A4 "$TMP/prometheus/rules/alerts.yaml" | sed -n 's/^ *for: //p')"
[[ "$alert_for" == 15s ]] || { echo "FAIL: rendered for: $alert_for" >&2; exit 1; }
echo "[retrain-loop] Prometheus rules: deploy/monitoring/rules/*.yaml with every for: x 1/120 (ScoreDistributionDrift 30m -> $alert_for), nothing else changed"

# --- the on-call sink, the bridge, Alertmanager on the deployed file ------------------------------------------
start_group sink.log "$PY" "$REPO/deploy/airflow/tests/webhook_sink.py" "$TMP/sink.port" "$TMP/oncall.jsonl"
start_bridge_and_alertmanager  # scripts/lib/alert_path.sh

wait_until "serve ready" 300 curl -sf "$SERVE/ready"
wait_until "Prometheus" 150 curl -sf "$PROM/-/ready"
wait_until "Alertmanager" 150 curl -sf "$AM/-/ready"
wait_until "the bridge" 150 curl -sf "$BRIDGE/health"
wait_until "Airflow API server" 600 curl -sf "$AIRFLOW/api/v2/monitor/health"
# The DAG serialized by the dag-processor (a run for an unknown DAG would be refused) and the scheduler alive.
"$PY" - "$AIRFLOW" "$TMP/secrets/airflow-password" <<'PY' || { tail -n 30 "$TMP"/dag-processor.log "$TMP"/scheduler.log; exit 1; }
import json, sys, time, urllib.request
airflow, password_file = sys.argv[1:]
req = urllib.request.Request(f"{airflow}/auth/token", method="POST", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "fraudops-retrain-trigger", "password": open(password_file).read().strip()}).encode())
token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
deadline = time.time() + 120
while time.time() < deadline:
    try:
        req = urllib.request.Request(f"{airflow}/api/v2/dags/ml_model_retrain", headers={"Authorization": f"Bearer {token}"})
        dag = json.load(urllib.request.urlopen(req, timeout=10))
        health = json.load(urllib.request.urlopen(f"{airflow}/api/v2/monitor/health", timeout=10))
        if not dag["is_paused"] and health["scheduler"]["status"] == "healthy":
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.5)
sys.exit("ml_model_retrain not parsed and unpaused, or the scheduler unhealthy, within 120 s")
PY
echo "[retrain-loop] all up (serve on @champion, Prometheus, Alertmanager, bridge, Airflow): $((SECONDS - t0)) s"

cat >"$TMP/loop.json" <<EOF
{"serve": "$SERVE", "prometheus": "$PROM", "alertmanager": "$AM", "bridge": "$BRIDGE", "airflow": "$AIRFLOW",
 "mlflow": "$MLFLOW", "airflow_password_file": "$TMP/secrets/airflow-password", "serve_log": "$TMP/serve.log",
 "normal_bodies": "$TMP/bodies-x1.jsonl", "shifted_bodies": "$TMP/bodies-x2.jsonl", "rate": 1000,
 "fraudops": "$FRAUDOPS_BIN", "kafka": "$KAFKA", "lake": "$TMP/lake", "shifted_traffic": "$TMP/shifted-traffic.csv.gz",
 "archive_metrics": "http://127.0.0.1:$archive_metrics/metrics", "work": "$TMP",
 "alert_for": "$alert_for", "alert_for_seconds": 15, "airflow_home": "$AIRFLOW_HOME"}
EOF
if ! "$PY" "$REPO/scripts/lib/retrain_loop.py" "$TMP/loop.json"; then
  for log in scheduler.log bridge.log serve.log archive.log attack.log; do echo "--- $log"; tail -n 20 "$TMP/$log"; done
  find "$TMP/airflow/logs" -name '*.log' -newer "$TMP/loop.json" -exec sh -c 'echo "--- $1"; tail -n 15 "$1"' _ {} \; 2>/dev/null | tail -n 80
  exit 1
fi
echo "test-retrain-loop: passed in $((SECONDS - t0)) s"
