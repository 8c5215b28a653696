#!/usr/bin/env bash
# The Airflow DAGs of deploy/airflow/dags in a real Airflow, against a real MLflow server and a real
# Kafka-protocol broker (tansu):
#   1. both DAGs import with no errors, in both modes, and have the expected tasks, order, schedule, owner,
#      retries, params and operators (deploy/airflow/tests/check_dag.py and check_attack_dag.py, plus
#      `airflow dags list-import-errors`);
#   2. `airflow dags test ml_model_retrain` in local mode, with an alert in its conf as `fraudops retrain-trigger`
#      starts it (the data end with the alert's day), runs a full retraining with the local binary from a
#      transaction lake filled through Kafka (a simulated world replayed to transactions-input, its labels a
#      day later to fraud-labels, `fraudops archive` writing both): lake snapshot -> train -> validate ->
#      register/promote in MLflow -> notify (to a local webhook sink);
#      then MLflow's REST API shows the registered version as champion and the run's gate decision, and a
#      real Prometheus Pushgateway holds the outcome register pushed (PUSHGATEWAY_URL);
#   3. `airflow dags test kafka_attack_simulation` in local mode, short phases (200:5s,400:5s) and the
#      closed loop (step 2, max_rate 3200, Alertmanager polled every 1 s), against tansu, the API
#      (`fraudops serve`), the stream worker and a real Alertmanager (the admin alert is posted once the
#      worker has consumed the 3000 messages of the listed phases): every task succeeds, both listed phases
#      run in full, the attack escalates to 800/s and stops in that phase when the alert fires, the broker
#      holds exactly the messages sent (counted with confluent-kafka), the results, the closed loop's outcome
#      and the alert's firing time are in XCom, the phase table in the log;
#   4. the same DAG with the broker down: the task fails with the broker's address in its log, is retried
#      once (retry delay shortened to 1 s by FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS), and the attack never runs.
#
#   scripts/test-airflow.sh
#
# Installs Airflow, MLflow and confluent-kafka into venvs if missing (scripts/ensure/*-venv.sh; minutes,
# once), tansu (scripts/ensure/tansu.sh) and Alertmanager (apt). Starts and stops its own servers (by
# process group), in a temporary directory it removes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir, free_port, scratch_with_groups, start_group, start_tansu, wait_until
REPO="$PWD"

AIRFLOW_BIN="$(scripts/ensure/airflow-venv.sh | tail -n1)"
MLFLOW_BIN="$(scripts/ensure/mlflow-venv.sh | tail -n1)"
KAFKA_PY="$(scripts/ensure/kafka-bench-venv.sh | tail -n1)/python"
TANSU_BIN="$(scripts/ensure/tansu.sh | tail -n1)"
scripts/ensure/apt.sh prometheus-alertmanager:prometheus-alertmanager prometheus-pushgateway:prometheus-pushgateway
PY="$(dirname "$AIRFLOW_BIN")/python"
echo "airflow: $("$PY" -c 'import airflow; print(airflow.__version__)')  mlflow: $("$MLFLOW_BIN" --version | tail -n1)"
cargo build --locked -q -p fraudops-cli
FRAUDOPS_BIN="$(target_dir)/debug/fraudops"
export FRAUDOPS_BIN

scratch_with_groups airflow  # TMP, pids, the EXIT trap (scripts/lib/common.sh)

export AIRFLOW_HOME="$TMP/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/deploy/airflow/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__LOGGING__LOGGING_LEVEL=WARNING
export PYTHONWARNINGS=ignore
unset MLFLOW_TRACKING_URI ALERT_WEBHOOK_URL
t0=$SECONDS
"$AIRFLOW_BIN" db migrate >"$TMP/migrate.log" 2>&1 || { cat "$TMP/migrate.log"; exit 1; }
echo "airflow db migrate: $((SECONDS - t0)) s"

# MLflow and the webhook sink start now, so MLflow's slow start-up overlaps the checks of part 1.
port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
mkdir -p "$TMP/mlflow"
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false setsid "$MLFLOW_BIN" server \
  --backend-store-uri "sqlite:///$TMP/mlflow/mlflow.db" --artifacts-destination "$TMP/mlflow/artifacts" \
  --serve-artifacts --host 127.0.0.1 --port "$port" --workers 1 >"$TMP/mlflow/server.log" 2>&1 &
