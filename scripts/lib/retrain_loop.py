"""The driver of scripts/test-retrain-loop.sh: sends the traffic, watches every component, prints the timeline.

    python retrain_loop.py CONFIG.json

CONFIG (written by the script): the URLs of serve, Prometheus, Alertmanager, the bridge, Airflow and MLflow,
the Airflow user's password file, the two request-body files (JSONL, one /predict body with `history` per
line: normal and shifted traffic), the serve log, the `for:` the rendered rules use, and the time limits.

Traffic: two threads post /predict/batch (50 transactions each) at about 1000 transactions/s over kept-alive
connections, cycling through the current body file; every response's status and model version are recorded,
so a failed request (any non-200, or a connection error) during the hot swap is counted. Phases:

  normal   until Prometheus has the score PSI under 0.2 for longer than the rendered `for:`, no alert
  lake     the world shifts: `fraudops attack` sends the shifted world's last 59 days through Kafka (labels a
           day later on fraud-labels, from the attack's event-time clock); the archive commits both to the lake
  shifted  until the alert fires, the bridge queues the DAG run, Airflow runs it, MLflow moves @champion,
           serve swaps and the PSI against the new model's reference is back under 0.2

Exit status 1 with the step named if any step fails or times out.
"""

from __future__ import annotations

import glob
import gzip
import http.client
import math
import subprocess
import json
import re
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime

cfg = json.load(open(sys.argv[1], encoding="utf-8"))
T0 = time.time()
timeline: list[tuple[float, str]] = []
BATCH = 50
THRESHOLD = 0.2


def mark(what: str, at: float | None = None) -> None:
    at = time.time() if at is None else at
    timeline.append((at, what))
    print(f"  +{at - T0:6.1f} s  {what}", flush=True)


def fail(what: str) -> None:
    print(f"FAIL [retrain-loop] {what}", flush=True)
    print_timeline()
    load.stop()
    sys.exit(1)


def print_timeline() -> None:
    print("\ntimeline (wall-clock offsets from the start of the normal traffic):")
    for at, what in sorted(timeline):
        print(f"  +{at - T0:6.1f} s  {what}")


