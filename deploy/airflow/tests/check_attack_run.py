"""What the two `airflow dags test kafka_attack_simulation` runs of scripts/test-airflow.sh did, as Airflow's
metadata database, XCom and the task logs show it.

    python check_attack_run.py COUNT DEAD_BROKER OK_LOG FAIL_LOG ALERT_POSTED

COUNT: the messages transactions-input holds (count_messages.py); DEAD_BROKER: the address the failing run
was given; OK_LOG / FAIL_LOG: the output of both runs; ALERT_POSTED: the time the test posted the admin
alert to Alertmanager (once the stream worker had consumed both listed phases). Prints one line per check;
exits non-zero on failure. Needs AIRFLOW_HOME (sqlite).

The successful run escalates: phases 200:5s,400:5s, then the closed loop at step 2 (800/s, 1600/s, 3200/s,
max_rate 3200, Alertmanager asked every second). The alert is posted after the listed phases, so both run
in full and the third phase, at 800/s, is the one the alert stops.
"""

from __future__ import annotations

import json
import os
import re
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
summary = xcom(ok_run, "results") or {}
phases = summary.get("phases", [])
check(
    "the listed phases ran in full (200/s: 1000 sent, 400/s: 2000 sent; XCom of results)",
    [(p["target_rate"], p["sent"]) for p in phases[:2]] == [(200.0, 1000), (400.0, 2000)],
    phases,
)
check(
    "then one escalated phase, at 800/s (step 2), cut short by the alert",
    len(phases) == 3 and phases[2]["target_rate"] == 800.0 and 0 < phases[2]["sent"] < 800 * 5,
    phases,
)
alert = summary.get("alert") or {}
check(
    "the closed loop's outcome (XCom of results): fired in phase 3 at 800/s",
    alert.get("alert") == "AdminNotification_MaxScaleHighCPU" and alert.get("fired") is True
    and alert.get("triggering_phase") == 3 and alert.get("triggering_rate") == 800.0,
    alert,
)
to_alert = alert.get("time_to_alert_s")
check(f"time to alert within phase 3 (10-15 s after the start): {to_alert}",
      to_alert is not None and 10 <= to_alert <= 15, alert)
sent = sum(p["sent"] for p in phases)
check(f"the broker holds every message sent over all phases ({sent}): {count}", count == sent and sent > 3000,
      (count, sent))
check("every message acknowledged", summary.get("sent") == sent and summary.get("delivered") == sent
      and summary.get("errors") == 0, summary)
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
    # started_at has whole seconds: up to 1 s early.
    after, duration = outcome.get("seconds_after_attack_start"), summary.get("duration_s", 0)
    check(f"fired after the listed phases and before the attack ended ({after} s after its start)",
          after is not None and 10 <= after <= duration + 1, (after, duration))
with open(ok_log, encoding="utf-8") as f:
    text = f.read()
check(
    "the phase table in the task log",
    "phase  target/s duration achieved/s" in text and f"total: {sent} sent, {sent} acknowledged, 0 errors" in text,
)
# The process the local runner started (its `$ ...` log line, the logger's context after it): the listed
# phases, then the closed loop's options, last.
command = re.search(r"\$ \S*fraudops attack --bootstrap-servers .*$", text, re.M)
check(
    "fraudops attack ran with the closed loop (step 2, max_rate 3200, polled every 1 s)",
    command is not None and "--phases 200:5s,400:5s --seed 42 " in command[0] and re.search(
        r" --results \S+ --until-alert AdminNotification_MaxScaleHighCPU --alertmanager http://127\.0\.0\.1:\d+ "
        r"--step 2 --max-rate 3200 --alert-poll 1s( \[|$)", command[0]) is not None,
    command[0] if command else None,
)
check("the closed loop's outcome in the task log", "closed loop: AdminNotification_MaxScaleHighCPU fired" in text)

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
