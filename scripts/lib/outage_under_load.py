"""A feature-store outage under load, end to end (issue 30's done-when), for scripts/test-retrain-trigger.sh.

The API runs on a real Redis; Prometheus evaluates the deployed rules (every `for:` x 1/120) and alerts to the
deployed Alertmanager, whose retraining route reaches `fraudops retrain-trigger` and Airflow. This script:

  1. sends direct calls (card, terminal, time; no history: the payment flow) and checks they are scored from
     the store;
  2. kills Redis (SIGKILL, by PID) and keeps sending: every answer must still be 200, with
     `feature_source: "store_unavailable"` once the call fails;
  3. waits for FeatureStoreDegraded to fire in Prometheus;
  4. adds calls that bring their own history with amounts ten times the usual (a real drift, so that a model
     alert fires during the outage) and waits for ScoreDistributionDrift to fire in Prometheus;
  5. waits for Alertmanager to hold the drift alert (suppressed, inhibited by FeatureStoreDegraded), then past
     the retraining route's group_wait (30 s) from then: the bridge received nothing new and Airflow holds no
     new ml_model_retrain run, while on-call was told about the outage.

    python outage_under_load.py CONFIG_JSON        (keys: serve, prometheus, alertmanager, bridge, airflow,
                                                    airflow_password_file, oncall_file, redis_pid)

Prints `ok`/`FAIL` lines and a summary; exits 1 on a failure.
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import datetime, timezone

config = json.load(open(sys.argv[1], encoding="utf-8"))
failures = []


def check(name, ok, detail=""):
    print(f"{'ok  ' if ok else 'FAIL'} [outage] {name}{'' if ok else f': {detail}'}", flush=True)
    if not ok:
        failures.append(name)


def get_json(url, headers=None):
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as r:
        return json.load(r)


def poll(what, seconds, condition):
    """Polls `condition` (returns a truthy value when met) every 0.5 s; the value, or None at the deadline."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    print(f"     [outage] gave up waiting for {what} after {seconds} s", flush=True)
    return None


def prometheus_alert(name):
    result = get_json(f"{config['prometheus']}/api/v1/alerts")["data"]["alerts"]
    return next((a for a in result if a["labels"].get("alertname") == name and a["state"] == "firing"), None)


def retrain_runs():
    password = open(config["airflow_password_file"], encoding="utf-8").read().strip()
    req = urllib.request.Request(f"{config['airflow']}/auth/token", method="POST",
                                 headers={"Content-Type": "application/json"},
                                 data=json.dumps({"username": "fraudops-retrain-trigger", "password": password}).encode())
    token = json.load(urllib.request.urlopen(req, timeout=10))["access_token"]
    runs = get_json(f"{config['airflow']}/api/v2/dags/ml_model_retrain/dagRuns", {"Authorization": f"Bearer {token}"})
    return sorted(r["dag_run_id"] for r in runs["dag_runs"])


def bridge_counts():
    metrics = urllib.request.urlopen(f"{config['bridge']}/metrics", timeout=10).read().decode()
    return {line.split()[0]: float(line.split()[1]) for line in metrics.splitlines()
            if line.startswith("fraudops_retrain_trigger_notifications_total{")}


runs_before, counts_before = retrain_runs(), bridge_counts()


class Load(threading.Thread):
    """Sends one kind of request at a steady rate on a kept-alive connection; counts statuses and sources."""

    def __init__(self, kind, rate):
        super().__init__(daemon=True)
        self.kind, self.rate = kind, rate
        self.stop = threading.Event()
        self.phase = "before"
        self.statuses = Counter()
        self.sources = Counter()
        self.errors = 0

    def body(self, n):
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        tx = {"transaction_id": f"{self.kind}-{n}", "customer_id": n % 500, "terminal_id": n % 300,
              "tx_datetime": now}
        if self.kind == "direct":
            tx["amount"] = 20.0 + (n * 7919) % 8000 / 100
        else:
            tx["amount"] = 10 * (20.0 + (n * 7919) % 8000 / 100)
            tx["history"] = {
                "customer": {"nb_tx_1day": 2, "avg_amount_1day": 55.0, "nb_tx_7day": 14, "avg_amount_7day": 52.0,
                             "nb_tx_30day": 60, "avg_amount_30day": 50.0},
                "terminal": {"nb_tx_1day": 30, "risk_1day": 0.0, "nb_tx_7day": 200, "risk_7day": 0.0,
                             "nb_tx_30day": 800, "risk_30day": 0.0},
            }
        return json.dumps(tx)

    def run(self):
        url = urllib.parse.urlparse(config["serve"])
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
        n, start = 0, time.time()
        while not self.stop.is_set():
            try:
                conn.request("POST", "/predict", self.body(n), {"Content-Type": "application/json"})
                response = conn.getresponse()
                payload = response.read()
                self.statuses[(self.phase, response.status)] += 1
                if response.status == 200:
                    self.sources[(self.phase, json.loads(payload).get("feature_source"))] += 1
            except (OSError, http.client.HTTPException):
                self.errors += 1
                conn.close()
                conn = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
            n += 1
            # Open pacing: the next request at its slot, not after a fixed sleep.
            time.sleep(max(0.0, start + n / self.rate - time.time()))