pids+=($!)
setsid "$PY" "$REPO/deploy/airflow/tests/webhook_sink.py" "$TMP/sink.port" "$TMP/sink.log" &
pids+=($!)
MLFLOW="http://127.0.0.1:$port"
# The Pushgateway register pushes to (in memory: Debian's default persists to /var/lib).
pgw_port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
PUSHGATEWAY="http://127.0.0.1:$pgw_port"
setsid prometheus-pushgateway --web.listen-address="127.0.0.1:$pgw_port" --persistence.file= \
  >"$TMP/pushgateway.log" 2>&1 &
pids+=($!)

# The attack's surroundings: tansu (in memory), Alertmanager, the API and the stream worker (which creates
# the topics the DAG's check requires), each in its own process group; cwd $TMP keeps the repository's .env
# out of the binaries' configuration.
kafka_port="$(free_port)" am_port="$(free_port)" api_port="$(free_port)" stream_metrics="$(free_port)"
BROKER="127.0.0.1:$kafka_port" AM="http://127.0.0.1:$am_port" API="http://127.0.0.1:$api_port"
mkdir -p "$TMP/kafka"
setsid "$TANSU_BIN" broker --storage-engine memory://tansu/ --listener-url "tcp://$BROKER" \
  --advertised-listener-url "tcp://$BROKER" >"$TMP/kafka/tansu.log" 2>&1 &
pids+=($!)
printf 'route:\n  receiver: none\nreceivers:\n  - name: none\n' >"$TMP/kafka/alertmanager.yml"
setsid prometheus-alertmanager --config.file="$TMP/kafka/alertmanager.yml" --storage.path="$TMP/kafka/am" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$TMP/kafka/alertmanager.log" 2>&1 &
pids+=($!)
(cd "$TMP" && RUST_LOG=warn exec setsid "$FRAUDOPS_BIN" serve --bind 127.0.0.1 --port "$api_port") \
  >"$TMP/kafka/serve.log" 2>&1 &
pids+=($!)
(cd "$TMP" && RUST_LOG=warn exec setsid "$FRAUDOPS_BIN" stream --bootstrap-servers "$BROKER" --api-url "$API" \
  --metrics-port "$stream_metrics") >"$TMP/kafka/stream.log" 2>&1 &
pids+=($!)

# --- 1. the DAG as Airflow parses it ------------------------------------------------------------------------
for mode in kubernetes local; do
  FRAUDOPS_AIRFLOW_MODE=$mode "$PY" "$REPO/deploy/airflow/tests/check_dag.py" "$AIRFLOW__CORE__DAGS_FOLDER" "$mode"
  FRAUDOPS_AIRFLOW_MODE=$mode "$PY" "$REPO/deploy/airflow/tests/check_attack_dag.py" "$AIRFLOW__CORE__DAGS_FOLDER" "$mode"
  # --local: parse the folder now (without it the command reads what a DAG processor stored in the database);
  # --bundle-name: parse it as the DAG processor does, with the folder on sys.path (the DAGs import
  # fraudops_dag_common from it). A failing command prints its errors below rather than ending the script.
  errors="$(FRAUDOPS_AIRFLOW_MODE=$mode "$AIRFLOW_BIN" dags list-import-errors --local --bundle-name dags-folder -o json \
    2>/dev/null | tail -n1 || true)"
  if [[ "$errors" != "[]" ]]; then
    echo "FAIL [$mode] airflow dags list-import-errors: $errors" >&2
    exit 1
  fi
  echo "ok   [$mode] airflow dags list-import-errors: none"
done

# --- 2. a full retraining in local mode ---------------------------------------------------------------------
for _ in $(seq 900); do
  curl -sf "$MLFLOW/health" >/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { tail -n 30 "$TMP/mlflow/server.log"; exit 1; }
  sleep 0.2
