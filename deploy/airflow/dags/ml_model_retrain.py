"""ml_model_retrain: the weekly retraining of the fraud model (SPEC §6), also started by the model alerts.

fetch_data -> train -> validate -> register_promote -> notify

Every step but notify is one `fraudops` subcommand; this file only wires them (the logic lives in
Rust, where it is tested):

  fetch_data        fraudops lake       the training window out of the transaction lake (what
                    snapshot            `fraudops archive` wrote from transactions-input and fraud-labels):
                                        the SPEC §3.3 split ending at the run's date, or with the alert's
                                        day for an alert's run (below), its feature history, and the labels
                                        known at the data's end (a later chargeback does not exist yet), as
                                        one file every later step reads
  train             fraudops train      --no-mlflow: features, time split, fit, evaluation -> model.json
  validate          fraudops validate   the artifact loads as `serve` would and clears quality floors
  register_promote  fraudops register   MLflow run (params, metrics, artifact), new registered version,
                                        champion gate on the same test window, alias moved or not; with
                                        PUSHGATEWAY_URL, the outcome to the Pushgateway (the dashboard's
                                        time since the last successful retraining)
  notify            (Python)            the gate's decision to the log and to ALERT_WEBHOOK_URL if set

Two modes, chosen by FRAUDOPS_AIRFLOW_MODE:

  kubernetes (default)  each step is a KubernetesPodOperator running the fraudops image
                        (FRAUDOPS_IMAGE); the steps share the PVC FRAUDOPS_RETRAIN_PVC mounted at /work;
                        the decision reaches notify through the pod's XCom sidecar.
  local                 the same argument lists run with the local binary (FRAUDOPS_BIN, else `fraudops`
                        on PATH) in FRAUDOPS_WORK_DIR; scripts/test-airflow.sh runs the DAG like this
                        with `airflow dags test` against a real MLflow server.

The lake: LAKE_URL in Airflow's environment (s3://BUCKET/PREFIX in the cluster, with AWS_REGION and AWS_ENDPOINT;
a directory locally). In the cluster fetch_data's pod also gets the read-only key of the lake from the Secret
FRAUDOPS_LAKE_SECRET (default fraudops-lake-reader: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY); no other step
reads the lake. Nothing here generates data: the simulator reaches the lake only as traffic, through Kafka.

Runs started by an alert: Alertmanager's receiver fraudops-retrain posts ModelQualityDegraded and
ScoreDistributionDrift to `fraudops retrain-trigger`, which starts this DAG through Airflow's REST API with
run id `alert__<alertname>__<startsAt>__<group hash>` (one run per incident) and conf
{"alert": {"alertname": ..., "starts_at": "<RFC 3339>", ...}}. Such a run's data end with the alert's UTC
day (`window`): the test window, on which the gate scores champion and candidate, is the most recent one
and holds the days the alert saw. An explicit `end_date` still wins. docs/retraining.md.

MLflow: the Airflow connection `mlflow_default` (e.g. AIRFLOW_CONN_MLFLOW_DEFAULT=http://mlflow:5000), else
MLFLOW_TRACKING_URI. Pushgateway (optional): PUSHGATEWAY_URL in Airflow's environment (e.g.
http://prometheus-pushgateway.monitoring.svc:9091), passed to register in both modes. Runs never overlap
(max_active_runs=1): two gates racing for the alias would compare against a champion that is about to change.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.request
from datetime import date, datetime, timedelta, timezone

from fraudops_dag_common import (
    DAG, MODE, XCOM_RETURN, KubernetesPodOperator, Param, PythonOperator, dag_settings, k8s, pod_step, run_dir,
    run_local,
)

log = logging.getLogger(__name__)

DAG_ID = "ml_model_retrain"
MLFLOW_CONN_ID = "mlflow_default"
# Cluster mode: the volume the steps hand files over on (the image and namespace: fraudops_dag_common).
PVC = os.environ.get("FRAUDOPS_RETRAIN_PVC", "fraudops-retrain-work")
# Where a run's files live: on the PVC in the cluster, in a local directory otherwise.
WORK_ROOT = "/work" if MODE == "kubernetes" else os.environ.get("FRAUDOPS_WORK_DIR", "/tmp/fraudops-retrain")
WORK = run_dir(WORK_ROOT)
DATA = WORK + "/transactions.csv.gz"
MODEL_DIR = WORK + "/model"
# register writes its decision where the XCom sidecar reads it; locally the callable reads it back.
DECISION = XCOM_RETURN if MODE == "kubernetes" else WORK + "/decision.json"


def anchor(dag_run) -> date:
    """The day the data ends: the end of the data interval for scheduled runs, else the run's date."""
    for attr in ("data_interval_end", "logical_date", "run_after", "start_date"):
        value = getattr(dag_run, attr, None)
        if value:
            return value.date()
    return datetime.now(timezone.utc).date()


