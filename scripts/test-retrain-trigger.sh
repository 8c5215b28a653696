#!/usr/bin/env bash
# The alert → retraining path with real components, no stand-ins: a real Alertmanager on the deployed
# deploy/monitoring/alertmanager/alertmanager.yaml (only the bridge's in-cluster URL rewritten to loopback:
# Alertmanager 0.25 has no webhook url_file; the token and chat URLs come from secrets/ files as in the
# cluster), `fraudops retrain-trigger`, and a real Airflow 3 API server (the pinned venv, SimpleAuthManager,
# the DAGs of deploy/airflow/dags serialized into its database):
#   1. ScoreDistributionDrift and ModelQualityDegraded posted to Alertmanager as Prometheus would: after the
#      route's group_wait each reaches the bridge (with the bearer token from the file) and on-call (`continue`),
#      and Airflow holds exactly one queued ml_model_retrain run per alert, triggered over the REST API by the
#      bridge's user, with the incident's run id and the alert in its conf;
#   2. the same incident notified again (what repeat_interval or a retried notification sends): Airflow answers
#      409, the bridge answers 200 and counts a duplicate, still one run; the alert resolved and firing again
#      (a new startsAt): a second run;
#   3. Airflow renders the alert run's fetch_data and train arguments (`airflow tasks render`): the data end with
#      the alert's UTC day;
#   4. a request without the token is refused (401) and reaches nothing;
#   5. a feature-store outage under load (scripts/lib/outage_under_load.py): `fraudops serve` on a real Redis and a
#      real Prometheus on the deployed rules (every `for:` x 1/120) alerting to the same Alertmanager; Redis is
#      killed under direct calls: every answer stays 200 with feature_source "store_unavailable",
#      FeatureStoreDegraded fires, a real drift added meanwhile fires ScoreDistributionDrift in Prometheus,
#      Alertmanager holds it (inhibited), and past the route's group_wait no retraining run exists.
#
#   scripts/test-retrain-trigger.sh        (~2 min warm: Airflow db migrate + API server start ~20 s, group_wait 30 s,
#                                           the outage ~1 min of which 40 s prove that nothing is sent)
#
# Installs Airflow into its venv if missing (scripts/ensure/airflow-venv.sh) and Alertmanager (apt). Starts and
# stops its own processes (by process group), in a temporary directory it removes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib/common.sh  # target_dir, free_port, scratch_with_groups, wait_until
source scripts/lib/alert_path.sh  # prepare_airflow_for_bridge, start_bridge_and_alertmanager, start_prometheus_on_deployed_rules
REPO="$PWD"

AIRFLOW_BIN="$(scripts/ensure/airflow-venv.sh | tail -n1)"
scripts/ensure/apt.sh prometheus-alertmanager:prometheus-alertmanager prometheus:prometheus redis-server:redis-server
PY="$(dirname "$AIRFLOW_BIN")/python"
cargo build --locked -q -p fraudops-cli
FRAUDOPS_BIN="$(target_dir)/debug/fraudops"

scratch_with_groups retrain-trigger  # TMP, pids, the EXIT trap (scripts/lib/common.sh)

# --- Airflow: database, the DAGs serialized (what the DAG processor does), the API server ------------------------
t0=$SECONDS
prepare_airflow_for_bridge  # scripts/lib/alert_path.sh: environment, the bridge's user and secrets, database
"$AIRFLOW_BIN" dags reserialize >"$TMP/reserialize.log" 2>&1 || { cat "$TMP/reserialize.log"; exit 1; }
af_port="$(free_port)"
AIRFLOW="http://127.0.0.1:$af_port"
setsid "$AIRFLOW_BIN" api-server --host 127.0.0.1 --port "$af_port" >"$TMP/api-server.log" 2>&1 &
pids+=($!)