done
curl -sf "$MLFLOW/health" >/dev/null || { echo "MLflow did not start" >&2; tail -n 30 "$TMP/mlflow/server.log"; exit 1; }
for _ in $(seq 100); do [[ -s "$TMP/sink.port" ]] && break; sleep 0.1; done
for _ in $(seq 100); do curl -sf "$PUSHGATEWAY/-/ready" >/dev/null && break; sleep 0.1; done
echo "mlflow server up at $MLFLOW after $((SECONDS - t0)) s"

# The lake the retraining reads, filled as in production: traffic through Kafka, archived by `fraudops archive`.
# A small world (500 cards, 60 days to 2018-05-31) replayed with its labels known a day after each transaction.
# Its own broker: the attack DAG below counts what its broker holds and what the stream worker consumed.
lake_kafka_port="$(free_port)" lake_metrics="$(free_port)"
LAKE_BROKER="127.0.0.1:$lake_kafka_port"
start_tansu kafka/tansu-lake.log "$lake_kafka_port"
RUST_LOG=warn start_group kafka/archive.log "$FRAUDOPS_BIN" archive --bootstrap-servers "$LAKE_BROKER" --lake "$TMP/lake" \
  --metrics-port "$lake_metrics" --flush-interval 1s
"$FRAUDOPS_BIN" simulate --out "$TMP/world.csv.gz" --customers 500 --terminals 1000 --days 60 \
  --start-date 2018-04-01 --seed 7 >"$TMP/world.log" 2>&1 || { cat "$TMP/world.log"; exit 1; }
"$FRAUDOPS_BIN" lake replay --bootstrap-servers "$LAKE_BROKER" --data "$TMP/world.csv.gz" --label-delay 1d \
  >"$TMP/replay.log" 2>&1 || { cat "$TMP/replay.log"; exit 1; }
n_world="$(sed -n 's/^replayed \([0-9]*\) transactions.*/\1/p' "$TMP/replay.log")"
lake_holds_world() {
  "$FRAUDOPS_BIN" lake stats --lake "$TMP/lake" --json | "$PY" -c '
import json, sys
s = json.load(sys.stdin)
sys.exit(0 if s["transactions"]["rows"] == s["labels"]["rows"] == int(sys.argv[1]) else 1)' "$n_world"
}
WAIT_LOGS="$TMP/kafka/archive.log" wait_until "the archive to hold the $n_world transactions and labels" 600 lake_holds_world
echo "lake filled through Kafka: $n_world transactions and their labels ($("$FRAUDOPS_BIN" lake stats --lake "$TMP/lake" --json))"

# The connection (not MLFLOW_TRACKING_URI) is what the DAG resolves; small data keeps the run short.
# The run carries an alert, as `fraudops retrain-trigger` starts it: its data end with the alert's UTC day
# (2018-05-31, so the exclusive end is 2018-06-01), not with the run's date; labels known by then exist.
conf='{"alert": {"alertname": "ScoreDistributionDrift", "starts_at": "2018-05-31T23:40:12Z", "firing": 1}}'
t1=$SECONDS
if ! FRAUDOPS_AIRFLOW_MODE=local FRAUDOPS_WORK_DIR="$TMP/work" LAKE_URL="$TMP/lake" \
  AIRFLOW_CONN_MLFLOW_DEFAULT="$MLFLOW" PUSHGATEWAY_URL="$PUSHGATEWAY" ALERT_WEBHOOK_URL="http://127.0.0.1:$(cat "$TMP/sink.port")/hook" \
  timeout 900 "$AIRFLOW_BIN" dags test ml_model_retrain -c "$conf" >"$TMP/dags-test.log" 2>&1; then
  tail -n 80 "$TMP/dags-test.log"
  echo "FAIL: airflow dags test ml_model_retrain" >&2
  exit 1