def alert_starts_at(params) -> datetime | None:
    """The `startsAt` of the alert that started this run (conf `alert.starts_at`, RFC 3339), in UTC; None
    for a run without an alert. A malformed alert fails the task: guessing a window would train on the
    wrong days."""
    alert = params.get("alert")
    if not alert:
        return None
    if not isinstance(alert, dict) or not alert.get("starts_at"):
        raise ValueError(f"conf alert must be an object with starts_at (RFC 3339), got {alert!r}")
    text = str(alert["starts_at"]).strip()
    try:
        starts = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError as error:
        raise ValueError(f"conf alert.starts_at {text!r} is not RFC 3339: {error}") from None
    if starts.tzinfo is None:
        raise ValueError(f"conf alert.starts_at {text!r} has no time zone")
    return starts.astimezone(timezone.utc)


def end_of_data(dag_run, params) -> date:
    """The day the data end (exclusive): `end_date` if given; for an alert's run the day after the alert's
    UTC day, so the data (and the test window, the last `test_days`) include the day the alert fired and
    the days before it, which hold what the alert saw; else `anchor`, the run's date (scheduled runs)."""
    if params.get("end_date"):
        return date.fromisoformat(params["end_date"])
    starts = alert_starts_at(params)
    if starts is not None:
        return starts.date() + timedelta(days=1)
    return anchor(dag_run)


def window(dag_run, params) -> dict:
    """The training window of a run, ending at `end_of_data`: training and test windows are laid so that the
    test window ends with the data, and the labels that exist are those known when the data end (`fraudops
    lake snapshot` reads the window's feature history before `train_start` itself)."""
    end = end_of_data(dag_run, params)
    span = int(params["train_days"]) + int(params["delay_days"]) + int(params["test_days"])
    return {
        "train_start": (end - timedelta(days=span)).isoformat(),
        "labels_as_of": end.isoformat(),
    }


def lake_url() -> str:
    """The transaction lake (LAKE_URL in Airflow's environment); fetch_data fails without it."""
    url = os.environ.get("LAKE_URL", "").strip()
    if not url:
        raise RuntimeError("no transaction lake: set LAKE_URL in Airflow's environment (s3://BUCKET/PREFIX or a directory)")
    return url


# Cluster mode: the Secret with the lake's read-only key (deploy/README.md), and the S3 settings passed on.
LAKE_SECRET = os.environ.get("FRAUDOPS_LAKE_SECRET", "fraudops-lake-reader")
LAKE_ENV = ("AWS_REGION", "AWS_ENDPOINT", "AWS_ALLOW_HTTP")


def mlflow_tracking_uri() -> str:
    """The tracking server: connection `mlflow_default` if defined, else MLFLOW_TRACKING_URI."""
    try:
        try:
            from airflow.sdk import BaseHook
        except ImportError:
            from airflow.hooks.base import BaseHook
        conn = BaseHook.get_connection(MLFLOW_CONN_ID)
        if conn.host:
            host = conn.host if "://" in conn.host else f"http://{conn.host}"
            return f"{host}:{conn.port}" if conn.port else host
    except Exception as error:  # noqa: BLE001 - a missing connection is the common case
        log.debug("no usable connection %s (%s); using MLFLOW_TRACKING_URI", MLFLOW_CONN_ID, error)
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if not uri:
        raise RuntimeError(f"no MLflow: define the Airflow connection {MLFLOW_CONN_ID} or set MLFLOW_TRACKING_URI")
    return uri


def pushgateway_url() -> str:
    """Where register pushes the retraining's outcome (PUSHGATEWAY_URL); empty: no push."""
    return os.environ.get("PUSHGATEWAY_URL", "").strip()


# --- the steps: one argument list each, identical in both modes (Jinja-rendered by either operator) -----------
W = "window(dag_run, params)"
STEPS: dict[str, list[str]] = {
    "fetch_data": [
        "lake", "snapshot",
        "--lake", "{{ lake_url() }}",
        "--train-start", "{{ " + W + ".train_start }}",
        "--train-days", "{{ params.train_days }}",
        "--delay-days", "{{ params.delay_days }}",
        "--test-days", "{{ params.test_days }}",
        "--labels-as-of", "{{ " + W + ".labels_as_of }}",
        "--out", DATA,
    ],
    "train": [
        "train",
        "--no-mlflow",
        "--data", DATA,
        "--out", MODEL_DIR,
        "--train-start", "{{ " + W + ".train_start }}",
        "--train-days", "{{ params.train_days }}",
        "--delay-days", "{{ params.delay_days }}",
        "--test-days", "{{ params.test_days }}",
    ],
    "validate": [
        "validate",
        "--model", MODEL_DIR + "/model.json",
        "--min-roc-auc", "{{ params.min_roc_auc }}",
        "--min-average-precision", "{{ params.min_average_precision }}",
    ],
    "register_promote": [
        "register",
        "--model", MODEL_DIR + "/model.json",
        "--data", DATA,
        "--experiment", "{{ params.experiment }}",
        "--model-name", "{{ params.model_name }}",
        "--gate-metric", "{{ params.gate_metric }}",
        "--gate-tolerance", "{{ params.gate_tolerance }}",
        "--run-name", "airflow-{{ safe(run_id) }}",
        "--decision-out", DECISION,
    ],
}


