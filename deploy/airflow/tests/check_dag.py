"""Structural checks of the ml_model_retrain DAG as a real Airflow parses it (scripts/test-airflow.sh).

    python check_dag.py DAGS_FOLDER MODE      MODE: kubernetes | local (FRAUDOPS_AIRFLOW_MODE is set from it)

Checks: no import errors; the five tasks in a chain; weekly, catchup off, one run at a time; owner mlops-team,
1 retry after 5 minutes; per mode the operator type and what it runs (the fraudops image with the right
subcommand in cluster mode, the local binary otherwise). Prints one line per check; exits non-zero on failure.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

dags_folder, mode = sys.argv[1], sys.argv[2]
os.environ["FRAUDOPS_AIRFLOW_MODE"] = mode
os.environ.setdefault("FRAUDOPS_IMAGE", "cr.example/fraudops:test")
# The MLflow connection as the Helm values define it (an AIRFLOW_CONN_* variable), and a decoy it must win over.
os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = "http://mlflow.example:5000"
os.environ["MLFLOW_TRACKING_URI"] = "http://decoy.example:5000"

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
dag = bag.get_dag("ml_model_retrain")
check("DAG ml_model_retrain exists", dag is not None, sorted(bag.dag_ids))
if dag is None:
    sys.exit(1)

expected = ["fetch_data", "train", "validate", "register_promote", "notify"]
check("tasks", sorted(dag.task_ids) == sorted(expected), dag.task_ids)
chain = [(a, b) for a, b in zip(expected, expected[1:])]
edges = sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)
check("tasks form the chain fetch -> train -> validate -> register -> notify", edges == sorted(chain), edges)

schedule = getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)
check("weekly schedule", str(schedule) == "@weekly", schedule)
check("catchup off", dag.catchup is False, dag.catchup)
check("one run at a time", dag.max_active_runs == 1, dag.max_active_runs)
for task in dag.tasks:
    check(f"{task.task_id}: owner mlops-team", task.owner == "mlops-team", task.owner)
    check(f"{task.task_id}: 1 retry", task.retries == 1, task.retries)
    check(f"{task.task_id}: retry after 5 minutes", task.retry_delay == timedelta(minutes=5), task.retry_delay)

subcommands = {"fetch_data": "simulate", "train": "train", "validate": "validate", "register_promote": "register"}
for task_id, subcommand in subcommands.items():
    task = dag.get_task(task_id)
    kind = type(task).__name__
    if mode == "kubernetes":
        check(f"{task_id}: KubernetesPodOperator", kind == "KubernetesPodOperator", kind)
        check(f"{task_id}: runs the fraudops image", task.image == os.environ["FRAUDOPS_IMAGE"], task.image)
        check(f"{task_id}: runs `fraudops {subcommand}`", task.arguments[0] == subcommand, task.arguments[:1])
        mounts = {m.mount_path for m in task.volume_mounts}
        check(f"{task_id}: shares the work volume", "/work" in mounts, mounts)
        check(
            f"{task_id}: XCom only from register",
            bool(task.do_xcom_push) == (subcommand == "register"),
            task.do_xcom_push,
        )
    else:
        check(f"{task_id}: PythonOperator running the local binary", kind == "PythonOperator", kind)
        check(f"{task_id}: runs `fraudops {subcommand}`", task.op_kwargs["argv"][0] == subcommand, task.op_kwargs)
train_args = (
    dag.get_task("train").arguments if mode == "kubernetes" else dag.get_task("train").op_kwargs["argv"]
)
check("train does not touch MLflow (register does)", "--no-mlflow" in train_args, train_args)
check("notify is a PythonOperator", type(dag.get_task("notify")).__name__ == "PythonOperator")

# The templates render for a scheduled run whose data interval ends 2018-06-01 (default params).
if mode == "kubernetes":
    context = {
        "dag_run": SimpleNamespace(data_interval_end=datetime(2018, 6, 1, tzinfo=timezone.utc)),
        "params": {key: dag.params[key] for key in dag.params},
        "run_id": "scheduled__2018-06-01T00:00:00+00:00",
    }
    rendered = {}
    for task_id in subcommands:
        task = dag.get_task(task_id)
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        rendered[task_id] = task
    args = {t: " ".join(task.arguments) for t, task in rendered.items()}
    work = "/work/scheduled__2018-06-01T00_00_00_00_00"
    check("fetch: the 120 days before the run", "--start-date 2018-02-01 --seed 20180601" in args["fetch_data"],
          args["fetch_data"])
    check("train: window ends with the data", "--train-start 2018-05-11 --train-days 7" in args["train"], args["train"])
    check("steps hand over files in the run's directory", f"--data {work}/transactions.csv.gz" in args["register_promote"],
          args["register_promote"])
    check("register: decision to the XCom sidecar", args["register_promote"].endswith("--decision-out /airflow/xcom/return.json"),
          args["register_promote"])
    env = {e.name: e.value for e in rendered["register_promote"].env_vars}
    check("register: MLflow from the connection mlflow_default", env.get("MLFLOW_TRACKING_URI") == "http://mlflow.example:5000",
          env)
    check("train: no MLflow in its environment", "MLFLOW_TRACKING_URI" not in {e.name for e in rendered["train"].env_vars})

print(f"[{mode}] {len(failures)} failed")
sys.exit(1 if failures else 0)