fi
echo "airflow dags test ml_model_retrain: $((SECONDS - t1)) s"
# fetch_data read the window out of the lake: its snapshot is exactly the archived world's transactions of the
# window's days (2018-04-03, 38 days of feature history before train_start, to the data's end), with the world's
# labels (each known a day after its transaction, so before the cutoff 2018-06-01).
"$PY" - "$TMP/world.csv.gz" "$TMP"/work/*/transactions.csv.gz <<'PY' || exit 1
import csv, gzip, sys
def rows(path, since=""):
    with gzip.open(path, "rt") as f:
        return {(r[0], r[7] in ("1", "true")) for r in (list(map(str.strip, line)) for line in csv.reader(f))
                if r[0].isdigit() and r[1] >= since}
world, snapshots = sys.argv[1], sys.argv[2:]
want, got = rows(world, "2018-04-03"), rows(snapshots[0]) if len(snapshots) == 1 else set()
ok = len(snapshots) == 1 and got == want
print(f"{'ok  ' if ok else 'FAIL'} [dags test] fetch_data: the lake's window ({len(got)} transactions, "
      f"{sum(f for _, f in got)} frauds) is the archived world's 2018-04-03..2018-05-30 ({len(want)})")
sys.exit(0 if ok else 1)
PY

# What happened, as Airflow, MLflow and the webhook saw it.
FRAUDOPS_AIRFLOW_MODE=local "$PY" - "$MLFLOW" "$TMP/sink.log" "$PUSHGATEWAY" <<'PY'
import json, os, subprocess, sys, time, urllib.parse, urllib.request

mlflow, sink, pushgateway = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []

def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} [dags test] {name}{'' if ok else f': {detail}'}")
    if not ok:
        failures.append(name)

def airflow(*args):
    binary = os.path.join(os.path.dirname(sys.executable), "airflow")
    out = subprocess.run([binary, *args, "-o", "json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])

def rest(method, **query):
    url = f"{mlflow}/api/2.0/mlflow/{method}?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)

runs = airflow("dags", "list-runs", "ml_model_retrain")
check("one DAG run, state success", [r["state"] for r in runs] == ["success"], runs)
states = airflow("tasks", "states-for-dag-run", "ml_model_retrain", runs[0]["run_id"])
got = {s["task_id"]: s["state"] for s in states}
want = {t: "success" for t in ["fetch_data", "train", "validate", "register_promote", "notify"]}
check("every task succeeded", got == want, got)

alias = rest("registered-models/alias", name="fraud-detector", alias="champion")["model_version"]
check("fraud-detector@champion is version 1 (first version)", alias["version"] == "1", alias)
tags = {t["key"]: t["value"] for t in alias.get("tags", [])}
check("version tagged promoted", tags.get("fraudops.gate.decision") == "promoted", tags)
run = rest("runs/get", run_id=alias["run_id"])["run"]
rtags = {t["key"]: t["value"] for t in run["data"]["tags"]}
params = {p["key"]: p["value"] for p in run["data"]["params"]}
metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
check("run logged by `fraudops register` from Airflow", rtags.get("fraudops.command") == "register"
      and rtags.get("mlflow.runName", "").startswith("airflow-manual"), rtags)
check("run finished", run["info"]["status"] == "FINISHED", run["info"]["status"])
check("training window from the alert's day (data end 2018-06-01)", params.get("train_start") == "2018-05-11", params)

check("metrics logged", all(k in metrics for k in ["roc_auc", "average_precision", "card_precision_at_100"]), metrics)
files = rest("artifacts/list", run_id=alias["run_id"], path="model").get("files", [])
check("artifact model/model.json", any(f["path"] == "model/model.json" for f in files), files)
check("version registered from an MLflow 3 logged model", alias.get("source", "").startswith("models:/m-"), alias)

with open(sink, encoding="utf-8") as f:
    posts = [json.loads(line) for line in f if line.strip()]
check("notify posted the decision to the webhook", len(posts) == 1 and posts[0]["decision"]["promoted"] is True
      and "promoted to @champion" in posts[0]["text"], posts)
check("notify names the alert that started the run",
      bool(posts) and "after ScoreDistributionDrift (firing since 2018-05-31T23:40:12Z)" in posts[0]["text"], posts)
if posts:
    print(f"     webhook text: {posts[0]['text']}")

with urllib.request.urlopen(f"{pushgateway}/metrics", timeout=10) as r:
    pushed = {}
    for line in r.read().decode().splitlines():
        if line.startswith("ml_model_retrain_") and 'job="fraudops-retrain"' in line:
            series, value = line.rsplit(" ", 1)
            pushed[series.split("{", 1)[0]] = float(value)
check("register pushed: promoted", pushed.get("ml_model_retrain_last_promoted") == 1.0, pushed)
age = time.time() - pushed.get("ml_model_retrain_last_success_timestamp_seconds", 0.0)
check("register pushed: last success within the run", 0 <= age < 900, pushed)
print(f"[dags test] {len(failures)} failed")
sys.exit(1 if failures else 0)
PY

# --- 3. the attack in local mode against tansu, the API, the stream worker and Alertmanager -------------------
WAIT_LOGS="$TMP/kafka/*.log"  # what wait_until (scripts/lib/common.sh) shows on failure
wait_until "Alertmanager ready" 150 curl -sf "$AM/-/ready"
wait_until "API ready" 150 curl -sf "$API/ready"
# The stream worker creates transactions-input, fraud-predictions and the dead-letter topic on start.
wait_until "the stream worker's topics" 150 \
  "$FRAUDOPS_BIN" attack --check-only --bootstrap-servers "$BROKER" --require-topics fraud-predictions
echo "tansu at $BROKER, API at $API, Alertmanager at $AM, stream worker up"

# The administrator's alert, as Prometheus would send it, once the worker has consumed the 3000 messages of
# the listed phases (the counter summed over its labels): the attack runs both in full, escalates, and
# stops in the escalated phase when it sees the alert.
# shellcheck disable=SC2016 # expanded by the inner shell, from its arguments
setsid bash -c '
  for _ in $(seq 1500); do
    if curl -sf "$1/metrics" | awk "/^kafka_messages_consumed_total[{ ]/ { n += \$NF } END { exit !(n >= 3000) }"; then
      curl -sf -X POST -H "Content-Type: application/json" -d "[{\"labels\": {\"alertname\":
        \"AdminNotification_MaxScaleHighCPU\", \"severity\": \"critical\"}}]" "$2/api/v2/alerts" >/dev/null
      date -u +%Y-%m-%dT%H:%M:%SZ >"$3"
      exit 0
    fi
    sleep 0.2
  done' _ "http://127.0.0.1:$stream_metrics" "$AM" "$TMP/kafka/alert.posted" &
pids+=($!)

attack_conf() { # attack_conf BOOTSTRAP_SERVERS
  printf '{"phases": "200:5s,400:5s", "escalate": true, "step": 2, "max_rate": 3200, "alert_poll": "1s", "bootstrap_servers": "%s", "api_url": "%s", "alertmanager_url": "%s", "alert_timeout_seconds": 30}' \
    "$1" "$API" "$AM"
}
export ATTACK_METRICS_PORT=0
t1=$SECONDS
if ! FRAUDOPS_AIRFLOW_MODE=local FRAUDOPS_WORK_DIR="$TMP/attack-work" AIRFLOW__LOGGING__LOGGING_LEVEL=INFO \
  timeout 600 "$AIRFLOW_BIN" dags test kafka_attack_simulation -c "$(attack_conf "$BROKER")" >"$TMP/attack-test.log" 2>&1; then
  tail -n 80 "$TMP/attack-test.log"
  echo "FAIL: airflow dags test kafka_attack_simulation" >&2
  exit 1
fi
echo "airflow dags test kafka_attack_simulation: $((SECONDS - t1)) s"
count="$("$KAFKA_PY" "$REPO/deploy/airflow/tests/count_messages.py" "$BROKER" transactions-input)"

# --- 4. the broker down: the task fails with the broker's address, Airflow retries it once ------------------
dead="127.0.0.1:$(free_port)"
t1=$SECONDS
FRAUDOPS_AIRFLOW_MODE=local FRAUDOPS_WORK_DIR="$TMP/attack-work" FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS=1 \
  AIRFLOW__LOGGING__LOGGING_LEVEL=INFO timeout 600 "$AIRFLOW_BIN" dags test kafka_attack_simulation -c "$(attack_conf "$dead")" >"$TMP/attack-fail.log" 2>&1 || true
echo "airflow dags test kafka_attack_simulation, broker down: $((SECONDS - t1)) s"

"$PY" "$REPO/deploy/airflow/tests/check_attack_run.py" "$count" "$dead" "$TMP/attack-test.log" \
  "$TMP/attack-fail.log" "$TMP/kafka/alert.posted"
echo "test-airflow: passed in $((SECONDS - t0)) s"
