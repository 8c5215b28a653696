"""Structural checks of the kafka_attack_simulation DAG as a real Airflow parses it (scripts/test-airflow.sh).

    python check_attack_dag.py DAGS_FOLDER MODE      MODE: kubernetes | local (FRAUDOPS_AIRFLOW_MODE is set from it)

Checks: no import errors; the tasks and their order (check_api and check_topics before attack, then results,
then wait_for_alert); no schedule, catchup off, one run at a time; owner mlops-team, 1 retry after 5 minutes;
the params and their defaults; per mode the operator type and what it runs (the fraudops image with
`attack --check-only` and `attack --results` in cluster mode, the local binary otherwise), and the rendered
arguments of a manual run. Prints one line per check; exits non-zero on failure.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

dags_folder, mode = sys.argv[1], sys.argv[2]
os.environ["FRAUDOPS_AIRFLOW_MODE"] = mode
os.environ.setdefault("FRAUDOPS_IMAGE", "cr.example/fraudops:test")
# The default (5 minutes) is what is checked, whatever the caller's environment.
os.environ.pop("FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS", None)

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:
    from airflow.models.dagbag import DagBag

failures: list[str] = []


def check(name: str, ok: bool, detail: object = "") -> None:
    print(f"{'ok  ' if ok else 'FAIL'} [{mode}] {name}{'' if ok else f': {detail}'}")
    if not ok:
        failures.append(name)


bag = DagBag(dag_folder=dags_folder)
check("no import errors", not bag.import_errors, bag.import_errors)
check("both DAGs from the same folder", {"ml_model_retrain", "kafka_attack_simulation"} <= set(bag.dag_ids),
      sorted(bag.dag_ids))
dag = bag.get_dag("kafka_attack_simulation")
check("DAG kafka_attack_simulation exists", dag is not None, sorted(bag.dag_ids))
if dag is None:
    sys.exit(1)

expected = ["check_api", "check_topics", "attack", "results", "wait_for_alert"]
check("tasks", sorted(dag.task_ids) == sorted(expected), dag.task_ids)
edges = sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)
want_edges = sorted([("check_api", "attack"), ("check_topics", "attack"), ("attack", "results"),
                     ("results", "wait_for_alert")])
check("checks -> attack -> results -> wait_for_alert", edges == want_edges, edges)

schedule = getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)
check("no schedule (triggered by hand or API)", schedule is None, schedule)
check("catchup off", dag.catchup is False, dag.catchup)
check("one run at a time", dag.max_active_runs == 1, dag.max_active_runs)
for task in dag.tasks:
    check(f"{task.task_id}: owner mlops-team", task.owner == "mlops-team", task.owner)
    check(f"{task.task_id}: 1 retry", task.retries == 1, task.retries)
    check(f"{task.task_id}: retry after 5 minutes", task.retry_delay == timedelta(minutes=5), task.retry_delay)

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
    task = dag.get_task(task_id)
    kind = type(task).__name__
    if mode == "kubernetes":
        check(f"{task_id}: KubernetesPodOperator", kind == "KubernetesPodOperator", kind)
        check(f"{task_id}: runs the fraudops image", task.image == os.environ["FRAUDOPS_IMAGE"], task.image)
        argv = task.arguments
        check(f"{task_id}: XCom only from attack", bool(task.do_xcom_push) == (task_id == "attack"), task.do_xcom_push)
    else:
        check(f"{task_id}: PythonOperator running the local binary", kind == "PythonOperator", kind)
        argv = task.op_kwargs["argv"]
    check(f"{task_id}: runs `fraudops {' '.join(head)}`", argv[: len(head)] == head, argv[:3])

# The templates render for a manual run with the default params.
context = {"params": defaults, "run_id": "manual__2026-05-01T10:00:00+00:00"}
rendered = {}
for task_id in runs:
    task = dag.get_task(task_id)
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    rendered[task_id] = " ".join(task.arguments if mode == "kubernetes" else task.op_kwargs["argv"])
kafka = ("--bootstrap-servers fraudops-kafka-kafka-bootstrap.fraudops.svc:9092 --topic transactions-input "
         "--require-topics fraud-predictions")
check("check_topics: broker, topic and required topics", rendered["check_topics"] == f"attack --check-only {kafka}",
      rendered["check_topics"])
results = ("/airflow/xcom/return.json" if mode == "kubernetes"
           else os.environ.get("FRAUDOPS_WORK_DIR", "/tmp/fraudops-attack") + "/manual__2026-05-01T10_00_00_00_00/results.json")
check("attack: the mission's phases, results to " + ("the XCom sidecar" if mode == "kubernetes" else "the run's directory"),
      rendered["attack"] == f"attack {kafka} --phases 50:5m,200:5m,500:5m,1500:5m --seed 42 --results {results}",
      rendered["attack"])

print(f"[{mode}] {len(failures)} failed")
sys.exit(1 if failures else 0)
