"""What the two `airflow dags test kafka_attack_simulation` runs of scripts/test-airflow.sh did, as Airflow's
metadata database, XCom and the task logs show it.

    python check_attack_run.py COUNT DEAD_BROKER OK_LOG FAIL_LOG ALERT_POSTED

COUNT: the messages transactions-input holds (count_messages.py); DEAD_BROKER: the address the failing run
was given; OK_LOG / FAIL_LOG: the output of both runs; ALERT_POSTED: the time the test posted the admin
alert to Alertmanager. Prints one line per check; exits non-zero on failure. Needs AIRFLOW_HOME (sqlite).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import datetime

from fraudops_checks import Checks

count, dead, ok_log, fail_log, posted = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
DAG = "kafka_attack_simulation"
check = Checks("attack")


def airflow(*args: str):
    binary = os.path.join(os.path.dirname(sys.executable), "airflow")
    out = subprocess.run([binary, *args, "-o", "json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


db = sqlite3.connect(os.path.join(os.environ["AIRFLOW_HOME"], "airflow.db"))


def tasks(run_id: str) -> dict:
    rows = db.execute(
        "select task_id, state, try_number from task_instance where dag_id=? and run_id=?", (DAG, run_id)
    )
    return {task: (state, tries) for task, state, tries in rows}


def xcom(run_id: str, task_id: str):
    row = db.execute(
        "select value from xcom where dag_id=? and run_id=? and task_id=? and key='return_value'",
        (DAG, run_id, task_id),
    ).fetchone()
    value = json.loads(row[0]) if row and row[0] is not None else None
    return json.loads(value) if isinstance(value, str) else value


def iso(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


runs = sorted(airflow("dags", "list-runs", DAG), key=lambda r: r["start_date"] or "")
check("two DAG runs: success, then failed", [r["state"] for r in runs] == ["success", "failed"], runs)
if len(runs) != 2:
    sys.exit(1)
ok_run, fail_run = runs[0]["run_id"], runs[1]["run_id"]

# 3. the attack against tansu
got = tasks(ok_run)
want = ["check_api", "check_topics", "attack", "results", "wait_for_alert"]
check("every task succeeded at the first try", got == {t: ("success", 1) for t in want}, got)
expected = 200 * 5 + 400 * 5
check(f"the broker holds {expected} messages (±1%): {count}", abs(count - expected) <= expected / 100, count)
summary = xcom(ok_run, "results") or {}
check(
    "results read back per phase (XCom of results)",
    [(p["target_rate"], p["sent"]) for p in summary.get("phases", [])] == [(200.0, 1000), (400.0, 2000)],
    summary,
)
check("every message acknowledged", summary.get("delivered") == expected and summary.get("errors") == 0, summary)
outcome = xcom(ok_run, "wait_for_alert") or {}
check(
    "AdminNotification_MaxScaleHighCPU recorded as fired (XCom of wait_for_alert)",
    outcome.get("fired") is True and outcome.get("alert") == "AdminNotification_MaxScaleHighCPU",
    outcome,
)
if outcome.get("fired"):
    if os.path.exists(posted):
        with open(posted, encoding="utf-8") as f:
            sent_at = iso(f.read())
        lag = abs((iso(outcome["fired_at"]) - sent_at).total_seconds())
        check("fired_at is when the alert was posted (±2 s)", lag <= 2, (outcome["fired_at"], sent_at))
    else:
        check("the test posted the alert", False, posted)
    after = outcome.get("seconds_after_attack_start")
    check(f"fired during the attack ({after} s after its start)", after is not None and -1 <= after <= 11, after)
with open(ok_log, encoding="utf-8") as f:
    text = f.read()
check(
    "the phase table in the task log",
    "phase  target/s duration achieved/s" in text and "total: 3000 sent, 3000 acknowledged, 0 errors" in text,
)

# 4. the broker down
got = tasks(fail_run)
check("broker down: check_topics failed after 1 retry (2 tries)", got.get("check_topics") == ("failed", 2), got)
check("broker down: the attack never ran", got.get("attack", ("",))[0] == "upstream_failed", got)
check("broker down: the API check still passed", got.get("check_api", ("",))[0] == "success", got)
with open(fail_log, encoding="utf-8") as f:
    text = f.read()
line = f"cannot reach the Kafka broker at {dead}"
check("broker down: the log names the broker, once per try", text.count(line) >= 2, text.count(line))

check.exit()