# --- the on-call chat (a sink), the bridge, Alertmanager on the deployed file -----------------------------------
setsid "$PY" "$REPO/deploy/airflow/tests/webhook_sink.py" "$TMP/sink.port" "$TMP/oncall.jsonl" &
pids+=($!)
bridge_port="$(free_port)" am_port="$(free_port)"
BRIDGE="http://127.0.0.1:$bridge_port" AM="http://127.0.0.1:$am_port"
start_bridge_and_alertmanager  # scripts/lib/alert_path.sh

wait_until "Airflow API server" 600 curl -sf "$AIRFLOW/api/v2/monitor/health"
wait_until "the bridge" 100 curl -sf "$BRIDGE/health"
wait_until "Alertmanager" 100 curl -sf "$AM/-/ready"
echo "Airflow API server at $AIRFLOW, bridge at $BRIDGE, Alertmanager at $AM after $((SECONDS - t0)) s"

# --- 1. the two alerts through Alertmanager ----------------------------------------------------------------------
post_alert() { # post_alert ALERTNAME STARTS_AT
  curl -sf -X POST -H 'Content-Type: application/json' "$AM/api/v2/alerts" -d "[{\"labels\": {\"alertname\": \"$1\",
    \"severity\": \"warning\", \"job\": \"fraudops-api\", \"namespace\": \"fraudops\"}, \"annotations\": {\"summary\": \"$1 (test)\"},
    \"startsAt\": \"$2\", \"generatorURL\": \"http://prometheus/graph\"}]" >/dev/null
}
DRIFT_AT="2026-11-30T23:40:12Z" QUALITY_AT="2026-12-01T06:00:00Z"
post_alert ScoreDistributionDrift "$DRIFT_AT"
post_alert ModelQualityDegraded "$QUALITY_AT"
t1=$SECONDS
# After the route's group_wait (at once for alerts that started longer ago than that) the notifications; both
# runs must be in Airflow within 90 s.
("$PY" - "$AIRFLOW" "$TMP/secrets/airflow-password" <<'PY'
import json, sys, time, urllib.request
airflow, password_file = sys.argv[1], sys.argv[2]
def token():
    req = urllib.request.Request(f"{airflow}/auth/token", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"username": "fraudops-retrain-trigger", "password": open(password_file).read().strip()}).encode())
    return json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
t = token()
deadline = time.time() + 90
while time.time() < deadline:
    req = urllib.request.Request(f"{airflow}/api/v2/dags/ml_model_retrain/dagRuns", headers={"Authorization": f"Bearer {t}"})
    runs = json.load(urllib.request.urlopen(req, timeout=10))["dag_runs"]
    if len(runs) >= 2:
        # The group key Alertmanager sent for the drift alert: what its repeats will carry too.
        print(next(r["conf"]["alert"]["group_key"] for r in runs if r["conf"]["alert"]["alertname"] == "ScoreDistributionDrift"))
        sys.exit(0)
    time.sleep(1)
sys.exit("no two runs within 90 s")
PY
) >"$TMP/drift-group-key"
echo "both runs in Airflow $((SECONDS - t1)) s after the alerts were posted; drift group key $(cat "$TMP/drift-group-key")"

