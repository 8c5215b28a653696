"""Structural checks of the kafka_attack_simulation DAG as a real Airflow parses it (scripts/test-airflow.sh).

    python check_attack_dag.py DAGS_FOLDER MODE      MODE: kubernetes | local (FRAUDOPS_AIRFLOW_MODE is set from it)

Checks (with fraudops_checks.py): no import errors, both DAGs parsed from the folder and their shared module
not parsed as a DAG; the tasks and their order (check_api and check_topics before attack, then results,
then wait_for_alert); no schedule, catchup off, one run at a time; owner mlops-team, 1 retry after 5 minutes;
the params and their defaults; per mode the operator type and what it runs (the fraudops image with
`attack --check-only` and `attack --results` in cluster mode, the local binary otherwise), and the rendered
arguments of a manual run. Prints one line per check; exits non-zero on failure.
"""

from __future__ import annotations

import os

from fraudops_checks import (
    argv_of, check_run_policy, check_step, dag_check_args, load_dag, render, schedule_of,
)

dags_folder, mode, check = dag_check_args()
# The default (5 minutes) is what is checked, whatever the caller's environment.
os.environ.pop("FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS", None)

dag = load_dag(check, dags_folder, "kafka_attack_simulation")

expected = ["check_api", "check_topics", "attack", "results", "wait_for_alert"]
check("tasks", sorted(dag.task_ids) == sorted(expected), dag.task_ids)
edges = sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)
want_edges = sorted([("check_api", "attack"), ("check_topics", "attack"), ("attack", "results"),
                     ("results", "wait_for_alert")])
check("checks -> attack -> results -> wait_for_alert", edges == want_edges, edges)

check("no schedule (triggered by hand or API)", schedule_of(dag) is None, schedule_of(dag))
check_run_policy(check, dag)

defaults = {key: dag.params[key] for key in dag.params}
want_params = {
    "phases": "50:5m,200:5m,500:5m,1500:5m",
    "bootstrap_servers": "fraudops-kafka-kafka-bootstrap.fraudops.svc:9092",
    "topic": "transactions-input",
    "require_topics": ["fraud-predictions"],
    "api_url": "http://fraudops-api.fraudops.svc",
    "alert_name": "AdminNotification_MaxScaleHighCPU",
    "alertmanager_url": "http://kube-prometheus-stack-alertmanager.monitoring.svc:9093",
    "wait_for_alert": True,
    "alert_timeout_seconds": 600,
}
for key, value in want_params.items():
    check(f"param {key} defaults to {value!r}", defaults.get(key) == value, defaults.get(key))
for extra in ("seed", "max_error_pct"):
    check(f"param {extra}", extra in defaults, sorted(defaults))

for task_id in ("check_api", "results", "wait_for_alert"):
    kind = type(dag.get_task(task_id)).__name__
    check(f"{task_id}: PythonOperator (HTTP from the Airflow worker)", kind == "PythonOperator", kind)

runs = {"check_topics": ["attack", "--check-only"], "attack": ["attack"]}
for task_id, head in runs.items():
    argv = check_step(check, dag, task_id, mode, xcom_task="attack")
    check(f"{task_id}: runs `fraudops {' '.join(head)}`", argv[: len(head)] == head, argv[:3])

# The templates render for a manual run with the default params.
context = {"params": defaults, "run_id": "manual__2026-05-01T10:00:00+00:00"}
rendered = {task_id: " ".join(argv_of(task, mode)) for task_id, task in render(dag, runs, context).items()}
kafka = ("--bootstrap-servers fraudops-kafka-kafka-bootstrap.fraudops.svc:9092 --topic transactions-input "
         "--require-topics fraud-predictions")
check("check_topics: broker, topic and required topics", rendered["check_topics"] == f"attack --check-only {kafka}",
      rendered["check_topics"])
results = ("/airflow/xcom/return.json" if mode == "kubernetes"
           else os.environ.get("FRAUDOPS_WORK_DIR", "/tmp/fraudops-attack") + "/manual__2026-05-01T10_00_00_00_00/results.json")
check("attack: the mission's phases, results to " + ("the XCom sidecar" if mode == "kubernetes" else "the run's directory"),
      rendered["attack"] == f"attack {kafka} --phases 50:5m,200:5m,500:5m,1500:5m --seed 42 --results {results}",
      rendered["attack"])

check.exit()