def run_fraudops(argv: list[str], decision: str | None = None):
    """Local mode: runs one step with the local binary, its output streamed into the task log; `register`
    gets the MLflow tracking server and the Pushgateway in its environment. Returns the gate decision (parsed
    from `decision`) for register_promote, so notify reads it from XCom as in the cluster."""
    env = {}
    if argv[0] == "register":
        env = {"MLFLOW_TRACKING_URI": mlflow_tracking_uri(), "PUSHGATEWAY_URL": pushgateway_url()}
    return run_local(argv, WORK_ROOT, env=env, results=decision, tail_lines=15)


def retrain_pod(task_id: str, argv: list[str]) -> KubernetesPodOperator:
    """Cluster mode: one step as a pod of the fraudops image (fraudops_dag_common.pod_step) with the work
    volume at /work; only fetch_data's pod gets the lake's read-only key, only register's pod gets MLflow (and the
    Pushgateway) and hands its decision over through XCom."""
    register = argv[0] == "register"
    lake = argv[0] == "lake"
    env_vars = {}
    if register:
        env_vars = {"MLFLOW_TRACKING_URI": "{{ mlflow_tracking_uri() }}", "PUSHGATEWAY_URL": "{{ pushgateway_url() }}"}
    if lake:
        env_vars = {name: os.environ[name] for name in LAKE_ENV if os.environ.get(name)}
    return pod_step(
        task_id,
        argv,
        app="fraudops-retrain",
        env_vars=env_vars,
        env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=LAKE_SECRET))] if lake else None,
        volumes=[
            k8s.V1Volume(
                name="work", persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=PVC)
            )
        ],
        volume_mounts=[k8s.V1VolumeMount(name="work", mount_path=WORK_ROOT)],
        requests={"cpu": "1", "memory": "2Gi"},
        limits={"memory": "4Gi"},
        do_xcom_push=register,
    )


def notify(**context) -> str:
    """Reports the gate's decision: always to the task log, and to ALERT_WEBHOOK_URL (Slack-style
    {"text": ...} plus the decision) when set. A webhook that fails fails the task (and its retry)."""
    decision = context["ti"].xcom_pull(task_ids="register_promote")
    if not decision:
        raise RuntimeError("register_promote left no decision")
    verdict = "promoted to @{alias}".format(**decision) if decision["promoted"] else "NOT promoted"
    alert = context["params"].get("alert") or {}
    cause = f" after {alert.get('alertname')} (firing since {alert.get('starts_at')})" if alert else ""
    text = (
        f"{DAG_ID} {context['run_id']}{cause}: {decision['model_name']} version {decision['version']} {verdict} "
        f"({decision['explanation']}); MLflow run {decision['run_id']}"
    )
    log.info("%s", text)
    url = os.environ.get("ALERT_WEBHOOK_URL")
    if url:
        body = json.dumps({"text": text, "source": DAG_ID, "run_id": context["run_id"], "decision": decision})
        request = urllib.request.Request(
            url, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - operator-set URL
            log.info("notified %s: HTTP %s", url, response.status)
    return text


with DAG(
    dag_id=DAG_ID,
    description="Weekly (and on model alerts) retraining: fetch the window from the lake, train, validate, register in MLflow, "
                "promote past the champion gate",
    schedule="@weekly",
    **dag_settings(macros={"window": window, "mlflow_tracking_uri": mlflow_tracking_uri,
                           "pushgateway_url": pushgateway_url, "lake_url": lake_url}),
    tags=["fraudops", "mlops", "retraining"],
    params={
        "end_date": Param(
            "", type="string", description="YYYY-MM-DD the data ends; empty: the alert's day + 1, else the run's date"
        ),
        "train_days": Param(7, type="integer", minimum=1),
        "delay_days": Param(7, type="integer", minimum=0),
        "test_days": Param(7, type="integer", minimum=1),
        "min_roc_auc": Param(0.6, type="number", description="validate: floor on ROC AUC"),
        "min_average_precision": Param(0.05, type="number", description="validate: floor on AP"),
        "experiment": Param("fraud-detection", type="string"),
        "model_name": Param("fraud-detector", type="string"),
        "gate_metric": Param(
            "average_precision", enum=["average_precision", "roc_auc", "card_precision_at_100"]
        ),
        "gate_tolerance": Param(0.0, type="number", minimum=0, description="how much worse than the champion"),
        # Set by `fraudops retrain-trigger` (conf {"alert": {...}}): the alert that started the run.
        "alert": Param(
            None, type=["null", "object"],
            description="the alert that started the run (alertname, starts_at RFC 3339); its day ends the data",
        ),
    },
    doc_md=__doc__,
) as dag:
    steps = []
    for task_id, argv in STEPS.items():
        if MODE == "kubernetes":
            steps.append(retrain_pod(task_id, argv))
        else:
            steps.append(
                PythonOperator(
                    task_id=task_id,
                    python_callable=run_fraudops,
                    op_kwargs={"argv": argv, "decision": DECISION if argv[0] == "register" else None},
                )
            )
    steps.append(PythonOperator(task_id="notify", python_callable=notify))
    for upstream, downstream in zip(steps, steps[1:]):
        upstream >> downstream