# --- 2. the same incident again, and a new one: straight to the bridge, as Alertmanager's repeat would come --------
notification() { # notification STARTS_AT: the body Alertmanager posts for the drift group (its real group key)
  "$PY" -c 'import json, sys; key, am, starts = sys.argv[1:]; print(json.dumps({"version": "4", "groupKey": key,
    "status": "firing", "receiver": "fraudops-retrain", "groupLabels": {"alertname": "ScoreDistributionDrift"},
    "commonLabels": {"alertname": "ScoreDistributionDrift", "severity": "warning"}, "commonAnnotations": {},
    "externalURL": am, "alerts": [{"status": "firing", "labels": {"alertname": "ScoreDistributionDrift"},
    "annotations": {}, "startsAt": starts, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": "x"}]}))' \
    "$(cat "$TMP/drift-group-key")" "$AM" "$1"
}
token="$(tr -d '\n' <"$TMP/secrets/retrain-trigger-token")"
bridge_post() { curl -s -o "$TMP/bridge.out" -w '%{http_code}' -X POST -H 'Content-Type: application/json' "$@" "$BRIDGE/alertmanager"; }
repeat_code="$(bridge_post -H "Authorization: Bearer $token" -d "$(notification "$DRIFT_AT")")"
repeat_text="$(cat "$TMP/bridge.out")"
refire_code="$(bridge_post -H "Authorization: Bearer $token" -d "$(notification 2026-12-01T09:15:00Z)")"
refire_text="$(cat "$TMP/bridge.out")"
# --- 4. no token: refused ----------------------------------------------------------------------------------------
notoken_code="$(bridge_post -d "$(notification 2026-12-02T00:00:00Z)")"
metrics="$(curl -sf "$BRIDGE/metrics")"

# --- checks: Airflow's runs (REST), the rendered window (`airflow tasks render`), the bridge, on-call ------------
"$PY" - "$AIRFLOW" "$TMP/secrets/airflow-password" "$TMP/oncall.jsonl" "$DRIFT_AT" "$QUALITY_AT" \
  "$repeat_code" "$repeat_text" "$refire_code" "$refire_text" "$notoken_code" "$metrics" <<'PY'
import hashlib, json, os, re, subprocess, sys, time, urllib.request
(airflow, password_file, oncall, drift_at, quality_at, repeat_code, repeat_text, refire_code, refire_text,
 notoken_code, metrics) = sys.argv[1:]
failures = []
def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} [retrain-trigger] {name}{'' if ok else f': {detail}'}")
    if not ok:
        failures.append(name)

req = urllib.request.Request(f"{airflow}/auth/token", method="POST", headers={"Content-Type": "application/json"},
    data=json.dumps({"username": "fraudops-retrain-trigger", "password": open(password_file).read().strip()}).encode())
token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
req = urllib.request.Request(f"{airflow}/api/v2/dags/ml_model_retrain/dagRuns?order_by=run_after",
                             headers={"Authorization": f"Bearer {token}"})
runs = {r["dag_run_id"]: r for r in json.load(urllib.request.urlopen(req, timeout=10))["dag_runs"]}

# The run id is the incident's: the alert name, its startsAt and the hash of the group key Alertmanager sent
# (read back from the run's conf), computed here independently of the bridge.
keys = {r["conf"]["alert"]["alertname"]: r["conf"]["alert"]["group_key"] for r in runs.values()}
check("each alert its own group", len(set(keys.values())) == 2, keys)
def run_id(alertname, starts_at):
    key = keys.get(alertname, "")
    stamp = starts_at.replace("-", "").replace(":", "")
    return f"alert__{alertname}__{stamp}__{hashlib.sha256(key.encode()).hexdigest()[:12]}"

drift = run_id("ScoreDistributionDrift", drift_at)
quality = run_id("ModelQualityDegraded", quality_at)
refired = run_id("ScoreDistributionDrift", "2026-12-01T09:15:00Z")
check("three runs: one per incident (two alerts, the drift fired again)", sorted(runs) == sorted([drift, quality, refired]),
      sorted(runs))
for rid, name, starts in ((drift, "ScoreDistributionDrift", drift_at), (quality, "ModelQualityDegraded", quality_at)):
    r = runs.get(rid, {})
    alert = (r.get("conf") or {}).get("alert", {})
    check(f"{name}: conf carries the alert", alert.get("alertname") == name and alert.get("starts_at") == starts
          and alert.get("receiver") == "fraudops-retrain" and alert.get("labels", {}).get("severity") == "warning", r.get("conf"))
    check(f"{name}: a manual run over the REST API by the bridge's user, queued",
          (r.get("run_type"), r.get("triggered_by"), r.get("triggering_user_name"), r.get("state"))
          == ("manual", "rest_api", "fraudops-retrain-trigger", "queued"), r)
    check(f"{name}: note names the alert", name in (r.get("note") or ""), r.get("note"))
check("repeat of the drift incident: 200, already exists", repeat_code == "200" and "already exists" in repeat_text,
      (repeat_code, repeat_text))
check("the drift fired again: 200, a new run", refire_code == "200" and "started" in refire_text, (refire_code, refire_text))
check("no token: 401", notoken_code == "401", notoken_code)
def count(outcome):
    m = re.search(r'^fraudops_retrain_trigger_notifications_total\{outcome="%s"\} (\S+)$' % outcome, metrics, re.M)
    return float(m.group(1)) if m else None
counts = {o: count(o) for o in ("triggered", "duplicate", "failed", "ignored", "rejected")}
check("bridge counters", counts == {"triggered": 3, "duplicate": 1, "failed": 0, "ignored": 0, "rejected": 1}, counts)
deadline = time.time() + 45  # the on-call route's own group_wait (30 s)
while True:
    with open(oncall, encoding="utf-8") as f:
        oncall_posts = f.read()
    if ("ScoreDistributionDrift" in oncall_posts and "ModelQualityDegraded" in oncall_posts) or time.time() > deadline:
        break
    time.sleep(0.5)
check("on-call still notified of both (route continue)",
      "ScoreDistributionDrift" in oncall_posts and "ModelQualityDegraded" in oncall_posts, oncall_posts[:500])

# The window Airflow renders for the drift run: the alert fired 2026-11-30 23:40 UTC, so the data end with
# 2026-11-30 (exclusive end 2026-12-01): train from 2026-11-10, the labels known at 2026-12-01 out of the lake.
airflow_bin = os.path.join(os.path.dirname(sys.executable), "airflow")
def render(task):
    out = subprocess.run([airflow_bin, "tasks", "render", "ml_model_retrain", task, drift], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "LAKE_URL": "s3://lake.example/lake"})
    return out.stdout + out.stderr
