"""Structural checks of the ml_model_retrain DAG as a real Airflow parses it (scripts/test-airflow.sh).

    python check_dag.py DAGS_FOLDER MODE      MODE: kubernetes | local (FRAUDOPS_AIRFLOW_MODE is set from it)

Checks (with fraudops_checks.py): no import errors, both DAGs parsed from the folder and their shared module
not parsed as a DAG; the five tasks in a chain; weekly, catchup off, one run at a time; owner mlops-team,
1 retry after 5 minutes; per mode the operator type and what it runs (the fraudops image with the right
subcommand in cluster mode, the local binary otherwise); the data window of a scheduled run and of a run
started by an alert (conf from `fraudops retrain-trigger`: the data end with the alert's UTC day). Prints one line per check; exits non-zero on failure.
"""

from __future__ import annotations

import copy
import os
from datetime import datetime, timezone
from types import SimpleNamespace

from fraudops_checks import (
    argv_of, check_run_policy, check_step, dag_check_args, load_dag, render, schedule_of,
)

dags_folder, mode, check = dag_check_args()
# The MLflow connection as the Helm values define it (an AIRFLOW_CONN_* variable), and a decoy it must win over.
os.environ["AIRFLOW_CONN_MLFLOW_DEFAULT"] = "http://mlflow.example:5000"
os.environ["MLFLOW_TRACKING_URI"] = "http://decoy.example:5000"
# The Pushgateway as the Helm values define it: register's pod gets it, the other steps do not.
os.environ["PUSHGATEWAY_URL"] = "http://pushgateway.example:9091"
# The lake as the Helm values define it: fetch_data's pod reads it (with the reader's Secret), no other step.
os.environ["LAKE_URL"] = "s3://lake.example/lake"

dag = load_dag(check, dags_folder, "ml_model_retrain")

expected = ["fetch_data", "train", "validate", "register_promote", "notify"]
check("tasks", sorted(dag.task_ids) == sorted(expected), dag.task_ids)
chain = [(a, b) for a, b in zip(expected, expected[1:])]
edges = sorted((t.task_id, d) for t in dag.tasks for d in t.downstream_task_ids)
check("tasks form the chain fetch -> train -> validate -> register -> notify", edges == sorted(chain), edges)

check("weekly schedule", str(schedule_of(dag)) == "@weekly", schedule_of(dag))
check_run_policy(check, dag)

subcommands = {"fetch_data": "lake", "train": "train", "validate": "validate", "register_promote": "register"}
for task_id, subcommand in subcommands.items():
    argv = check_step(check, dag, task_id, mode, xcom_task="register_promote")
    check(f"{task_id}: runs `fraudops {subcommand}`", argv[0] == subcommand, argv[:1])
    if mode == "kubernetes":
        mounts = {m.mount_path for m in dag.get_task(task_id).volume_mounts}
        check(f"{task_id}: shares the work volume", "/work" in mounts, mounts)
train_args = argv_of(dag.get_task("train"), mode)
check("train does not touch MLflow (register does)", "--no-mlflow" in train_args, train_args)
check("notify is a PythonOperator", type(dag.get_task("notify")).__name__ == "PythonOperator")

# The templates render for a scheduled run whose data interval ends 2018-06-01 (default params).
if mode == "kubernetes":
    context = {
        "dag_run": SimpleNamespace(data_interval_end=datetime(2018, 6, 1, tzinfo=timezone.utc)),
        "params": {key: dag.params[key] for key in dag.params},
        "run_id": "scheduled__2018-06-01T00:00:00+00:00",
    }
    # Rendered on a copy: rendering replaces the templates in the tasks, and the alert run below renders too.
    rendered = render(copy.deepcopy(dag), subcommands, context)
    args = {t: " ".join(task.arguments) for t, task in rendered.items()}
    work = "/work/scheduled__2018-06-01T00_00_00_00_00"
    check("fetch: the window out of the lake, labels known at the data's end",
          args["fetch_data"].startswith("lake snapshot --lake s3://lake.example/lake --train-start 2018-05-11")
          and "--labels-as-of 2018-06-01" in args["fetch_data"], args["fetch_data"])
    fetch = rendered["fetch_data"]
    secrets = [e.secret_ref.name for e in (fetch.env_from or [])]
    check("fetch: the lake's read-only key from its Secret", secrets == ["fraudops-lake-reader"], secrets)
    check("only fetch reads the lake's key", all(not rendered[t].env_from for t in rendered if t != "fetch_data"))
    check("train: window ends with the data", "--train-start 2018-05-11 --train-days 7" in args["train"], args["train"])
    check("steps hand over files in the run's directory", f"--data {work}/transactions.csv.gz" in args["register_promote"],
          args["register_promote"])
    check("register: decision to the XCom sidecar", args["register_promote"].endswith("--decision-out /airflow/xcom/return.json"),
          args["register_promote"])
    env = {e.name: e.value for e in rendered["register_promote"].env_vars}
    check("register: MLflow from the connection mlflow_default", env.get("MLFLOW_TRACKING_URI") == "http://mlflow.example:5000",
          env)
    check("train: no MLflow in its environment", "MLFLOW_TRACKING_URI" not in {e.name for e in rendered["train"].env_vars})
    check("register: the Pushgateway from PUSHGATEWAY_URL", env.get("PUSHGATEWAY_URL") == "http://pushgateway.example:9091",
          env)
    check("train: no Pushgateway in its environment", "PUSHGATEWAY_URL" not in {e.name for e in rendered["train"].env_vars})

