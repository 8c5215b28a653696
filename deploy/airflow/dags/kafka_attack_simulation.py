"""kafka_attack_simulation: the attack of SPEC §5 through Kafka, started by hand or through the API.

check_api ─┐
           ├─> attack -> results -> wait_for_alert
check_topics

  check_api       (Python)                  GET {api_url}/ready answers 200: the API the stream worker
                                            calls is up, so the attack loads something
  check_topics    fraudops attack           --check-only: the broker answers and `topic` and
                                            `require_topics` (fraud-predictions: the stream worker's
                                            output) exist; creates and sends nothing
  attack          fraudops attack           the listed phases (open model: message i of a phase is due
                                            at i / rate), then, if `escalate`, the closed loop: the last
                                            phase again at `step` x its rate until `alert_name` fires in
                                            Alertmanager (--until-alert, polled every `alert_poll`; it
                                            stops at once when it fires, listed phases included); fails
                                            if the next rate would pass `max_rate` first. Per-phase
                                            results (and the closed loop's outcome) as JSON (--results)
  results         (Python)                  reads the results back, logs the phase table and the closed
                                            loop's outcome (fired, time to alert, triggering phase and
                                            rate; returned in XCom), fails if more than max_error_pct of
                                            the messages were not acknowledged
  wait_for_alert  (Python)                  optional: polls Alertmanager's API v2 (/api/v2/alerts) for
                                            `alert_name` until it fires or alert_timeout_seconds pass;
                                            records whether and when it fired (XCom), never fails on
                                            "did not fire". Alertmanager lists unresolved alerts only:
                                            one that fired and resolved before the attack ended is not
                                            seen (the attack's own --until-alert polls during the run)

Why the topic check is `fraudops attack --check-only` and not Python: the Airflow image has no Kafka client
(neither confluent-kafka nor kafka-python ships with it), and the fraudops image already carries librdkafka;
so the check runs where the attack runs (a pod of the image, or the local binary), with the same client and
the same options. The attack itself makes the same pre-flight check before sending, so a broker that is down
fails either task in seconds with its address in the log ("cannot reach the Kafka broker at ..."), not after
librdkafka's minute-long timeouts.

Two modes, chosen by FRAUDOPS_AIRFLOW_MODE, as for ml_model_retrain:

  kubernetes (default)  check_topics and attack are KubernetesPodOperator pods of the fraudops image
                        (FRAUDOPS_IMAGE) in FRAUDOPS_ATTACK_NAMESPACE (default: FRAUDOPS_RETRAIN_NAMESPACE,
                        else airflow); the attack writes its results to /airflow/xcom/return.json, which
                        the pod's XCom sidecar hands to `results`.
  local                 the same argument lists run with the local binary (FRAUDOPS_BIN, else `fraudops`
                        on PATH) in FRAUDOPS_WORK_DIR; scripts/test-airflow.sh runs the DAG like this with
                        `airflow dags test` against a real Kafka-protocol broker (tansu).

The closed loop's options (CLOSED_LOOP) are appended to the attack's arguments only when the run escalates:
in the pod once its templates are rendered (AttackPod), locally by the runner (run_attack). Jinja renders
each argument on its own, so a template can neither add nor drop an option, and an empty ATTACK_UNTIL_ALERT
is no way out: clap reads an empty variable as the alert name "", not as "no closed loop".

check_api, results and wait_for_alert run in the Airflow worker in both modes (HTTP only).
No schedule: an attack is a one-off, triggered from the UI (Trigger DAG, with the params below) or with
`airflow dags trigger kafka_attack_simulation --conf '{"phases": "50:1m,200:1m"}'`. Runs never overlap
(max_active_runs=1): two attacks at once would make neither's results mean anything.
Retries: 1 after 5 minutes, as ml_model_retrain; FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS overrides the delay
(scripts/test-airflow.sh sets 1 s so its failure case does not wait 5 minutes).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone

from fraudops_dag_common import (
    DAG, MODE, NAMESPACE as RETRAIN_NAMESPACE, XCOM_RETURN, KubernetesPodOperator, Param, PythonOperator,
    dag_settings, pod_step, run_dir, run_local,
)

log = logging.getLogger(__name__)

DAG_ID = "kafka_attack_simulation"
# Cluster mode: where the attack's pods run (the image and service account are the retraining's).
NAMESPACE = os.environ.get("FRAUDOPS_ATTACK_NAMESPACE") or RETRAIN_NAMESPACE
# Local mode: one directory per run under FRAUDOPS_WORK_DIR.
WORK_ROOT = os.environ.get("FRAUDOPS_WORK_DIR", "/tmp/fraudops-attack")
WORK = run_dir(WORK_ROOT)
# The attack writes its results where the XCom sidecar reads them; locally the callable reads them back.
RESULTS = XCOM_RETURN if MODE == "kubernetes" else WORK + "/results.json"
RETRY_DELAY = timedelta(seconds=int(os.environ.get("FRAUDOPS_ATTACK_RETRY_DELAY_SECONDS", "300")))
HTTP_TIMEOUT_S = 10
ALERT_POLL_S = 5.0


# --- the fraudops steps: one argument list each, identical in both modes (Jinja-rendered by either operator) ---
KAFKA = [
    "--bootstrap-servers", "{{ params.bootstrap_servers }}",
    "--topic", "{{ params.topic }}",
    "--require-topics", "{{ params.require_topics | join(',') }}",
]
STEPS: dict[str, list[str]] = {
    "check_topics": ["attack", "--check-only", *KAFKA],
    "attack": [
        "attack",
        *KAFKA,
        "--phases", "{{ params.phases }}",
        "--seed", "{{ params.seed }}",
        "--results", RESULTS,
    ],
}
# The attack's closed loop, appended when `escalate`: after the listed phases, the last one again at `step` x
# its rate until `alert_name` fires, never beyond `max_rate` (fraudops exits 1 when it gets there first).
CLOSED_LOOP = [
    "--until-alert", "{{ params.alert_name }}",
    "--alertmanager", "{{ params.alertmanager_url }}",
    "--step", "{{ params.step }}",
    "--max-rate", "{{ params.max_rate }}",
    "--alert-poll", "{{ params.alert_poll }}",
]


def run_fraudops(argv: list[str], results: str | None = None):
    """Local mode: runs one step with the local binary, its output streamed into the task log as it comes
    (an attack runs for minutes). Returns the parsed results file for the attack, so `results` reads it
    from XCom as in the cluster."""
    env = {
        "RUST_BACKTRACE": "0",  # the error chain is the message; a backtrace only buries it
        "NO_COLOR": "1",  # plain log lines, no terminal colour codes
    }
    return run_local(argv, WORK_ROOT, env=env, results=results)


def run_attack(argv: list[str], closed_loop: list[str], results: str, params, **_):
    """Local mode: the attack, with the closed loop's options if the run escalates. An escalation that
    stopped at `max_rate` without the alert (fraudops exits 1) fails the task with a message naming it."""
    if not params["escalate"]:
        return run_fraudops(argv, results=results)
    try:
        return run_fraudops([*argv, *closed_loop], results=results)
    except RuntimeError as error:
        # fraudops writes its results before it exits 1 for the missing alert.
        report = read_results(results)
        if report and gave_up(report):
            raise RuntimeError(gave_up_message(report, params)) from error
        raise


def read_results(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def gave_up(report: dict) -> bool:
    """The closed loop ended without its alert: the next escalation would have passed `max_rate`."""
    alert = report.get("alert")
    return bool(alert) and not alert["fired"] and not report["interrupted"]


def gave_up_message(report: dict, params) -> str:
    last = report["phases"][-1]["target_rate"]  # the closed loop escalates numeric rates only
    return (
        f"{params['alert_name']} did not fire: the attack escalated to {last:.0f} msg/s and stopped there, "
        f"as the next step (x{params['step']}) would pass max_rate {params['max_rate']} msg/s; raise max_rate, "
        f"or check that Alertmanager at {params['alertmanager_url']} receives the alert"
    )


class AttackPod(KubernetesPodOperator):
    """Cluster mode: the attack's pod; its arguments gain the closed loop's (CLOSED_LOOP, rendered) when the
    run escalates. Appended after rendering: a template is always exactly one argument."""

    def render_template_fields(self, context, jinja_env=None) -> None:
        super().render_template_fields(context, jinja_env)
        # Once: Airflow may render a task object again, and clap refuses a repeated option.
        if context["params"]["escalate"] and "--until-alert" not in self.arguments:
            self.arguments = [*self.arguments, *self.render_template(CLOSED_LOOP, context, jinja_env)]


def attack_pod(task_id: str, argv: list[str]) -> KubernetesPodOperator:
    """Cluster mode: one step as a pod of the fraudops image (fraudops_dag_common.pod_step), sized for the
    attack; only the attack's pod hands its results over through XCom."""
    return pod_step(
        task_id,
        argv,
        app="fraudops-attack",
        namespace=NAMESPACE,
        env_vars={"NO_COLOR": "1"},
        # The pod must carry the highest rate the closed loop may escalate to (`max_rate`, by default
        # 1500 x 2^7 msg/s of ~300 B each) without becoming the bottleneck. Measured against tansu: 15 µs of
        # CPU per message at 20,000 msg/s, 5.4 µs at 50,000, peak RSS 57 MB; as deploy/k8s/attack/attack-job.yaml.
        requests={"cpu": "1", "memory": "128Mi"},
        limits={"cpu": "2", "memory": "256Mi"},
        do_xcom_push=task_id == "attack",
        operator=AttackPod if task_id == "attack" else KubernetesPodOperator,
    )