direct = Load("direct", 40)
direct.start()
poll("direct calls scored from the store", 20, lambda: direct.sources[("before", "store")] >= 100)

# 2. Redis goes away.
os.kill(int(config["redis_pid"]), signal.SIGKILL)
killed_at = time.time()
direct.phase = "outage"
fired = poll("FeatureStoreDegraded firing in Prometheus", 90, lambda: prometheus_alert("FeatureStoreDegraded"))
check("FeatureStoreDegraded fires in Prometheus on the deployed rules", fired is not None)
if fired:
    print(f"     [outage] FeatureStoreDegraded firing {time.time() - killed_at:.1f} s after Redis was killed "
          f"(value {float(fired['value']):.2f} of direct calls unavailable)", flush=True)

# 4. A real drift while the store is down.
drifted = Load("drifted", 150)
drifted.phase = "outage"
drifted.start()
drift = poll("ScoreDistributionDrift firing in Prometheus", 120, lambda: prometheus_alert("ScoreDistributionDrift"))
check("ScoreDistributionDrift fires in Prometheus too (a real drift during the outage)", drift is not None)


def held_in_alertmanager():
    alerts = get_json(f"{config['alertmanager']}/api/v2/alerts")
    mine = [a for a in alerts if a["labels"].get("alertname") == "ScoreDistributionDrift"]
    return mine and all(a["status"]["state"] == "suppressed" and a["status"]["inhibitedBy"] for a in mine) and mine


held = poll("Alertmanager holding ScoreDistributionDrift", 60, held_in_alertmanager)
check("Alertmanager holds ScoreDistributionDrift (inhibited by FeatureStoreDegraded)", bool(held), held)
held_at = time.time()

# 5. Past the retraining route's group_wait (30 s) from the moment Alertmanager had the alert: a notification
# would have gone out by now. Proving that nothing happened takes waiting that long.
time.sleep(max(0.0, held_at + 40 - time.time()))
direct.stop.set()
drifted.stop.set()
direct.join()
drifted.join()

runs = retrain_runs()
check("no retraining run started", runs == runs_before, (runs, runs_before))
counts = bridge_counts()
check("the bridge received no notification", counts == counts_before, (counts, counts_before))
with open(config["oncall_file"], encoding="utf-8") as f:
    oncall = f.read()
check("on-call told of the outage", "FeatureStoreDegraded" in oncall)

statuses = direct.statuses + drifted.statuses
not_ok = {k: v for k, v in statuses.items() if k[1] != 200}
check("every answer 200 during the outage (no 5xx, no connection error)",
      not not_ok and direct.errors + drifted.errors == 0, (not_ok, direct.errors, drifted.errors))
outage_direct = {src: n for (phase, src), n in direct.sources.items() if phase == "outage"}
total = sum(outage_direct.values())
unavailable = outage_direct.get("store_unavailable", 0)
check("direct calls during the outage say store_unavailable", total > 0 and unavailable >= total - 5,
      outage_direct)
check("calls with their own history say request", set(src for (_, src) in drifted.sources) == {"request"},
      dict(drifted.sources))
print(f"[outage] {sum(statuses.values())} answers ({direct.sources[('before', 'store')]} from the store before, "
      f"{unavailable} of {total} direct calls store_unavailable during the outage, "
      f"{sum(drifted.sources.values())} drifted calls with history); {len(failures)} failed", flush=True)
sys.exit(1 if failures else 0)