# A run started by an alert, as `fraudops retrain-trigger` creates it (REST API, logical date null, run a week
# after the alert, e.g. queued behind another run): the data end with the alert's UTC day, not the run's.
alert = {"alertname": "ScoreDistributionDrift", "starts_at": "2018-06-01T23:40:12Z", "group_key": "{}:{}",
         "labels": {"alertname": "ScoreDistributionDrift", "severity": "warning"}, "firing": 1}
check("param alert: absent by default (scheduled runs)", dag.params["alert"] is None, dag.params["alert"])
window = dag.user_defined_macros["window"]
defaults = {key: dag.params[key] for key in dag.params}
late_run = SimpleNamespace(data_interval_end=None, logical_date=None, run_after=datetime(2018, 6, 9, 8, tzinfo=timezone.utc))
alert_window = {"train_start": "2018-05-12", "labels_as_of": "2018-06-02"}
check("alert run: data end with the alert's UTC day (labels known at 2018-06-02, window to 2018-06-01 inclusive)",
      window(late_run, {**defaults, "alert": alert}) == alert_window, window(late_run, {**defaults, "alert": alert}))
check("alert run: startsAt with an offset is read in UTC",
      window(late_run, {**defaults, "alert": {**alert, "starts_at": "2018-06-02T01:40:12+02:00"}}) == alert_window)
check("alert run: a notification repeated days later gives the same window",
      window(SimpleNamespace(run_after=datetime(2018, 6, 3, tzinfo=timezone.utc)), {**defaults, "alert": alert})
      == alert_window)
check("alert run: an explicit end_date still wins",
      window(late_run, {**defaults, "alert": alert, "end_date": "2018-06-01"})["train_start"] == "2018-05-11")
check("no alert: the run's date (unchanged)", window(late_run, defaults)["labels_as_of"] == "2018-06-09")
for what, bad in (("no starts_at", {"alertname": "X"}), ("starts_at not a time", {**alert, "starts_at": "yesterday"}),
                  ("starts_at without a zone", {**alert, "starts_at": "2018-06-01T23:40:12"})):
    try:
        window(late_run, {**defaults, "alert": bad})
        check(f"alert run: refused when {what}", False, f"accepted {bad}")
    except ValueError:
        check(f"alert run: refused when {what}", True)
if mode == "kubernetes":
    context = {"dag_run": late_run, "params": {**defaults, "alert": alert},
               "run_id": "alert__ScoreDistributionDrift__20180601T234012Z__0123456789ab"}
    rendered = render(copy.deepcopy(dag), subcommands, context)
    args = {t: " ".join(task.arguments) for t, task in rendered.items()}
    check("alert run rendered: fetch the window ending with the alert's day",
          "--train-start 2018-05-12" in args["fetch_data"] and "--labels-as-of 2018-06-02" in args["fetch_data"],
          args["fetch_data"])
    check("alert run rendered: train/test window ends with the alert's day",
          "--train-start 2018-05-12 --train-days 7" in args["train"], args["train"])
    check("alert run rendered: register names the alert's run",
          "--run-name airflow-alert__ScoreDistributionDrift__20180601T234012Z__0123456789ab" in args["register_promote"],
          args["register_promote"])

check.exit()