def http_get_json(url: str):
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:  # noqa: S310 - operator-set URL
        return response.status, json.loads(response.read() or b"null")


def check_api(params, **_) -> None:
    """The scoring API answers GET /ready with 200 (it has a model and is not draining)."""
    url = params["api_url"].rstrip("/") + "/ready"
    try:
        status, body = http_get_json(url)
    except urllib.error.HTTPError as error:
        raise RuntimeError(f"the scoring API is not ready: GET {url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, OSError) as error:
        raise RuntimeError(f"the scoring API is not reachable: GET {url}: {error}") from error
    log.info("GET %s: HTTP %s %s", url, status, body)


def phase_table(report: dict) -> str:
    """The per-phase table, as `fraudops attack` prints it."""
    rows = [
        f"{'phase':>5} {'target/s':>9} {'duration':>8} {'achieved/s':>10} {'acked/s':>10} {'accuracy':>8} "
        f"{'sent':>10} {'acked':>10} {'errors':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}"
    ]
    for p in report["phases"]:
        target = "max" if p["target_rate"] is None else f"{p['target_rate']:.0f}"
        accuracy = "-" if p["accuracy_pct"] is None else f"{p['accuracy_pct']:.2f}%"
        lat = p["latency_ms"]
        rows.append(
            f"{p['phase']:>5} {target:>9} {p['planned_duration_s']:>7g}s {p['achieved_rate']:>10.1f} "
            f"{p['delivered_rate']:>10.1f} {accuracy:>8} {p['sent']:>10} {p['delivered']:>10} {p['errors']:>8} "
            f"{lat['p50']:>8.2f} {lat['p99']:>8.2f} {lat['max']:>8.2f}"
        )
    return "\n".join(rows)


def results(params, ti, **_) -> dict:
    """Reads the attack's per-phase results back (XCom of `attack`), logs the phase table and the closed
    loop's outcome, and fails when the attack was interrupted, gave up at `max_rate` without the alert, or
    more than `max_error_pct` of its messages were not acknowledged."""
    report = ti.xcom_pull(task_ids="attack")
    if not report or "phases" not in report:
        raise RuntimeError(f"the attack left no results (XCom of task attack: {report!r})")
    sent = sum(p["sent"] for p in report["phases"])
    delivered = sum(p["delivered"] for p in report["phases"])
    errors = sum(p["errors"] for p in report["phases"])
    log.info(
        "attack %s -> %s from %s, started %s, %.1f s\n%s",
        report["mode"], report["destination"], report["source"], report["started_at"], report["duration_s"],
        phase_table(report),
    )
    log.info("total: %d sent, %d acknowledged, %d errors", sent, delivered, errors)
    for p in report["phases"]:
        if p["accuracy_pct"] is not None and abs(p["accuracy_pct"] - 100) > 5:
            log.warning("phase %d held %.1f%% of its target rate", p["phase"], p["accuracy_pct"])
        if p["errors_by_reason"]:
            log.warning("phase %d errors by reason: %s", p["phase"], p["errors_by_reason"])
    alert = report.get("alert")
    if alert:
        outcome = {k: alert[k] for k in ("alert", "fired", "time_to_alert_s", "triggering_rate", "triggering_phase")}
        if alert["fired"]:
            log.info(
                "closed loop: %s fired %.1f s after the attack started, in phase %d (target %.0f msg/s)",
                alert["alert"], alert["time_to_alert_s"], alert["triggering_phase"], alert["triggering_rate"],
            )
        else:
            log.info("closed loop: %s did not fire (Alertmanager %s)", alert["alert"], alert["alertmanager"])
    if report["interrupted"]:
        raise RuntimeError("the attack was interrupted before its last phase ended")
    if gave_up(report):  # the attack task already failed on fraudops' exit 1; never call such a run a success
        raise RuntimeError(gave_up_message(report, params))
    error_pct = 100.0 * errors / sent if sent else 100.0
    if error_pct > float(params["max_error_pct"]):
        raise RuntimeError(
            f"{errors} of {sent} messages ({error_pct:.2f}%) were not acknowledged by the broker "
            f"(max_error_pct {params['max_error_pct']})"
        )
    summary = {
        "started_at": report["started_at"],
        "duration_s": report["duration_s"],
        "sent": sent,
        "delivered": delivered,
        "errors": errors,
        "phases": [
            {k: p[k] for k in ("phase", "target_rate", "planned_duration_s", "sent", "delivered", "errors",
                               "achieved_rate", "accuracy_pct")}
            for p in report["phases"]
        ],
    }
    if alert:
        summary["alert"] = outcome
    return summary


def parse_time(text: str) -> datetime:
    """An RFC 3339 time as Alertmanager and the attack write it (nanoseconds and a Z suffix allowed)."""
    text = text.strip().replace("Z", "+00:00")
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    return datetime.fromisoformat(text)


def firing(alertmanager_url: str, alert_name: str) -> list[dict]:
    """Alertmanager's unresolved alerts named `alert_name` (API v2: active, silenced or inhibited alike —
    Prometheus fires it either way)."""
    query = urllib.parse.urlencode({"filter": f'alertname="{alert_name}"'})
    _, alerts = http_get_json(f"{alertmanager_url.rstrip('/')}/api/v2/alerts?{query}")
    return [a for a in alerts or [] if a.get("labels", {}).get("alertname") == alert_name]


def wait_for_alert(params, ti, **_) -> dict:
    """Polls Alertmanager until `alert_name` fires or `alert_timeout_seconds` pass after the attack ended;
    returns (XCom) whether it fired, when (the alert's startsAt) and how long after the attack started.
    "Did not fire" is a result, not a failure; an Alertmanager that never answers is a failure."""
    name, url = params["alert_name"], params["alertmanager_url"]
    if not params["wait_for_alert"]:
        log.info("wait_for_alert is off: not asking Alertmanager about %s", name)
        return {"alert": name, "waited": False}
    summary = ti.xcom_pull(task_ids="results") or {}
    attack_start = parse_time(summary["started_at"]) if summary.get("started_at") else None
    timeout = float(params["alert_timeout_seconds"])
    deadline = time.monotonic() + timeout
    answered, last_error = False, None
    while True:
        try:
            alerts = firing(url, name)
            answered = True
        except (urllib.error.URLError, OSError, ValueError) as error:
            alerts, last_error = [], error
            log.warning("Alertmanager at %s: %s", url, error)
        if alerts:
            fired_at = min(parse_time(a["startsAt"]) for a in alerts)
            after = (fired_at - attack_start).total_seconds() if attack_start else None
            outcome = {
                "alert": name,
                "waited": True,
                "fired": True,
                "fired_at": fired_at.isoformat(),
                "seen_at": datetime.now(timezone.utc).isoformat(),
                "seconds_after_attack_start": after,
                "already_firing_before_attack": after is not None and after < 0,
            }
            when = f"{after:.0f} s after the attack started" if after is not None else "(attack start unknown)"
            log.info("%s fired at %s, %s (Alertmanager %s)", name, outcome["fired_at"], when, url)
            return outcome
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        time.sleep(min(ALERT_POLL_S, remaining))
    if not answered:
        raise RuntimeError(f"Alertmanager at {url} did not answer within {timeout:.0f} s: {last_error}")
    log.info("%s did not fire within %.0f s after the attack (Alertmanager %s)", name, timeout, url)
    return {"alert": name, "waited": True, "fired": False, "timeout_s": timeout}


with DAG(
    dag_id=DAG_ID,
    description="The Kafka attack: escalating transaction rate into transactions-input, results per phase, "
    "and whether the administrator alert fired",
    schedule=None,
    **dag_settings(retry_delay=RETRY_DELAY),
    tags=["fraudops", "kafka", "attack"],
    params={
        "phases": Param(
            "50:5m,200:5m,500:5m,1500:5m",
            type="string",
            pattern=r"^\s*[^:,\s]+:[^:,\s]+\s*(,\s*[^:,\s]+:[^:,\s]+\s*)*$",
            description="rate:duration list (msg/s : 500ms/30s/5m/1h); `max` as a rate sends as fast as it can",
        ),
        "bootstrap_servers": Param(
            "fraudops-kafka-kafka-bootstrap.fraudops.svc:9092", type="string", description="Kafka bootstrap servers"
        ),
        "topic": Param("transactions-input", type="string", description="topic the attack writes"),
        "require_topics": Param(
            ["fraud-predictions"],
            type="array",
            items={"type": "string"},
            description="topics that must exist before the attack (the stream worker's output)",
        ),
        "seed": Param(42, type="integer", minimum=0, description="simulator seed (same seed, same transactions)"),
        "api_url": Param("http://fraudops-api.fraudops.svc", type="string", description="the scoring API"),
        "max_error_pct": Param(1.0, type="number", minimum=0, description="results: most unacknowledged messages, %"),
        "escalate": Param(
            True,
            type="boolean",
            description="closed loop: after the listed phases, escalate until alert_name fires (off: the listed "
            "phases only)",
        ),
        "step": Param(
            2, type="number", exclusiveMinimum=1, description="closed loop: each further phase runs at step x the last"
        ),
        "max_rate": Param(
            192000,
            type="number",
            exclusiveMinimum=0,
            description="closed loop: never escalate beyond this rate, msg/s (default 1500 x 2^7); reaching it "
            "without the alert fails the attack",
        ),
        "alert_poll": Param(
            "5s",
            type="string",
            # A non-zero number and an optional unit, as fraudops parses durations.
            pattern=r"^\s*(?=[0-9.]*[1-9])[0-9]*\.?[0-9]+(ms|s|m|min|h)?\s*$",
            description="closed loop: how often the attack asks Alertmanager (500ms/5s/1m)",
        ),
        "wait_for_alert": Param(True, type="boolean", description="wait for alert_name after the attack"),
        "alert_name": Param(
            "AdminNotification_MaxScaleHighCPU",
            type="string",
            minLength=1,
            description="the administrator alert the closed loop and wait_for_alert look for",
        ),
        "alertmanager_url": Param(
            "http://kube-prometheus-stack-alertmanager.monitoring.svc:9093",
            type="string",
            description="Alertmanager base URL (its API v2 is polled by the attack and by wait_for_alert)",
        ),
        "alert_timeout_seconds": Param(
            600, type="integer", minimum=0, description="how long to wait for the alert after the attack"
        ),
    },
    doc_md=__doc__,
) as dag:
    api_ready = PythonOperator(
        task_id="check_api", python_callable=check_api, execution_timeout=timedelta(minutes=2)
    )
    if MODE == "kubernetes":
        topics_ready = attack_pod("check_topics", STEPS["check_topics"])
        attack = attack_pod("attack", STEPS["attack"])
    else:
        topics_ready = PythonOperator(
            task_id="check_topics",
            python_callable=run_fraudops,
            op_kwargs={"argv": STEPS["check_topics"]},
            execution_timeout=timedelta(minutes=2),
        )
        attack = PythonOperator(
            task_id="attack",
            python_callable=run_attack,
            op_kwargs={"argv": STEPS["attack"], "closed_loop": CLOSED_LOOP, "results": RESULTS},
        )
    read_back = PythonOperator(task_id="results", python_callable=results)
    alert = PythonOperator(task_id="wait_for_alert", python_callable=wait_for_alert)
    [api_ready, topics_ready] >> attack >> read_back >> alert
