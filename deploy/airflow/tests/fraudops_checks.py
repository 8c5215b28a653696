"""What the check scripts of scripts/test-airflow.sh share (check_dag.py, check_attack_dag.py,
check_attack_run.py): one printed line per check with a failure count at the end, and for the DAG checks the
DAGs folder parsed as Airflow parses it plus the run policy both DAGs must keep. The scripts import it as a
sibling module (Python puts a script's own directory first on sys.path).
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta

BOTH_DAGS = {"ml_model_retrain", "kafka_attack_simulation"}
# The module the DAGs share (deploy/airflow/dags/.airflowignore keeps it from being parsed as a DAG file).
COMMON_MODULE = "fraudops_dag_common.py"


class Checks:
    """The checks' report, alike in every script: `ok`/`FAIL`, the label and the check's name, one line per
    check (the detail only on failure), and the failures remembered for the exit code."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.failures: list[str] = []

    def __call__(self, name: str, ok: bool, detail: object = "") -> None:
        print(f"{'ok  ' if ok else 'FAIL'} [{self.label}] {name}{'' if ok else f': {detail}'}")
        if not ok:
            self.failures.append(name)

    def exit(self) -> None:
        """The last line, the number of failed checks; exits non-zero if there was one."""
        print(f"[{self.label}] {len(self.failures)} failed")
        sys.exit(1 if self.failures else 0)


def dag_check_args() -> tuple[str, str, Checks]:
    """The arguments of a DAG check script (DAGS_FOLDER MODE): sets FRAUDOPS_AIRFLOW_MODE from MODE and a
    recognisable FRAUDOPS_IMAGE unless one is set, before the DAGs are parsed; the checks are labelled MODE."""
    dags_folder, mode = sys.argv[1], sys.argv[2]
    os.environ["FRAUDOPS_AIRFLOW_MODE"] = mode
    os.environ.setdefault("FRAUDOPS_IMAGE", "cr.example/fraudops:test")
    return dags_folder, mode, Checks(mode)


def load_dag(check: Checks, dags_folder: str, dag_id: str):
    """Parses the DAGs folder as the DAG processor does and returns the DAG `dag_id`: checks no import
    errors, both DAGs there, the shared module not parsed as a DAG file, and the DAG itself; exits if the DAG
    is missing."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag

    # The DAGs import a sibling module: their folder goes on sys.path, as Airflow's DAG processor and task
    # runner put it there (Airflow 3's BundleDagBag; Airflow 2 adds DAGS_FOLDER itself).
    if dags_folder not in sys.path:
        sys.path.append(dags_folder)
    bag = DagBag(dag_folder=dags_folder)
    check("no import errors", not bag.import_errors, bag.import_errors)
    check("both DAGs from the same folder", BOTH_DAGS <= set(bag.dag_ids), sorted(bag.dag_ids))
    parsed = sorted(os.path.basename(stat.file) for stat in bag.dagbag_stats)
    check(f"{COMMON_MODULE} is not parsed as a DAG file (.airflowignore)", COMMON_MODULE not in parsed, parsed)
    dag = bag.get_dag(dag_id)
    check(f"DAG {dag_id} exists", dag is not None, sorted(bag.dag_ids))
    if dag is None:
        sys.exit(1)
    return dag


def schedule_of(dag):
    """The DAG's schedule, as Airflow 3 (`schedule`) or 2.x (`schedule_interval`) holds it."""
    return getattr(dag, "schedule", None) or getattr(dag, "schedule_interval", None)


def check_run_policy(check: Checks, dag) -> None:
    """The policy both DAGs keep: catchup off, one run at a time, and on every task owner mlops-team and
    1 retry after 5 minutes."""
    check("catchup off", dag.catchup is False, dag.catchup)
    check("one run at a time", dag.max_active_runs == 1, dag.max_active_runs)
    for task in dag.tasks:
        check(f"{task.task_id}: owner mlops-team", task.owner == "mlops-team", task.owner)
        check(f"{task.task_id}: 1 retry", task.retries == 1, task.retries)
        check(f"{task.task_id}: retry after 5 minutes", task.retry_delay == timedelta(minutes=5), task.retry_delay)


def render(dag, task_ids, context: dict) -> dict:
    """Renders the templates of the tasks `task_ids` for `context` as a run would, so the checks see the
    arguments a pod or the local runner would get; returns the tasks by id."""
    rendered = {}
    for task_id in task_ids:
        task = dag.get_task(task_id)
        task.render_template_fields(context, jinja_env=dag.get_template_env())
        rendered[task_id] = task
    return rendered


def check_step(check: Checks, dag, task_id: str, mode: str, xcom_task: str) -> list[str]:
    """One fraudops step of either DAG: in cluster mode a KubernetesPodOperator of FRAUDOPS_IMAGE that pushes
    XCom only if it is `xcom_task`, in local mode a PythonOperator running the local binary. Returns the
    step's fraudops arguments (unrendered)."""
    task = dag.get_task(task_id)
    kind = type(task).__name__
    if mode == "kubernetes":
        check(f"{task_id}: KubernetesPodOperator", kind == "KubernetesPodOperator", kind)
        check(f"{task_id}: runs the fraudops image", task.image == os.environ["FRAUDOPS_IMAGE"], task.image)
        check(f"{task_id}: XCom only from {xcom_task}", bool(task.do_xcom_push) == (task_id == xcom_task),
              task.do_xcom_push)
    else:
        check(f"{task_id}: PythonOperator running the local binary", kind == "PythonOperator", kind)
    return argv_of(task, mode)


def argv_of(task, mode: str) -> list[str]:
    """The fraudops arguments of a step, read alike in both modes: the pod's arguments in cluster mode, the
    local runner's otherwise."""
    return task.arguments if mode == "kubernetes" else task.op_kwargs["argv"]