def get_json(url: str, headers: dict | None = None, data: bytes | None = None, method: str = "GET"):
    request = urllib.request.Request(url, headers=headers or {}, data=data, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# --- the traffic ---------------------------------------------------------------------------------------------
class Load:
    def __init__(self) -> None:
        self.bodies = {name: open(path, encoding="utf-8").read().splitlines() for name, path in
                       (("normal", cfg["normal_bodies"]), ("shifted", cfg["shifted_bodies"]))}
        self.mode = "normal"
        self.lock = threading.Lock()
        self.ok = 0
        self.failed: list[tuple[float, str]] = []
        self.versions: dict[str, float] = {}  # model version -> first response time
        self.cursor = 0
        self.stopping = threading.Event()
        url = urllib.parse.urlparse(cfg["serve"])
        self.host, self.port = url.hostname, url.port
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(2)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=15)

    def next_body(self) -> bytes:
        with self.lock:
            lines = self.bodies[self.mode]
            start = self.cursor % len(lines)
            self.cursor = start + BATCH
            chunk = lines[start:start + BATCH]
        return ('{"transactions":[' + ",".join(chunk) + "]}").encode()

    def run(self) -> None:
        conn = None
        period = 2 * BATCH / cfg["rate"]  # two threads
        due = time.monotonic()
        while not self.stopping.is_set():
            due += period
            body = self.next_body()
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
                conn.request("POST", "/predict/batch", body, {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                now = time.time()
                if response.status == 200:
                    version = json.loads(payload)["model_version"]
                    with self.lock:
                        self.ok += 1
                        self.versions.setdefault(version, now)
                else:
                    with self.lock:
                        self.failed.append((now, f"HTTP {response.status}: {payload[:200]!r}"))
            except (OSError, http.client.HTTPException, ValueError, KeyError) as error:
                with self.lock:
                    self.failed.append((time.time(), f"{type(error).__name__}: {error}"))
                conn = None
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                due = time.monotonic()


# --- what each component says --------------------------------------------------------------------------------
def prom_psi() -> float | None:
    result = get_json(f"{cfg['prometheus']}/api/v1/query?query=fraudops:model_score_psi:max")["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def prom_alert() -> dict | None:
    for alert in get_json(f"{cfg['prometheus']}/api/v1/alerts")["data"]["alerts"]:
        if alert["labels"].get("alertname") == "ScoreDistributionDrift":
            return alert
    return None


def am_alert() -> dict | None:
    for alert in get_json(f"{cfg['alertmanager']}/api/v2/alerts"):
        if alert["labels"].get("alertname") == "ScoreDistributionDrift":
            return alert
    return None


def bridge_count(outcome: str) -> float:
    text = urllib.request.urlopen(f"{cfg['bridge']}/metrics", timeout=10).read().decode()
    m = re.search(r'^fraudops_retrain_trigger_notifications_total\{outcome="%s"\} (\S+)$' % outcome, text, re.M)
    return float(m.group(1)) if m else 0.0


_token: list[str] = []


def airflow(path: str):
    if not _token:
        body = json.dumps({"username": "fraudops-retrain-trigger",
                           "password": open(cfg["airflow_password_file"]).read().strip()}).encode()
        _token.append(get_json(f"{cfg['airflow']}/auth/token", {"Content-Type": "application/json"}, body,
                               "POST")["access_token"])
    return get_json(f"{cfg['airflow']}{path}", {"Authorization": f"Bearer {_token[0]}"})


def champion() -> dict:
    url = f"{cfg['mlflow']}/api/2.0/mlflow/registered-models/alias?name=fraud-detector&alias=champion"
    return get_json(url)["model_version"]


def serve_info() -> str | None:
    text = urllib.request.urlopen(f"{cfg['serve']}/metrics", timeout=10).read().decode()
    served = re.findall(r'^ml_model_info\{[^}]*model_version="([^"]+)"[^}]*\} 1$', text, re.M)
    return served[0] if len(served) == 1 else None


def wait(what: str, seconds: float, probe, every: float = 0.5):
    """Polls probe() until it returns something truthy; fails the run after `seconds`."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            value = probe()
        except (OSError, ValueError, KeyError, IndexError) as error:
            value = None
            last = error
        else:
            last = None
        if value:
            return value
        time.sleep(every)
    fail(f"{what}: not within {seconds:.0f} s" + (f" (last error: {last})" if last else ""))


# --- the run -------------------------------------------------------------------------------------------------
first = champion()
first_version, first_model = first["version"], serve_info()
print(f"[retrain-loop] @champion is version {first_version}; serve runs {first_model}; "
      f"alert rules rendered with `for: {cfg['alert_for']}` (deployed: 30m)", flush=True)
load = Load()
load.start()
mark(f"normal traffic starts (~{cfg['rate']} transactions/s, /predict/batch with history)")

# 1. normal traffic: PSI under the line for longer than the alert's `for:`, and no alert at all.
wait("score PSI in Prometheus", 90, lambda: prom_psi() is not None)
quiet_since, normal_psi = None, []
deadline = time.time() + 120
while True:
    psi, alert = prom_psi(), prom_alert()
    if alert:
        fail(f"normal traffic raised ScoreDistributionDrift ({alert['state']}, PSI {psi})")
    if psi is not None and psi < THRESHOLD:
        normal_psi.append(psi)
        quiet_since = quiet_since or time.time()
        if time.time() - quiet_since > cfg["alert_for_seconds"] + 5:
            break
    else:
        quiet_since = None
    if time.time() > deadline:
        fail(f"normal traffic: score PSI {psi} not steadily under {THRESHOLD}")
    time.sleep(1)
mark(f"normal traffic: score PSI {min(normal_psi):.3f}..{max(normal_psi):.3f} < {THRESHOLD} for "
     f"{time.time() - quiet_since:.0f} s, no ScoreDistributionDrift")

# 2. the world shifts. Its traffic goes through Kafka into the lake (what the retraining will learn from) ...
def archived(table: str) -> float:
    text = urllib.request.urlopen(cfg["archive_metrics"], timeout=10).read().decode()
    m = re.search(r'^lake_rows_written_total\{table="%s"\} (\S+)$' % table, text, re.M)
    return float(m.group(1)) if m else 0.0


t_shift = time.time()
with gzip.open(cfg["shifted_traffic"], "rt") as f:
    rows = sum(1 for _ in f) - 1
# One phase that sends just under the file (no loop, so no transaction twice); labels a day after each.
seconds = 20
rate = math.floor(rows / seconds)
mark(f"the world shifts: fraudops attack sends {rate * seconds} transactions of the shifted world (every amount "
     f"x2, its last 59 days) through Kafka at {rate}/s, labels 1 d later on fraud-labels")
results = f"{cfg['work']}/attack-results.json"
with open(f"{cfg['work']}/attack.log", "w") as log:
    attack = subprocess.run(
        [cfg["fraudops"], "attack", "--bootstrap-servers", cfg["kafka"], "--replay", cfg["shifted_traffic"],
         "--phases", f"{rate}:{seconds}s", "--max-rate", str(rate), "--labels", "on", "--label-delay", "1d",
         "--results", results, "--metrics-port", "0"],
        cwd=cfg["work"], stdout=log, stderr=subprocess.STDOUT, timeout=300)
if attack.returncode != 0:
    fail(f"fraudops attack exited with {attack.returncode} (see attack.log)")
report = json.load(open(results))
sent = sum(p["delivered"] for p in report["phases"])
labels = report["labels"]["delivered"]
mark(f"attack done: {sent} transactions and {labels} labels acknowledged by the broker "
     f"({report['labels']['not_due']} labels not yet due)")
wait("the archive committing every transaction and label", 120,
     lambda: archived("transactions") >= sent and archived("labels") >= labels)
mark(f"lake: {archived('transactions'):.0f} transactions and {archived('labels'):.0f} labels committed by "
     "fraudops archive (Parquet by event day)")

# ... and the same traffic reaches serve: the alert, Alertmanager, the bridge, the queued run.
with load.lock:
    load.mode = "shifted"
mark("shifted traffic reaches serve (its last week, /predict/batch with history)")
psi = wait(f"score PSI over {THRESHOLD}", 60, lambda: (p := prom_psi()) is not None and p > THRESHOLD and p)
mark(f"score PSI {psi:.3f} > {THRESHOLD} (Prometheus, fraudops:model_score_psi:max)")
alert = wait("ScoreDistributionDrift pending", 60, prom_alert)
mark(f"ScoreDistributionDrift {alert['state']} in Prometheus (activeAt {alert['activeAt']})",
     iso(alert["activeAt"]))
alert = wait("ScoreDistributionDrift firing", 60, lambda: (a := prom_alert()) and a["state"] == "firing" and a)
mark(f"ScoreDistributionDrift firing in Prometheus (value {float(alert['value']):.3f})")
wait("the alert in Alertmanager", 60, am_alert)
mark("alert received by Alertmanager (route fraudops-retrain, group_wait 30s as deployed)")
wait("the bridge triggering a run", 90, lambda: bridge_count("triggered") >= 1)
mark("notification received by the bridge, run triggered (seen in its metrics: "
     'fraudops_retrain_trigger_notifications_total{outcome="triggered"} 1)')


def alert_run():
    runs = airflow("/api/v2/dags/ml_model_retrain/dagRuns")["dag_runs"]
    return next((r for r in runs if r["dag_run_id"].startswith("alert__ScoreDistributionDrift__")), None)


run = wait("the alert's DAG run in Airflow", 30, alert_run)
conf_alert = (run.get("conf") or {}).get("alert") or {}
if conf_alert.get("alertname") != "ScoreDistributionDrift" or not conf_alert.get("starts_at"):
    fail(f"the run's conf does not carry the alert: {run.get('conf')}")
if len(airflow("/api/v2/dags/ml_model_retrain/dagRuns")["dag_runs"]) != 1:
    fail("more than one ml_model_retrain run")
print(f"[retrain-loop] run {run['dag_run_id']}: conf alert {json.dumps(conf_alert)[:160]}...", flush=True)
mark(f"DAG run queued in Airflow ({run['dag_run_id']}, triggered by {run.get('triggering_user_name')})",
     iso(run.get("queued_at")))

# 3. Airflow runs it; MLflow gets a new version and moves the alias; serve swaps under load.
run = wait("the DAG run started", 120, lambda: (r := alert_run()) and r.get("start_date") and r)
mark("DAG run started (scheduler, LocalExecutor)", iso(run["start_date"]))
run = wait("the DAG run finished", 300, lambda: (r := alert_run()) and r["state"] in ("success", "failed") and r, 1)
if run["state"] != "success":
    tasks = airflow(f"/api/v2/dags/ml_model_retrain/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
    fail(f"DAG run {run['state']}: " + ", ".join(f"{t['task_id']}={t['state']}" for t in tasks))
mark("DAG run succeeded", iso(run["end_date"]))
tasks = airflow(f"/api/v2/dags/ml_model_retrain/dagRuns/{run['dag_run_id']}/taskInstances")["task_instances"]
for task in sorted(tasks, key=lambda t: t["start_date"] or ""):
    print(f"[retrain-loop]   task {task['task_id']:<17} {task['state']:<8} +{iso(task['start_date']) - T0:6.1f} s .. "
          f"+{iso(task['end_date']) - T0:6.1f} s", flush=True)
# fetch_data read the alert's window out of the lake: the archived traffic, not a simulation.
fetch_logs = glob.glob(f"{cfg['airflow_home']}/logs/dag_id=ml_model_retrain/run_id={run['dag_run_id']}/"
                       "task_id=fetch_data/attempt=*.log")
fetch_log = "".join(open(path, encoding="utf-8", errors="replace").read() for path in fetch_logs)
read = re.search(r'read (\d+ transactions of [^"\n]*? files \(labels known at [^"\n]*?\))', fetch_log)
if "fraudops lake snapshot" not in fetch_log or not read or int(read.group(1).split()[0]) == 0:
    fail(f"fetch_data did not read the window from the lake: {fetch_logs}")
print(f"[retrain-loop]   fetch_data read {read.group(1)}", flush=True)
mark(f"fetch_data: the window out of the lake ({read.group(1).split(' from ')[0]})")
now_champion = champion()
if now_champion["version"] == first_version:
    fail(f"the gate kept version {first_version} as @champion (tags {now_champion.get('tags')})")
tags = {t["key"]: t["value"] for t in now_champion.get("tags", [])}
mark(f"MLflow: version {now_champion['version']} registered (gate: {tags.get('fraudops.gate.decision')})",
     int(now_champion["creation_timestamp"]) / 1000)
run_tags = get_json(f"{cfg['mlflow']}/api/2.0/mlflow/runs/get?run_id={now_champion['run_id']}")["run"]["data"]["tags"]
print(f"[retrain-loop] gate: {next((t['value'] for t in run_tags if t['key'] == 'fraudops.gate.explanation'), '?')}",
      flush=True)
mark(f"@champion is version {now_champion['version']} (its last_updated_timestamp: gate tags written)",
     int(now_champion["last_updated_timestamp"]) / 1000)
new_model = wait("serve swapping to the new champion", 60,
                 lambda: (v := serve_info()) and v != first_model and v)
with load.lock:
    swapped_at = load.versions.get(new_model)
swapped_at = swapped_at or time.time()
swap_log = ""
for line in open(cfg["serve_log"], encoding="utf-8", errors="replace"):
    if '"model_swapped"' in line:
        swap_log = line.strip()
mark(f"serve swapped {first_model} -> {new_model} (first response of the new model; ml_model_info)", swapped_at)
if swap_log:
    print(f"[retrain-loop] serve log: {swap_log[:300]}", flush=True)

# 4. continued shifted traffic against the new reference.
def settled():
    psi = prom_psi()
    return psi is not None and psi < THRESHOLD and serve_info() == new_model and time.time() > swapped_at + 3 and psi


psi = wait("score PSI back under the line", 90, settled)
mark(f"score PSI against the new model's reference {psi:.3f} < {THRESHOLD}")
time.sleep(3)  # a few more seconds of traffic after the swap before the count
load.stop()
with load.lock:
    ok, failed = load.ok, list(load.failed)
near = [f for f in failed if abs(f[0] - swapped_at) < 30]
print(f"[retrain-loop] traffic: {ok} batch requests answered 200 ({ok * BATCH} transactions), {len(failed)} failed "
      f"({len(near)} within 30 s of the swap); models seen: {', '.join(load.versions)}")
if failed:
    print("\n".join(f"  +{t - T0:.1f} s {what}" for t, what in failed[:10]))
    fail(f"{len(failed)} failed requests")
print_timeline()
print(f"[retrain-loop] passed: shift {t_shift - T0:.0f} s -> new champion served {swapped_at - t_shift:.0f} s later")
