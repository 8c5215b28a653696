"""Structural checks of the kafka_attack_simulation DAG as a real Airflow parses it (scripts/test-airflow.sh).

    python check_attack_dag.py DAGS_FOLDER MODE      MODE: kubernetes | local (FRAUDOPS_AIRFLOW_MODE is set from it)

Checks (with fraudops_checks.py): no import errors, both DAGs parsed from the folder and their shared module
not parsed as a DAG; the tasks and their order (check_api and check_topics before attack, then results,
then wait_for_alert); no schedule, catchup off, one run at a time; owner mlops-team, 1 retry after 5 minutes;
the params and their defaults; per mode the operator type and what it runs (the fraudops image with
`attack --check-only` and `attack --results` in cluster mode, the local binary otherwise), and the rendered
arguments of a manual run. The attack's command line with the closed loop (the default) and without it
(`escalate` false): in cluster mode as the pod the operator would create (its container's args and env), in
local mode as the process the runner starts (a stand-in binary that writes back the argv it was given, and
that also plays an escalation ending at max_rate without the alert). Prints one line per check; exits
non-zero on failure.
"""

from __future__ import annotations

import copy
import os
import sys
import tempfile

from fraudops_checks import (
    argv_of, check_run_policy, check_step, dag_check_args, load_dag, render, schedule_of,
)

dags_folder, mode, check = dag_check_args()
# The default (5 minutes) is what is checked, whatever the caller's environment.
os.environ.pop("FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS", None)
# Local mode: the stand-in binary below writes its results under a directory of this check's own.
scratch = tempfile.TemporaryDirectory(prefix="check-attack-dag-")
os.environ["FRAUDOPS_WORK_DIR"] = scratch.name

dag = load_dag(check, dags_folder, "kafka_attack_simulation")
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator  # noqa: E402 - after the DAGs

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
    "escalate": True,
    "step": 2,
    "max_rate": 192000,
    "alert_poll": "5s",
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
    if task_id == "attack" and mode == "kubernetes":
        # A subclass (AttackPod: the closed loop's options), so not check_step's exact operator type.
        task = dag.get_task(task_id)
        check("attack: a KubernetesPodOperator (AttackPod)", isinstance(task, KubernetesPodOperator)
              and type(task).__name__ == "AttackPod", type(task).__mro__)
        check("attack: runs the fraudops image", task.image == os.environ["FRAUDOPS_IMAGE"], task.image)
        check("attack: XCom from attack", bool(task.do_xcom_push), task.do_xcom_push)
        argv = argv_of(task, mode)
    else:
        argv = check_step(check, dag, task_id, mode, xcom_task="attack")
    check(f"{task_id}: runs `fraudops {' '.join(head)}`", argv[: len(head)] == head, argv[:3])

# The templates render for a manual run with the default params (the attack's on copies, run by run below).
pristine_attack = copy.deepcopy(dag.get_task("attack"))
context = {"params": defaults, "run_id": "manual__2026-05-01T10:00:00+00:00"}
rendered = {task_id: " ".join(argv_of(task, mode)) for task_id, task in render(dag, ["check_topics"], context).items()}
kafka = ("--bootstrap-servers fraudops-kafka-kafka-bootstrap.fraudops.svc:9092 --topic transactions-input "
         "--require-topics fraud-predictions")
check("check_topics: broker, topic and required topics", rendered["check_topics"] == f"attack --check-only {kafka}",
      rendered["check_topics"])
results = ("/airflow/xcom/return.json" if mode == "kubernetes"
           else scratch.name + "/manual__2026-05-01T10_00_00_00_00/results.json")
listed = f"attack {kafka} --phases 50:5m,200:5m,500:5m,1500:5m --seed 42 --results {results}"
closed_loop = ("--until-alert AdminNotification_MaxScaleHighCPU "
               "--alertmanager http://kube-prometheus-stack-alertmanager.monitoring.svc:9093 "
               "--step 2 --max-rate 192000 --alert-poll 5s")

# The attack's command line per run: the closed loop's options are added after rendering (cluster mode)
# or by the runner (local mode), so they are checked where they end up: in the pod, or in the process.
STAND_IN = """
import json, os, sys
argv = sys.argv[1:]
path = argv[argv.index("--results") + 1]
os.makedirs(os.path.dirname(path), exist_ok=True)
gave_up = os.environ.get("STAND_IN_GAVE_UP") == "1"
alert = {"alert": "A", "alertmanager": "http://am", "fired": False, "time_to_alert_s": None,
         "triggering_rate": None, "triggering_phase": None}
with open(path, "w", encoding="utf-8") as f:
    json.dump({"argv": argv, "interrupted": False, "phases": [{"target_rate": 96000.0}],
               "alert": alert if gave_up else None}, f)
if gave_up:
    print("Error: alert A did not fire before the escalation ended (raise --max-rate or check http://am)")
    sys.exit(1)
"""
stand_in = os.path.join(scratch.name, "fraudops")
with open(stand_in, "w", encoding="utf-8") as f:
    f.write(f"#!{sys.executable}\n{STAND_IN}")
os.chmod(stand_in, 0o755)


def attack_run(params: dict, gave_up: bool = False):
    """The attack task of a run with `params`: in cluster mode the pod the operator would create (rendered
    twice, as a retried render would), in local mode what the runner ran (the stand-in's argv)."""
    task = copy.deepcopy(pristine_attack)
    ctx = {"params": params, "run_id": context["run_id"]}
    if mode == "kubernetes":
        task.render_template_fields(ctx, jinja_env=dag.get_template_env())
        task.render_template_fields(ctx, jinja_env=dag.get_template_env())
        container = task.build_pod_request_obj(dry_run=True).spec.containers[0]
        return container.args, {e.name: e.value for e in container.env}
    task.render_template_fields(ctx, jinja_env=dag.get_template_env())
    os.environ["FRAUDOPS_BIN"] = stand_in
    os.environ["STAND_IN_GAVE_UP"] = "1" if gave_up else "0"
    try:
        return task.python_callable(**task.op_kwargs, params=params)["argv"], None
    except RuntimeError as error:
        return None, str(error)


where = "the pod's args" if mode == "kubernetes" else "the process's argv"
argv, env = attack_run(defaults)
check(f"attack (defaults): the mission's phases, then the closed loop until the admin alert ({where})",
      argv is not None and " ".join(argv) == f"{listed} {closed_loop}", argv)
if mode == "kubernetes":
    # Nothing reaches the closed loop through the environment: the pod's env is the operator's own.
    check("attack pod: env RUST_LOG and NO_COLOR only", env == {"RUST_LOG": "info", "NO_COLOR": "1"}, env)
argv, _ = attack_run({**defaults, "escalate": False})
check(f"attack (escalate false): the listed phases only, as the open loop ran before ({where})",
      argv is not None and " ".join(argv) == listed, argv)
argv, _ = attack_run({**defaults, "step": 1.5, "max_rate": 3200, "alert_poll": "1s"})
check("attack: step, max_rate and alert_poll from the run's params",
      argv is not None and " ".join(argv).endswith("--step 1.5 --max-rate 3200 --alert-poll 1s"), argv)
if mode == "local":
    _, error = attack_run(defaults, gave_up=True)
    check("attack: an escalation ending at max_rate without the alert fails naming max_rate",
          error is not None and "max_rate 192000" in error and "did not fire" in error, error)

check.exit()