fetch, train = render("fetch_data"), render("train")
check("rendered fetch_data: the lake's window up to the alert's day, labels known at its end",
      "'lake', 'snapshot'" in fetch and "'--train-start', '2026-11-10'" in fetch
      and "'--labels-as-of', '2026-12-01'" in fetch, fetch[-1500:])
check("rendered train: the window ends with the alert's day", "'--train-start', '2026-11-10'" in train, train[-1500:])
print(f"[retrain-trigger] {len(failures)} failed")
sys.exit(1 if failures else 0)
PY

# --- 5. a feature-store outage under load: answers go on, FeatureStoreDegraded fires, no retraining --------------
redis_port="$(free_port)" serve_port="$(free_port)"
start_group redis.log redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no
redis_pid="${pids[-1]}"
FEATURE_STORE_URL="redis://127.0.0.1:$redis_port/0" DRIFT_WINDOW_SECONDS=20 RUST_LOG=warn \
  start_group serve.log "$FRAUDOPS_BIN" serve --bind 127.0.0.1 --port "$serve_port"
start_prometheus_on_deployed_rules "$serve_port"  # scripts/lib/alert_path.sh: sets PROM
wait_until "the API" 100 curl -sf "http://127.0.0.1:$serve_port/ready"
wait_until "Prometheus" 100 curl -sf "$PROM/-/ready"
cat >"$TMP/outage.json" <<EOF
{"serve": "http://127.0.0.1:$serve_port", "prometheus": "$PROM", "alertmanager": "$AM", "bridge": "$BRIDGE",
 "airflow": "$AIRFLOW", "airflow_password_file": "$TMP/secrets/airflow-password", "oncall_file": "$TMP/oncall.jsonl",
 "redis_pid": $redis_pid}
EOF
"$PY" "$REPO/scripts/lib/outage_under_load.py" "$TMP/outage.json"
{ wait "$redis_pid"; } 2>/dev/null || true  # reaped here, killed by the driver on purpose
echo "test-retrain-trigger: passed in $((SECONDS - t0)) s"
