"""fraudops_dag_common: what the DAGs of this folder (ml_model_retrain, kafka_attack_simulation) share.

Both DAGs wire `fraudops` subcommands that run either as pods of the fraudops image or with the local binary
(FRAUDOPS_AIRFLOW_MODE); the mode, the image, the pod's security settings, the local runner and the run
policy (owner, retries, one run at a time) are the same for both, so they are written once, here, and
cannot drift apart. The DAG-specific parts (steps, volumes, resources, params) stay in the DAG files.

Not a DAG: `.airflowignore` keeps the DAG-file processor from parsing it as one. The DAGs import it as a
sibling module: Airflow puts the DAGs folder (the bundle's path) on sys.path when it parses a DAG file or
runs a task, and gitSync brings this file along with them.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shlex
import shutil
import subprocess
from datetime import datetime, timedelta, timezone

try:  # Airflow 3
    from airflow.sdk import DAG, Param
except ImportError:  # Airflow 2.x
    from airflow import DAG
    from airflow.models.param import Param

try:  # Airflow 3 (and 2.x with the standard provider)
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.x without it
    from airflow.operators.python import PythonOperator

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

# What the DAGs import from here, the Airflow names (with their 2.x fallbacks above) among them.
__all__ = [
    "DAG", "IMAGE", "MODE", "NAMESPACE", "Param", "PythonOperator", "XCOM_RETURN", "KubernetesPodOperator",
    "dag_settings", "k8s", "pod_step", "run_dir", "run_local", "safe",
]

log = logging.getLogger(__name__)

MODE = os.environ.get("FRAUDOPS_AIRFLOW_MODE", "kubernetes").strip().lower()
if MODE not in ("kubernetes", "local"):
    raise ValueError(f"FRAUDOPS_AIRFLOW_MODE must be 'kubernetes' or 'local', got {MODE!r}")

# Cluster mode: the image, where its pods run (the attack may override it) and as which service account.
IMAGE = os.environ.get("FRAUDOPS_IMAGE", "fraudops:latest")
NAMESPACE = os.environ.get("FRAUDOPS_RETRAIN_NAMESPACE", "airflow")
SERVICE_ACCOUNT = os.environ.get("FRAUDOPS_RETRAIN_SERVICE_ACCOUNT", "default")
# KubernetesPodOperator's XCom sidecar reads exactly this file.
XCOM_RETURN = "/airflow/xcom/return.json"


def safe(text: str) -> str:
    """A run id as a path segment (run ids hold ':' and '+'); a macro of both DAGs (dag_settings)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", str(text))


def run_dir(root: str) -> str:
    """The template of a run's own directory under `root`, so that runs never share files."""
    return root + "/{{ safe(run_id) }}"


def dag_settings(retry_delay: timedelta = timedelta(minutes=5), macros: dict | None = None) -> dict:
    """The DAG arguments both DAGs share: start date, no catchup, one run at a time, owner mlops-team and
    1 retry after `retry_delay` on every task, and the `safe` macro (plus the DAG's own `macros`)."""
    return {
        "start_date": datetime(2026, 1, 1, tzinfo=timezone.utc),
        "catchup": False,
        "max_active_runs": 1,
        "default_args": {"owner": "mlops-team", "retries": 1, "retry_delay": retry_delay},
        "user_defined_macros": {"safe": safe, **(macros or {})},
    }


def run_local(argv: list[str], work_root: str, env: dict[str, str] | None = None, results: str | None = None,
              tail_lines: int = 10):
    """Local mode: runs one step with the local binary (FRAUDOPS_BIN, else `fraudops` on PATH), `env` added
    to the worker's environment, its output streamed into the task log as it comes (steps run for minutes).
    Fails the task with the command's `Error:` line and its last `tail_lines` lines on a non-zero exit.
    Returns the parsed JSON file `results` if given, so the next task reads it from XCom as in the cluster."""
    binary = os.environ.get("FRAUDOPS_BIN") or shutil.which("fraudops")
    if not binary:
        raise RuntimeError("local mode needs the fraudops binary: set FRAUDOPS_BIN or put it on PATH")
    env = {**os.environ, **(env or {})}
    env.setdefault("RUST_LOG", "info")
    os.makedirs(work_root, exist_ok=True)
    log.info("$ %s", shlex.join([binary, *argv]))
    lines: list[str] = []
    # cwd outside the repository: the binary reads a .env from its working directory.
    with subprocess.Popen(
        [binary, *argv], env=env, cwd=work_root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                line = line.rstrip("\n")
                lines.append(line)
                log.info("%s", line)
        finally:
            if proc.poll() is None:  # the task was killed: do not leave the step running
                proc.terminate()
            code = proc.wait()
    if code != 0:
        errors = [line for line in lines if line.startswith("Error:")]
        tail = "\n".join(lines[-tail_lines:])
        raise RuntimeError(f"fraudops {argv[0]} exited with {code}: {errors[-1] if errors else ''}\n{tail}")
    if results:
        with open(results, encoding="utf-8") as f:
            return json.load(f)
    return None


def pod_step(task_id: str, argv: list[str], *, app: str, requests: dict, limits: dict, do_xcom_push: bool,
             namespace: str = NAMESPACE, env_vars: dict[str, str] | None = None,
             volumes: list | None = None, volume_mounts: list | None = None, env_from: list | None = None,
             operator: type[KubernetesPodOperator] = KubernetesPodOperator) -> KubernetesPodOperator:
    """Cluster mode: one step as a pod of the fraudops image, non-root, read-only root filesystem (a
    writable /tmp is mounted after the DAG's own `volumes`), no service-account token, labelled `app`.
    `operator`: a KubernetesPodOperator subclass, for a step whose arguments depend on the run's params."""
    return operator(
        task_id=task_id,
        name=f"fraudops-{task_id.replace('_', '-')}",
        namespace=namespace,
        image=IMAGE,
        arguments=argv,
        env_vars={"RUST_LOG": "info", **(env_vars or {})},
        env_from=env_from,
        volumes=[*(volumes or []), k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource())],
        volume_mounts=[*(volume_mounts or []), k8s.V1VolumeMount(name="tmp", mount_path="/tmp")],
        container_resources=k8s.V1ResourceRequirements(requests=requests, limits=limits),
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True, run_as_user=65532, run_as_group=65532, fs_group=65532
        ),
        container_security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        service_account_name=SERVICE_ACCOUNT,
        # The steps never call the Kubernetes API.
        automount_service_account_token=False,
        labels={"app.kubernetes.io/name": app, "app.kubernetes.io/component": task_id},
        do_xcom_push=do_xcom_push,
        get_logs=True,
        on_finish_action="delete_pod",
        startup_timeout_seconds=600,
    )
