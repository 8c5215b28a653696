#!/usr/bin/env python3
"""Assertions deploy/check.sh runs on the deployment files. One subcommand per check; exit 1 on failure.

Runs in the virtualenv deploy/check.sh creates (PyYAML, kubernetes-validate, python-hcl2).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
MONITORING = DEPLOY / "monitoring"

KUBERNETES_VERSION = "1.30.0"  # oldest Kubernetes the manifests target (preStop `sleep` needs 1.30)

# Custom resources: kubernetes-validate only knows the built-in kinds. These are checked against the small
# structural schemas below (the fields this project sets and the operators require), and the PrometheusRule's
# rules by promtool itself (check.sh).
CRD_SCHEMAS: dict[tuple[str, str], dict] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): {
        "required": ["selector", "endpoints"],
        "properties": {"endpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["port", "path", "interval"]}}},
    },
    ("monitoring.coreos.com/v1", "PodMonitor"): {
        "required": ["selector", "podMetricsEndpoints"],
        "properties": {"podMetricsEndpoints": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["port", "path", "interval"]}}},
    },
    ("monitoring.coreos.com/v1", "PrometheusRule"): {
        "required": ["groups"],
        "properties": {"groups": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["name", "rules"]}}},
    },
    ("kafka.strimzi.io/v1beta2", "Kafka"): {
        "required": ["kafka", "entityOperator"],
        "properties": {"kafka": {"type": "object", "required": ["listeners"], "properties": {
            "listeners": {"type": "array", "minItems": 1, "items": {
                "type": "object", "required": ["name", "port", "type", "tls"]}}}}},
    },
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): {
        "required": ["replicas", "roles", "storage"],
        "properties": {"replicas": {"type": "integer", "minimum": 1},
                       "roles": {"type": "array", "items": {"enum": ["controller", "broker"]}}},
    },
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): {
        "required": ["partitions", "replicas"],
        "properties": {"partitions": {"type": "integer", "minimum": 1},
                       "replicas": {"type": "integer", "minimum": 1}},
    },
    ("argoproj.io/v1alpha1", "Application"): {
        "required": ["project", "destination"],
        "properties": {"destination": {"type": "object", "required": ["server", "namespace"]}},
    },
    ("argoproj.io/v1alpha1", "AppProject"): {
        "required": ["sourceRepos", "destinations"],
    },
}

# HPA of SPEC §7, exactly.
HPA_SPEC = {
    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fraudops-api"},
    "minReplicas": 4,
    "maxReplicas": 6,
    "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}},
        {"type": "Resource", "resource": {"name": "memory", "target": {"type": "Utilization", "averageUtilization": 80}}},
    ],
    "behavior": {
        "scaleUp": {"stabilizationWindowSeconds": 60, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]},
        "scaleDown": {"stabilizationWindowSeconds": 300, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 300}]},
    },
}

ALERT_NAMES = ["AdminNotification_MaxScaleHighCPU", "HighCPUUsage", "HighErrorRate", "HighResponseTime",
               "HighKafkaQueueLength", "ModelScaledToMax"]
# Issue 21: model quality.
ALERT_NAMES += ["ScoreDistributionDrift", "ModelQualityDegraded"]
# Retraining keeps happening.
ALERT_NAMES += ["ModelRetrainingStale"]
# The transaction lake keeps up (`fraudops archive`).
ALERT_NAMES += ["LakeArchiveStalled", "LakeArchiveDown"]

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"  - {msg}", file=sys.stderr)


def docs(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(objs: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objs if o.get("kind") == kind and o["metadata"]["name"] == name), None)


# --- manifests -----------------------------------------------------------------------------------------------
def cmd_validate(paths: list[Path]) -> None:
    """Every rendered object against the Kubernetes OpenAPI schemas (strict), CRDs against CRD_SCHEMAS."""
    import jsonschema
    import kubernetes_validate

    for path in paths:
        for obj in docs(path):
            what = f"{path.name}: {obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
            key = (obj.get("apiVersion"), obj.get("kind"))
            if key in CRD_SCHEMAS:
                schema = {"type": "object", **CRD_SCHEMAS[key]}
                try:
                    jsonschema.validate(obj.get("spec", {}), schema)
                except jsonschema.ValidationError as e:
                    fail(f"{what}: {e.message}")
                continue
            try:
                kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.SchemaNotFoundError:
                fail(f"{what}: unknown kind {key} (not Kubernetes {KUBERNETES_VERSION}, not a known CRD)")
            except kubernetes_validate.ValidationError as e:
                fail(f"{what}: {e.message} at {'/'.join(map(str, e.path))}")


def cmd_hpa(paths: list[Path]) -> None:
    for path in paths:
        hpa = find(docs(path), "HorizontalPodAutoscaler", "fraudops-api")
        if hpa is None:
            fail(f"{path.name}: no HorizontalPodAutoscaler fraudops-api")
            continue
        if hpa["apiVersion"] != "autoscaling/v2":
            fail(f"{path.name}: HPA apiVersion {hpa['apiVersion']} != autoscaling/v2")
        if hpa["spec"] != HPA_SPEC:
            fail(f"{path.name}: HPA spec differs from SPEC §7:\n{json.dumps(hpa['spec'], indent=1)}")


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def cmd_invariants(paths: list[Path]) -> None:
    """The properties the issue asks of the workloads, on the rendered output of every overlay."""
    for path in paths:
        objs = docs(path)
        config = find(objs, "ConfigMap", "fraudops-config")
        if config is None:
            fail(f"{path.name}: no ConfigMap fraudops-config")
            continue
        data = config["data"]
        for key, want in {"MODEL_PATH": "", "MLFLOW_MODEL_URI": "models:/fraud-detector@champion",
                          "KAFKA_TOPIC": "transactions-input"}.items():
            if data.get(key) != want:
                fail(f"{path.name}: fraudops-config {key}={data.get(key)!r}, want {want!r}")
        for required in ("RUST_LOG", "MLFLOW_TRACKING_URI", "KAFKA_BOOTSTRAP_SERVERS", "MAX_IN_FLIGHT",
                         "SHUTDOWN_GRACE_SECONDS", "FEATURE_STORE_URL", "LABELS_TOPIC"):
            if required not in data:
                fail(f"{path.name}: fraudops-config lacks {required}")
        grace = int(data.get("SHUTDOWN_GRACE_SECONDS", "20"))

        for name, args, port in (("fraudops-api", ["serve"], ("http", 8000)),
                                 ("fraudops-stream", ["stream", "--api-url", "http://fraudops-api.fraudops.svc"],
                                  ("metrics", 9100)),
                                 ("fraudops-labels", ["labels"], ("metrics", 9102)),
                                 ("fraudops-archive", ["archive"], ("metrics", 9103))):
            dep = find(objs, "Deployment", name)
            if dep is None:
                fail(f"{path.name}: no Deployment {name}")
                continue
            pod = dep["spec"]["template"]["spec"]
            c = pod["containers"][0]
            where = f"{path.name}: {name}"
            if c["name"] != name:
                fail(f"{where}: container is named {c['name']}")
            if c.get("args") != args:
                fail(f"{where}: args {c.get('args')} != {args}")
            if not any(p["name"] == port[0] and p["containerPort"] == port[1] for p in c.get("ports", [])):
                fail(f"{where}: no port {port[0]}={port[1]}")
            psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
            if not (psc.get("runAsNonRoot") and psc.get("runAsUser") == 65532):
                fail(f"{where}: pod must run as non-root uid 65532")
            if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{where}: seccomp RuntimeDefault missing")
            if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False:
                fail(f"{where}: readOnlyRootFilesystem / allowPrivilegeEscalation=false missing")
            if csc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{where}: capabilities must drop ALL")
            res = c.get("resources", {})
            if not (res.get("requests", {}).get("cpu") and res.get("limits", {}).get("cpu")
                    and res.get("requests", {}).get("memory") and res.get("limits", {}).get("memory")):
                fail(f"{where}: cpu/memory requests and limits required")
            if _env(c).get("REPLICA_ID", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "metadata.name":
                fail(f"{where}: REPLICA_ID must come from metadata.name")
            if "CPU_LIMIT_CORES" in _env(c):
                fail(f"{where}: CPU_LIMIT_CORES must not be set (the process reads the cgroup)")

        api = find(objs, "Deployment", "fraudops-api")
        if api:
            pod = api["spec"]["template"]["spec"]
            c = pod["containers"][0]
            if api["spec"].get("replicas") != 4:
                fail(f"{path.name}: fraudops-api replicas must start at 4")
            if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health":
                fail(f"{path.name}: fraudops-api liveness must probe /health")
            if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/ready":
                fail(f"{path.name}: fraudops-api readiness must probe /ready")
            pre_stop = c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds")
            tgp = pod.get("terminationGracePeriodSeconds", 30)
            if pre_stop is None:
                fail(f"{path.name}: fraudops-api needs a preStop sleep")
            elif tgp < pre_stop + grace:
                fail(f"{path.name}: terminationGracePeriodSeconds {tgp} < preStop {pre_stop} + drain {grace}")
            limits = c["resources"]["limits"]
            requests = c["resources"]["requests"]
            if path.name.startswith("production") and (limits, requests) != (
                    {"cpu": "500m", "memory": "256Mi"}, {"cpu": "250m", "memory": "64Mi"}):
                fail(f"{path.name}: fraudops-api resources {requests} / {limits} differ from the benchmark sizing")
            if not pod.get("topologySpreadConstraints"):
                fail(f"{path.name}: fraudops-api needs topology spread constraints")
            if not pod.get("affinity", {}).get("podAntiAffinity"):
                fail(f"{path.name}: fraudops-api needs pod anti-affinity")

        svc = find(objs, "Service", "fraudops-api")
        if not svc or not any(p["name"] == "http" and p["port"] == 80 and p["targetPort"] == "http"
                              for p in svc["spec"]["ports"]):
            fail(f"{path.name}: Service fraudops-api must map port 80 (http) to the http port")
        for kind, name in (("ServiceMonitor", "fraudops-api"), ("PodMonitor", "fraudops-stream"),
                           ("PodMonitor", "fraudops-labels"), ("PodMonitor", "fraudops-redis"),
                           ("PodMonitor", "fraudops-archive"),
                           ("PrometheusRule", "fraudops-rules")):
            obj = find(objs, kind, name)
            if obj is None or obj["metadata"].get("labels", {}).get("release") != "kube-prometheus-stack":
                fail(f"{path.name}: {kind} {name} missing or without label release=kube-prometheus-stack")
        sm = find(objs, "ServiceMonitor", "fraudops-api")
        ep = sm["spec"]["endpoints"][0] if sm else {}
        if (ep.get("port"), ep.get("path"), ep.get("interval")) != ("http", "/metrics", "15s"):
            fail(f"{path.name}: ServiceMonitor endpoint must be port http, /metrics, 15s")
        topics = {o["metadata"]["name"]: o["spec"] for o in objs if o.get("kind") == "KafkaTopic"}
        if set(topics) != {"transactions-input", "fraud-predictions", "transactions-dead-letter", "fraud-labels"}:
            fail(f"{path.name}: Kafka topics {sorted(topics)}")
        else:
            for name in ("transactions-input", "fraud-labels"):
                if topics[name]["partitions"] != 12:
                    fail(f"{path.name}: {name} must have 12 partitions")
        rule = find(objs, "PrometheusRule", "fraudops-rules")
        if rule:
            alerts = [r["alert"] for g in rule["spec"]["groups"] for r in g["rules"] if "alert" in r]
            if sorted(alerts) != sorted(ALERT_NAMES):
                fail(f"{path.name}: alerts {alerts} != {ALERT_NAMES}")
        if find(objs, "PodDisruptionBudget", "fraudops-api") is None:
            fail(f"{path.name}: no PodDisruptionBudget fraudops-api")
        dash = find(objs, "ConfigMap", "fraudops-dashboard")
        if not dash or dash["metadata"].get("labels", {}).get("grafana_dashboard") != "1":
            fail(f"{path.name}: dashboard ConfigMap with label grafana_dashboard=\"1\" missing")
        _check_retrain_trigger(objs, path.name)
        _check_archive(objs, path.name)
        _check_network_policies(objs, path.name)


def _check_retrain_trigger(objs: list[dict], where: str) -> None:
    """The Alertmanager -> Airflow bridge (docs/retraining.md): the Service Alertmanager's receiver posts to
    exists on that port, the pod is locked down like the others, and its credentials are files of a Secret."""
    am = yaml.safe_load((MONITORING / "alertmanager/alertmanager.yaml").read_text(encoding="utf-8"))
    hook = next(r for r in am["receivers"] if r["name"] == "fraudops-retrain")["webhook_configs"][0]["url"]
    m = re.match(r"^http://([a-z0-9-]+)\.([a-z0-9-]+)\.svc:(\d+)/", hook)
    svc = find(objs, "Service", m.group(1)) if m else None
    if not svc or m.group(2) != "fraudops" or not any(p["port"] == int(m.group(3)) for p in svc["spec"]["ports"]):
        fail(f"{where}: no Service in namespace fraudops for Alertmanager's retrain webhook {hook}")
    dep = find(objs, "Deployment", "fraudops-retrain-trigger")
    if dep is None:
        fail(f"{where}: no Deployment fraudops-retrain-trigger")
        return
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    psc, csc = pod.get("securityContext", {}), c.get("securityContext", {})
    if c.get("args") != ["retrain-trigger"]:
        fail(f"{where}: fraudops-retrain-trigger args {c.get('args')}")
    if not (psc.get("runAsNonRoot") and csc.get("readOnlyRootFilesystem") and csc.get("allowPrivilegeEscalation") is False
            and csc.get("capabilities", {}).get("drop") == ["ALL"]):
        fail(f"{where}: fraudops-retrain-trigger must run non-root, read-only, no privilege escalation, no capabilities")
    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/health":
        fail(f"{where}: fraudops-retrain-trigger liveness must probe /health")
    env = _env(c)
    mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
    secrets = {v["name"] for v in pod.get("volumes", []) if v.get("secret", {}).get("secretName") == "fraudops-retrain-trigger"}
    for var in ("AIRFLOW_PASSWORD_FILE", "RETRAIN_TRIGGER_TOKEN_FILE"):
        value = env.get(var, {}).get("value", "")
        if not any(value.startswith(mounts.get(name, "//") + "/") for name in secrets):
            fail(f"{where}: fraudops-retrain-trigger {var}={value!r} is not a file of the Secret fraudops-retrain-trigger")
    if any("PASSWORD" in name and not name.endswith("_FILE") for name in env):
        fail(f"{where}: fraudops-retrain-trigger has a password in its environment")



ARCHIVE_TOPICS = ("KAFKA_TOPIC", "KAFKA_OUTPUT_TOPIC", "LABELS_TOPIC")
ARCHIVE_FLUSH_BYTES_DEFAULT = 64 << 20  # per partition
ARCHIVE_BUFFER_BYTES_DEFAULT = 256 << 20  # all partitions together


def _check_archive(objs: list[dict], where: str) -> None:
    """The transaction lake's writer (archive-deployment.yaml): off the feature store, its own consumer group,
    its bucket key from a Secret (or, locally, a directory on a volume), buffers that fit its memory limit,
    and a NetworkPolicy each way."""
    dep = find(objs, "Deployment", "fraudops-archive")
    if dep is None:
        return  # cmd_invariants reports it
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = _env(c)
    name = f"{where}: fraudops-archive"
    if any("configMapRef" in e for e in c.get("envFrom", [])):
        fail(f"{name} must not load a whole ConfigMap (fraudops-config would admit it to Redis); name its keys")
    group = env.get("ARCHIVE_GROUP", {}).get("value", "fraudops-archive")
    if group in ("", "fraudops-stream", "fraudops-labels") or "KAFKA_GROUP_ID" in env:
        fail(f"{name} must consume in its own group (ARCHIVE_GROUP {group!r})")
    metrics = next((p["containerPort"] for p in c.get("ports", []) if p["name"] == "metrics"), None)
    if env.get("METRICS_PORT", {}).get("value") != str(metrics):
        fail(f"{name}: METRICS_PORT must be its metrics port {metrics}")
    lake = env.get("LAKE_URL", {}).get("value", "")
    if lake.startswith("s3://"):
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            ref = env.get(key, {}).get("valueFrom", {}).get("secretKeyRef", {})
            if ref.get("name") != "fraudops-lake" or ref.get("optional"):
                fail(f"{name}: {key} must come from the Secret fraudops-lake (required), never a literal value")
    else:
        mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
        volume = next((v for v in pod.get("volumes", []) if v["name"] == mounts.get(lake.rstrip("/"))), None)
        if volume is None or "persistentVolumeClaim" not in volume:
            fail(f"{name}: LAKE_URL {lake!r} is neither s3:// nor a volume claim's mount (the ledger would not "
                 "outlive the pod)")
    # One member may hold every partition of its three topics (the others gone or not yet joined).
    config = (find(objs, "ConfigMap", "fraudops-config") or {}).get("data", {})
    topics = {o["metadata"]["name"]: o["spec"] for o in objs if o.get("kind") == "KafkaTopic"}

    def value(var: str) -> str | None:
        """The variable's value, literal or from fraudops-config."""
        e = env.get(var, {})
        ref = e.get("valueFrom", {}).get("configMapKeyRef", {})
        return e.get("value") or (config.get(ref["key"]) if ref.get("name") == "fraudops-config" else None)

    names = [value(k) for k in ARCHIVE_TOPICS]
    if not all(n in topics for n in names):
        fail(f"{name}: its topics {names} are not all KafkaTopics")
        return
    partitions = sum(topics[n]["partitions"] for n in names)
    if not 1 <= dep["spec"].get("replicas", 1) <= partitions:
        fail(f"{name}: replicas must be within 1..{partitions} (the partitions of {names})")
    flush = int(env.get("LAKE_FLUSH_BYTES", {}).get("value", ARCHIVE_FLUSH_BYTES_DEFAULT))
    total = int(env.get("LAKE_BUFFER_BYTES", {}).get("value", ARCHIVE_BUFFER_BYTES_DEFAULT))
    limit = c.get("resources", {}).get("limits", {}).get("memory")
    # The buffers at most 60% of the limit: the rest is Arrow's overhead, encoding, compaction and librdkafka
    # (the sizing in archive-deployment.yaml).
    if limit is None or min(flush * partitions, total) > 0.6 * parse_quantity(limit):
        fail(f"{name}: its buffers (the smaller of {partitions} partitions × LAKE_FLUSH_BYTES {flush} and "
             f"LAKE_BUFFER_BYTES {total}) exceed 60% of the memory limit {limit}")
    policies = [o for o in objs if o.get("kind") == "NetworkPolicy"
                and selects(o["spec"]["podSelector"], dep["spec"]["template"]["metadata"]["labels"])]
    ingress = _policy_for(objs, dep["spec"]["template"]["metadata"]["labels"])
    if ingress is None or not _admitted(ingress, "metrics", None):
        fail(f"{name}: no NetworkPolicy admits Prometheus (namespace monitoring) to its metrics port")
    elif any(_admitted(ingress, "metrics", w["spec"]["template"]["metadata"]["labels"])
             for w in objs if w.get("kind") in ("Deployment", "StatefulSet")):
        fail(f"{name}: a fraudops workload may connect to the archive")
    egress = [r for p in policies if "Egress" in p["spec"].get("policyTypes", []) for r in p["spec"].get("egress", [])]
    if not egress:
        fail(f"{name}: no NetworkPolicy restricts its egress (it holds a key that may delete the lake)")
    elif any(not r.get("ports") or any(p.get("port") in (6379, "redis") for p in r["ports"]) for r in egress):
        fail(f"{name}: an egress rule allows every port or Redis's")


# --- network policies (networkpolicies.yaml) -------------------------------------------------------------
def selects(selector: dict, labels: dict) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) selects these labels."""
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for e in selector.get("matchExpressions", []):
        have, op, values = e["key"] in labels, e["operator"], e.get("values", [])
        if not {"In": have and labels[e["key"]] in values, "NotIn": not have or labels[e["key"]] not in values,
                "Exists": have, "DoesNotExist": not have}[op]:
            return False
    return True


def _admitted(policy: dict, port: str, pod_labels: dict | None) -> bool:
    """Whether the policy lets a peer reach the named port: a pod of this namespace with pod_labels, or (with
    pod_labels None) a pod of the monitoring namespace. A rule without `from` or `ports` admits everyone."""
    for rule in policy["spec"].get("ingress", []):
        if rule.get("ports") and not any(p.get("port") == port for p in rule["ports"]):
            continue
        if not rule.get("from"):
            return True
        for peer in rule["from"]:
            ns, pods = peer.get("namespaceSelector"), peer.get("podSelector")
            if pod_labels is None:
                if ns is not None and selects(ns, {"kubernetes.io/metadata.name": "monitoring"}) \
                        and (pods is None or selects(pods, {})):
                    return True
            elif ns is None and pods is not None and selects(pods, pod_labels):
                return True
    return False


def _policy_for(objs: list[dict], labels: dict) -> dict | None:
    """The Ingress NetworkPolicy that selects pods with these labels."""
    return next((o for o in objs if o.get("kind") == "NetworkPolicy" and "Ingress" in o["spec"].get("policyTypes", [])
                 and selects(o["spec"]["podSelector"], labels)), None)


def _check_network_policies(objs: list[dict], where: str) -> None:
    """Redis (no password) admits exactly the workloads that load FEATURE_STORE_URL, and Prometheus on the
    exporter's port; the retraining bridge admits only the monitoring namespace."""
    workloads = [o for o in objs if o.get("kind") in ("Deployment", "StatefulSet")]
    redis = find(objs, "StatefulSet", "fraudops-redis")
    policy = _policy_for(objs, redis["spec"]["template"]["metadata"]["labels"]) if redis else None
    if policy is None:
        fail(f"{where}: no NetworkPolicy restricts ingress to fraudops-redis")
    else:
        ports = {p["name"] for c in redis["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for rule in policy["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                if p.get("port") not in ports:
                    fail(f"{where}: NetworkPolicy {policy['metadata']['name']} names port {p.get('port')!r}, "
                         f"not one of the pod's {sorted(ports)}")
        for w in workloads:
            name = w["metadata"]["name"]
            uses_store = any(e.get("configMapRef", {}).get("name") == "fraudops-config"
                             for c in w["spec"]["template"]["spec"]["containers"] for e in c.get("envFrom", []))
            if _admitted(policy, "redis", w["spec"]["template"]["metadata"]["labels"]) != uses_store:
                fail(f"{where}: {name} {'loads' if uses_store else 'does not load'} FEATURE_STORE_URL but is "
                     f"{'not ' if uses_store else ''}admitted to Redis by NetworkPolicy {policy['metadata']['name']}")
        if not _admitted(policy, "metrics", None):
            fail(f"{where}: Prometheus (namespace monitoring) cannot scrape fraudops-redis's exporter")
        if _admitted(policy, "redis", None):
            fail(f"{where}: the monitoring namespace must not reach Redis itself")
    bridge = find(objs, "Deployment", "fraudops-retrain-trigger")
    policy = _policy_for(objs, bridge["spec"]["template"]["metadata"]["labels"]) if bridge else None
    if policy is None:
        fail(f"{where}: no NetworkPolicy restricts ingress to fraudops-retrain-trigger")
    else:
        if not _admitted(policy, "http", None):
            fail(f"{where}: Alertmanager and Prometheus (namespace monitoring) cannot reach the retraining bridge")
        for w in workloads:
            if _admitted(policy, "http", w["spec"]["template"]["metadata"]["labels"]):
                fail(f"{where}: {w['metadata']['name']} may post to the retraining bridge")


# --- the online feature store (SPEC §5) ---------------------------------------------------------------
REDIS_IMAGE = re.compile(r"redis:\d+\.\d+(\.\d+)?-alpine")  # pinned by version tag, never `latest`
DAY_MS = 86_400_000


def parse_quantity(q: str | int) -> float:
    """Kubernetes quantities (2Gi, 512Mi, 1G, 500m) and Redis sizes (1gb, 512mb, 100000) in plain units."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([a-zA-Z]*)", str(q).strip())
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    units = {"": 1, "m": 1e-3, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
             "kb": 2**10, "mb": 2**20, "gb": 2**30}
    unit = m.group(2) if m.group(2) in units else m.group(2).lower()
    if unit not in units:
        raise ValueError(f"unknown unit in {q!r}")
    return float(m.group(1)) * units[unit]


def redis_conf(text: str) -> dict[str, str]:
    """Directive -> value of a redis.conf (last one wins, as in Redis; quotes dropped)."""
    conf = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition(" ")
            conf[key.lower()] = value.strip().strip('"')
    return conf


def redis_objects(objs: list[dict], where: str) -> tuple[dict, dict, str, dict] | None:
    """The StatefulSet, its redis container, the redis.conf it runs and its Service; None after a failure."""
    sts = find(objs, "StatefulSet", "fraudops-redis")
    if sts is None:
        fail(f"{where}: no StatefulSet fraudops-redis")
        return None
    pod = sts["spec"]["template"]["spec"]
    c = next((c for c in pod["containers"] if c["name"] == "redis"), None)
    if c is None:
        fail(f"{where}: fraudops-redis has no container named redis")
        return None
    args = c.get("args", [])
    conf_path = next((a for a in args if a.endswith(".conf")), None)
    mount = next((m for m in c.get("volumeMounts", []) if conf_path and conf_path.startswith(m["mountPath"] + "/")),
                 None)
    volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), None)
    cm = find(objs, "ConfigMap", volume["configMap"]["name"]) if volume and "configMap" in volume else None
    key = conf_path.rsplit("/", 1)[-1] if conf_path else None
    if cm is None or key not in cm.get("data", {}):
        fail(f"{where}: redis runs {args}, which is not a redis.conf from a ConfigMap")
        return None
    svc = find(objs, "Service", sts["spec"]["serviceName"])
    if svc is None:
        fail(f"{where}: fraudops-redis's serviceName {sts['spec']['serviceName']} has no Service")
        return None
    return sts, c, cm["data"][key], svc


def cmd_feature_store(paths: list[Path]) -> None:
    """Redis for the feature store (durable, bounded, never evicting), its address in the ConfigMap, the
    fraud-labels topic and the label consumer, on the rendered output of every overlay."""
    for path in paths:
        objs = docs(path)
        where = f"{path.name}: fraudops-redis"
        found = redis_objects(objs, where)
        if found is None:
            continue
        sts, redis, conf_text, svc = found
        conf = redis_conf(conf_text)
        pod = sts["spec"]["template"]["spec"]
        if sts["spec"].get("replicas") != 1:
            fail(f"{where}: one replica (a second would be a second, diverging store)")
        if not REDIS_IMAGE.fullmatch(redis["image"]):
            fail(f"{where}: image {redis['image']} is not a pinned redis:X.Y-alpine tag")
        # Durable: every write appended, fsync once a second, loaded on start from the volume.
        for key, want in {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
                          "aof-load-truncated": "yes"}.items():
            if conf.get(key) != want:
                fail(f"{where}: redis.conf {key} {conf.get(key)!r}, want {want!r}")
        claims = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates", [])}
        data = next((m for m in redis.get("volumeMounts", []) if m["mountPath"] == conf.get("dir")), None)
        if data is None or data["name"] not in claims:
            fail(f"{where}: redis.conf dir {conf.get('dir')!r} is not a volumeClaimTemplate's mount (the AOF "
                 "would not survive the pod)")
        elif not claims[data["name"]]["spec"].get("resources", {}).get("requests", {}).get("storage"):
            fail(f"{where}: the data volume claim requests no storage")
        # Bounded: maxmemory well inside the container limit (an AOF rewrite forks: copy-on-write).
        limit = redis.get("resources", {}).get("limits", {}).get("memory")
        if "maxmemory" not in conf or limit is None:
            fail(f"{where}: redis.conf maxmemory and a container memory limit are both required")
        elif not 0 < parse_quantity(conf["maxmemory"]) <= 0.6 * parse_quantity(limit):
            fail(f"{where}: maxmemory {conf['maxmemory']} must be set and at most 60% of the limit {limit}")
        # Probes: redis-cli ping; start-up gives the AOF time to load.
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            cmd = " ".join(redis.get(probe, {}).get("exec", {}).get("command", []))
            if "redis-cli" not in cmd or "ping" not in cmd:
                fail(f"{where}: {probe} must run redis-cli ping (got {cmd!r})")
        # The same pod invariants as the fraudops workloads (the namespace enforces Pod Security restricted).
        psc = pod.get("securityContext", {})
        if not (psc.get("runAsNonRoot") and psc.get("runAsUser")) or psc.get("seccompProfile", {}).get(
                "type") != "RuntimeDefault":
            fail(f"{where}: pod must run as a numeric non-root user with seccomp RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            fail(f"{where}: no service account token (it does not talk to the Kubernetes API)")
        for c in pod["containers"]:
            csc = c.get("securityContext", {})
            if not csc.get("readOnlyRootFilesystem") or csc.get("allowPrivilegeEscalation") is not False \
                    or csc.get("capabilities", {}).get("drop") != ["ALL"]:
                fail(f"{where}: container {c['name']} needs a read-only root, no privilege escalation, drop ALL")
            res = c.get("resources", {})
            if not all(res.get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")):
                fail(f"{where}: container {c['name']} needs cpu/memory requests and limits")
            if ":" not in c["image"] or c["image"].endswith(":latest"):
                fail(f"{where}: container {c['name']} image {c['image']} is not pinned")
        # The Service and the address every scorer uses.
        labels = sts["spec"]["template"]["metadata"]["labels"]
        selector = svc["spec"].get("selector")
        if not selector or not selects({"matchLabels": selector}, labels):
            fail(f"{path.name}: Service {svc['metadata']['name']} does not select the Redis pod")
        port = next((p for p in svc["spec"]["ports"] if p.get("targetPort") in ("redis", 6379)), None)
        if port is None or int(conf.get("port", 6379)) != 6379:
            fail(f"{path.name}: Service {svc['metadata']['name']} must forward to Redis's port 6379")
        config = find(objs, "ConfigMap", "fraudops-config")
        url = (config or {}).get("data", {}).get("FEATURE_STORE_URL", "")
        ns = svc["metadata"].get("namespace", "fraudops")
        m = re.fullmatch(r"redis://([^:/]+):(\d+)(/\d+)?", url)
        if not m or m.group(1) not in (f"{svc['metadata']['name']}.{ns}.svc",
                                       f"{svc['metadata']['name']}.{ns}.svc.cluster.local") \
                or port is None or int(m.group(2)) != port["port"]:
            fail(f"{path.name}: FEATURE_STORE_URL {url!r} is not redis://{svc['metadata']['name']}.{ns}.svc:"
                 f"{port and port['port']}")
        timeout = (config or {}).get("data", {}).get("FEATURE_STORE_TIMEOUT")
        if timeout is not None and not re.fullmatch(r"\d+(ms|s)", timeout):
            fail(f"{path.name}: FEATURE_STORE_TIMEOUT {timeout!r} is not a duration like 25ms")

        # Labels: their own topic, 12 partitions like the input, a week of retention; one consumer group.
        topics = {o["metadata"]["name"]: o for o in objs if o.get("kind") == "KafkaTopic"}
        labels_topic = (config or {}).get("data", {}).get("LABELS_TOPIC")
        topic = topics.get(labels_topic)
        if topic is None:
            fail(f"{path.name}: LABELS_TOPIC {labels_topic!r} is not a KafkaTopic")
        else:
            spec = topic["spec"]
            if spec["partitions"] != topics.get("transactions-input", {}).get("spec", {}).get("partitions"):
                fail(f"{path.name}: {labels_topic} must have the partitions of transactions-input")
            if int(spec.get("config", {}).get("retention.ms", 0)) < 7 * DAY_MS:
                fail(f"{path.name}: {labels_topic} must keep at least 7 days (a stopped consumer catches up)")
        kafka = next((o for o in objs if o.get("kind") == "Kafka"), None)
        regex = (kafka or {}).get("spec", {}).get("kafkaExporter", {}).get("topicRegex")
        if regex is not None:
            for name in topics:
                if not re.fullmatch(regex, name):
                    fail(f"{path.name}: the Kafka Exporter's topicRegex misses {name}")
        dep = find(objs, "Deployment", "fraudops-labels")
        if dep is None:
            continue  # cmd_invariants reports it
        c = dep["spec"]["template"]["spec"]["containers"][0]
        env = _env(c)
        group = env.get("LABELS_GROUP", {}).get("value", "fraudops-labels")
        if group in ("", "fraudops-stream") or "KAFKA_GROUP_ID" in env:
            fail(f"{path.name}: fraudops-labels must consume in its own group (LABELS_GROUP {group!r})")
        metrics = next((p["containerPort"] for p in c.get("ports", []) if p["name"] == "metrics"), None)
        if env.get("METRICS_PORT", {}).get("value") != str(metrics):
            fail(f"{path.name}: fraudops-labels METRICS_PORT must be its metrics port {metrics}")
        if topic is not None and not 1 <= dep["spec"].get("replicas", 1) <= topic["spec"]["partitions"]:
            fail(f"{path.name}: fraudops-labels replicas must be within 1..{topic['spec']['partitions']}")
        print(f"{path.name}: redis {redis['image']}, maxmemory {conf['maxmemory']} of {limit}, "
              f"store {url}, labels on {labels_topic} ({group})")


def cmd_redis_live(binary: str, rendered: Path) -> None:
    """The deployed redis.conf in a real redis-server: it loads, AOF is on, a script's writes survive a
    SIGKILL and a restart, and at maxmemory a write is refused (noeviction) while reads still answer.
    Only `dir` is swapped for a temporary directory (there is no /data here)."""
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    found = redis_objects(docs(rendered), f"{rendered.name}: fraudops-redis")
    if found is None:
        return
    conf_text = found[2]
    work = Path(tempfile.mkdtemp(prefix="fraudops-redis-"))
    (work / "data").mkdir()
    conf_file = work / "redis.conf"
    conf_file.write_text(re.sub(r"(?m)^dir .*$", f"dir {work / 'data'}", conf_text), encoding="utf-8")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cli_bin = str(Path(binary).with_name("redis-cli"))

    def cli(*args: str) -> str:
        out = subprocess.run([cli_bin, "-h", "127.0.0.1", "-p", str(port), *args], capture_output=True,
                             text=True, timeout=10)
        return (out.stdout + out.stderr).strip()

    def start() -> subprocess.Popen:
        proc = subprocess.Popen([binary, str(conf_file), "--port", str(port), "--bind", "127.0.0.1"],
                                stdout=(work / "redis.log").open("a"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        for _ in range(100):
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited: {(work / 'redis.log').read_text()[-2000:]}")
            if cli("ping") == "PONG":
                return proc
            time.sleep(0.1)
        raise RuntimeError("redis-server did not answer PING within 10 s")

    proc = None
    try:
        proc = start()
        for key, want in {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}.items():
            got = cli("config", "get", key).splitlines()
            if got[-1:] != [want]:
                fail(f"redis-server runs {key}={got[-1:]}, want {want}")
        if "aof_enabled:1" not in cli("info", "persistence"):
            fail("redis-server: AOF is not enabled")
        # An update as the scorers make them: one Lua script, several keys, each with a 37-day TTL.
        script = ("redis.call('HINCRBY', KEYS[1], 'n', 1) redis.call('EXPIRE', KEYS[1], ARGV[1]) "
                  "redis.call('HINCRBY', KEYS[2], 'n', 1) redis.call('EXPIRE', KEYS[2], ARGV[1]) return 1")
        cli("eval", script, "2", "check:customer", "check:terminal", str(37 * 86400))
        os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a shutdown: no final fsync
        proc.wait(timeout=10)
        proc = start()
        if cli("hget", "check:customer", "n") != "1" or cli("hget", "check:terminal", "n") != "1":
            fail("redis-server: a script's writes did not survive a crash and restart (AOF)")
        ttl = cli("ttl", "check:terminal")
        if not ttl.isdigit() or int(ttl) <= 0:
            fail(f"redis-server: the key's TTL was lost over the restart (ttl {ttl})")
        # noeviction at the ceiling: writes refused, nothing evicted, reads answer.
        cli("config", "set", "maxmemory", "1")
        refused = cli("eval", script, "2", "check:customer", "check:terminal", "60")
        if "OOM" not in refused:
            fail(f"redis-server: a write at maxmemory was not refused: {refused!r}")
        if cli("hget", "check:customer", "n") != "1":
            fail("redis-server: at maxmemory a key was evicted or unreadable")
        if not failures:
            print(f"redis.conf loads in {cli('info', 'server').split('redis_version:')[1].split()[0]}; "
                  f"writes survive SIGKILL; at maxmemory: {refused}")
    except RuntimeError as e:
        fail(str(e))
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def cmd_extract_rules(path: Path, out: Path) -> None:
    """Write the PrometheusRule's spec as a plain rule file, so promtool checks what is deployed."""
    rule = find(docs(path), "PrometheusRule", "fraudops-rules")
    if rule is None:
        fail(f"{path.name}: no PrometheusRule fraudops-rules")
        return
    out.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False), encoding="utf-8")


# --- metrics: PromQL names against the contract ---------------------------------------------------------------
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
                   "offset", "inf", "nan", "atan2"}
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def read_list(path: Path) -> set[str]:
    return {line.split("#")[0].strip() for line in path.read_text(encoding="utf-8").splitlines()} - {""}


def project_metrics() -> set[str]:
    """What the fraudops processes export: the contract, and the archive's names (kept apart because the API's
    contract test reads metrics-contract.txt)."""
    return read_list(MONITORING / "metrics-contract.txt") | read_list(MONITORING / "metrics-lake.txt")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (a small lexer: enough for our expressions)."""
    s = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)  # strings
    s = re.sub(r"\{[^}]*\}", " ", s)  # label matchers
    s = re.sub(r"\[[^\]]*\]", " ", s)  # ranges, subqueries
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)  # label lists
    names = set()
    for m in re.finditer(r"(?<![\w:.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(\s*\()?", s):
        word, call = m.group(1), m.group(2)
        if call or word.lower() in PROMQL_KEYWORDS:
            continue
        names.add(word)
    return names


def allowed(name: str, allow: set[str]) -> bool:
    if name in allow:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in allow:
            return True
    return False


def rule_files() -> dict[str, dict]:
    return {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((MONITORING / "rules").glob("*.yaml"))}


def recorded(files: dict[str, dict]) -> set[str]:
    return {r["record"] for f in files.values() for g in f["groups"] for r in g["rules"] if "record" in r}


def cmd_rule_metrics() -> None:
    """Which names each rule file may read: the layering the drill relies on."""
    contract = project_metrics()
    external = read_list(MONITORING / "metrics-external.txt")
    files = rule_files()
    records = recorded(files)
    scope = {
        "recording.cluster.yaml": external,  # the only reader of cluster series
        "recording.yaml": contract | records,  # the project's own series and fraudops:* records
        "alerts.yaml": records,  # recording rules only
    }
    if set(files) != set(scope):
        fail(f"rule files {sorted(files)} != {sorted(scope)} (update deploy/checks.py and render.py together)")
    for name, f in files.items():
        for g in f["groups"]:
            for r in g["rules"]:
                for metric in metric_names(r["expr"]):
                    if not allowed(metric, scope.get(name, set())):
                        fail(f"{name}: {r.get('record') or r.get('alert')} reads {metric}, not allowed in this file")
                if "record" in r and not r["record"].startswith("fraudops:"):
                    fail(f"{name}: recording rule {r['record']} must be named fraudops:*")
                if "alert" in r:
                    missing = {"summary", "description", "runbook", "runbook_url"} - set(r.get("annotations", {}))
                    if missing or "severity" not in r.get("labels", {}):
                        fail(f"{name}: {r['alert']} lacks {sorted(missing) or 'a severity label'}")
                    anchor = r["annotations"].get("runbook_url", "").rsplit("#", 1)[-1]
                    runbook = (DEPLOY / "RUNBOOK.md").read_text(encoding="utf-8")
                    if f"## {r['alert']}" not in runbook or anchor != r["alert"].lower():
                        fail(f"{name}: {r['alert']} runbook_url anchor #{anchor} has no section in deploy/RUNBOOK.md")
    alerts = [r["alert"] for f in files.values() for g in f["groups"] for r in g["rules"] if "alert" in r]
    if sorted(alerts) != sorted(ALERT_NAMES):
        fail(f"alerts {alerts} != SPEC §7 {ALERT_NAMES}")


def cmd_dashboard(rule_out: Path) -> None:
    """Every panel query uses allowed metrics; write them as recording rules for `promtool check rules`."""
    contract = project_metrics()
    external = read_list(MONITORING / "metrics-external.txt")
    allow = contract | external | recorded(rule_files())
    dashboard = json.loads((MONITORING / "grafana/fraudops-dashboard.json").read_text(encoding="utf-8"))
    rules, seen_titles = [], set()
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [(f"annotation {a['name']}", a["expr"]) for a in dashboard.get("annotations", {}).get("list", [])
             if "expr" in a]
    for p in panels:
        if p["title"] in seen_titles:
            fail(f"dashboard: duplicate panel title {p['title']!r}")
        seen_titles.add(p["title"])
        if not p.get("targets"):
            fail(f"dashboard: panel {p['title']!r} has no query")
        for t in p.get("targets", []):
            exprs.append((f"panel {p['title']!r} {t['refId']}", t["expr"]))
    for i, (where, expr) in enumerate(exprs):
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        if "$" in expr:
            fail(f"dashboard: {where}: unknown Grafana variable in {expr}")
        for metric in metric_names(expr):
            if not allowed(metric, allow):
                fail(f"dashboard: {where} reads {metric}, which is neither in metrics-contract.txt, "
                     f"metrics-lake.txt, metrics-external.txt nor a fraudops:* recording rule")
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    # The panels the issue asks for, by the metric they show.
    used = set().union(*(metric_names(e) for _, e in exprs))
    for needed in ("http_requests_total", "http_request_duration_seconds_bucket", "fraudops:hpa_current_replicas",
                   "fraudops:hpa_desired_replicas", "fraudops:hpa_max_replicas", "fraudops:pod_cpu_usage_ratio",
                   "container_memory_working_set_bytes", "http_requests_rejected_total", "kafka_consumer_lag",
                   "kafka_messages_consumed_total", "ml_model_fraud_probability_bucket", "ml_model_info"):
        if needed not in used:
            fail(f"dashboard: no panel shows {needed}")
    # Drift, and the retraining's age (pushed by `fraudops register`), in the Model quality row.
    for needed in ("ml_model_score_psi", "ml_model_feature_psi", "fraudops:model_retrain_age_seconds"):
        if needed not in used:
            fail(f"dashboard: no panel shows {needed}")
    # The transaction lake row: what the archive writes, how long since it committed, its backlog and errors.
    for needed in ("lake_rows_written_total", "lake_files_written_total", "lake_bytes_written_total",
                   "fraudops:lake_seconds_since_last_commit", "fraudops:lake_archive_lag", "lake_write_errors_total",
                   "lake_dead_letters_total"):
        if needed not in used:
            fail(f"dashboard: no panel shows {needed}")
    rule_out.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, sort_keys=False),
                        encoding="utf-8")
    print(f"{len(panels)} panels, {len(exprs)} queries")


# --- alertmanager --------------------------------------------------------------------------------------------
LITERAL_SECRET_KEYS = {"smtp_auth_password", "auth_password", "auth_secret", "bot_token", "api_url",
                       "api_key", "routing_key", "service_key", "token", "password", "credentials", "url"}
# A webhook `url` may be literal only as a plain in-cluster Service address (no user info, no query): such a
# URL is no credential, and Alertmanager 0.25 (the one checking here) has no webhook url_file.
IN_CLUSTER_URL = re.compile(r"^http://[a-z0-9-]+\.[a-z0-9-]+\.svc(\.cluster\.local)?(:\d+)?(/[A-Za-z0-9/_-]*)?$")


def _walk(node, path=""):
    if isinstance(node, dict):
        for k, v in node.items():
            yield f"{path}.{k}", k, v
            yield from _walk(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{path}[{i}]")


def cmd_alertmanager(out: Path) -> None:
    """No literal secret anywhere; write the cluster config without the keys Alertmanager 0.25 lacks."""
    source = yaml.safe_load((MONITORING / "alertmanager/alertmanager.yaml").read_text(encoding="utf-8"))
    secret = docs(DEPLOY / "platform/alertmanager/alertmanager-config.yaml")[0]
    cluster = yaml.safe_load(secret["stringData"]["alertmanager.yaml"])
    for label, config in (("alertmanager.yaml", source), ("cluster alertmanager.yaml", cluster)):
        for where, key, value in _walk(config):
            if key in LITERAL_SECRET_KEYS and value and not (
                    key == "url" and ".webhook_configs[" in where and IN_CLUSTER_URL.match(str(value))):
                fail(f"{label}: literal secret field {where}; use {key}_file")
            if key.endswith("_file") and isinstance(value, str):
                ok = value.startswith("secrets/") if config is source else value.startswith("/etc/alertmanager/secrets/")
                if not ok:
                    fail(f"{label}: {where}={value} is not under the mounted secrets directory")
    admin = next(r for r in cluster["receivers"] if r["name"] == "admin")
    if not admin.get("email_configs") or not admin.get("telegram_configs") or not admin.get("slack_configs"):
        fail("cluster admin receiver must have email, Telegram and chat webhook integrations")
    for tg in admin.get("telegram_configs", []):
        if not tg.get("bot_token_file"):
            fail("cluster Telegram config must read bot_token_file")
    # The model alerts reach the retraining bridge (docs/retraining.md): one group per alert name, a repeat at
    # most daily, on-call still notified (`continue`); firing only, to the bridge's Service, token from a file.
    route = next((r for r in source["route"].get("routes", []) if r.get("receiver") == "fraudops-retrain"), None)
    if route is None:
        fail("no route to the receiver fraudops-retrain")
    else:
        if route.get("group_by") not in (["alertname"], ["alertname", "model"]) or not route.get("continue"):
            fail(f"fraudops-retrain route must group by alertname and continue: {route}")
        hours = sum(int(n) * {"h": 1, "d": 24}[u] for n, u in re.findall(r"(\d+)([hd])", route.get("repeat_interval", "")))
        if hours < 24:
            fail(f"fraudops-retrain route repeat_interval {route.get('repeat_interval')!r} < 24h")
    hooks = next((r for r in source["receivers"] if r["name"] == "fraudops-retrain"), {}).get("webhook_configs", [])
    if len(hooks) != 1 or hooks[0].get("send_resolved") is not False \
            or not hooks[0].get("url", "").startswith("http://fraudops-retrain-trigger.fraudops.svc:8080/") \
            or not hooks[0].get("http_config", {}).get("authorization", {}).get("credentials_file"):
        fail(f"fraudops-retrain must post firing alerts to the bridge's Service with a token file: {hooks}")
    # Alertmanager 0.25 (here) does not know telegram bot_token_file: check the rest of the cluster config.
    for r in cluster["receivers"]:
        r.pop("telegram_configs", None)
    out.mkdir(parents=True, exist_ok=True)
    (out / "alertmanager.yaml").write_text(yaml.safe_dump(cluster, sort_keys=False), encoding="utf-8")


def cmd_alertmanager_live(binary: str) -> None:
    """Run the real Alertmanager on alertmanager.yaml UNCHANGED, with only the secrets/ files pointing at a local
    webhook sink (what the drill does): the admin alert must reach the admin chat URL, and HighCPUUsage of the
    same namespace must be inhibited."""
    import http.server
    import shutil
    import socket
    import subprocess
    import tempfile
    import threading
    import time
    import urllib.request

    received: list[tuple[str, dict]] = []

    class Sink(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.path, json.loads(body or b"{}")))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    sink_url = f"http://127.0.0.1:{sink.server_address[1]}"
    work = Path(tempfile.mkdtemp(prefix="fraudops-am-"))
    (work / "secrets").mkdir()
    (work / "secrets/admin-chat-url").write_text(f"{sink_url}/admin\n")
    (work / "secrets/oncall-chat-url").write_text(f"{sink_url}/oncall\n")
    (work / "secrets/smtp-password").write_text("not-a-real-password\n")
    port = free_port()
    base = f"http://127.0.0.1:{port}/api/v2"
    log = (work / "alertmanager.log").open("w")
    proc = subprocess.Popen(
        [binary, f"--config.file={MONITORING / 'alertmanager/alertmanager.yaml'}", f"--storage.path={work / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=warn"],
        cwd=work, stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/status", timeout=1)
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
        else:
            fail("alertmanager did not start")
            return
        if proc.poll() is not None:
            fail(f"alertmanager exited: {(work / 'alertmanager.log').read_text()}")
            return
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        alerts = [
            {"labels": {"alertname": "AdminNotification_MaxScaleHighCPU", "severity": "critical", "notify": "admin",
                        "namespace": "fraudops"},
             "annotations": {"summary": "fraudops-api runs at its replica maximum", "description": "check"},
             "startsAt": now},
            {"labels": {"alertname": "HighCPUUsage", "severity": "warning", "namespace": "fraudops",
                        "pod": "fraudops-api-a"},
             "annotations": {"summary": "hot pod", "description": "check"}, "startsAt": now},
        ]
        req = urllib.request.Request(f"{base}/alerts", data=json.dumps(alerts).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5)
        time.sleep(0.5)
        state = {a["labels"]["alertname"]: a["status"] for a in
                 json.load(urllib.request.urlopen(f"{base}/alerts", timeout=5))}
        if state.get("HighCPUUsage", {}).get("state") != "suppressed" or not state["HighCPUUsage"].get("inhibitedBy"):
            fail(f"HighCPUUsage is not inhibited by the admin alert: {state.get('HighCPUUsage')}")
        if state.get("AdminNotification_MaxScaleHighCPU", {}).get("state") != "active":
            fail(f"admin alert is not active: {state.get('AdminNotification_MaxScaleHighCPU')}")
        deadline = time.time() + 45  # route group_wait is 10 s
        while time.time() < deadline and not any(p == "/admin" for p, _ in received):
            time.sleep(0.5)
        admin = [b for p, b in received if p == "/admin"]
        if not admin:
            fail(f"no notification reached the admin webhook within 45 s; log: {(work / 'alertmanager.log').read_text()[-2000:]}")
        else:
            title = admin[0].get("attachments", [{}])[0].get("title", "")
            if not title.startswith("[FIRING:1] AdminNotification_MaxScaleHighCPU"):
                fail(f"unexpected admin notification title {title!r}")
            else:
                print(f"admin webhook got: {title}")
        if any(p == "/oncall" and "HighCPUUsage" in json.dumps(b) for p, b in received):
            fail("the inhibited HighCPUUsage was notified to on-call")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        sink.shutdown()
        log.close()
        shutil.rmtree(work, ignore_errors=True)


# --- terraform -----------------------------------------------------------------------------------------------
def cmd_terraform() -> None:
    import hcl2

    def norm(node):
        """python-hcl2 >= 7 keeps HCL's quotes on keys and strings and adds __comment__ keys: drop both."""
        unq = lambda v: v[1:-1] if isinstance(v, str) and len(v) >= 2 and v[0] == v[-1] == '"' else v  # noqa: E731
        if isinstance(node, dict):
            return {unq(k): norm(v) for k, v in node.items() if not str(k).startswith("__")}
        if isinstance(node, list):
            return [norm(v) for v in node]
        return unq(node)

    tf_dir = DEPLOY / "terraform"
    parsed = {}
    for path in sorted(tf_dir.glob("*.tf")):
        try:
            with path.open(encoding="utf-8") as f:
                parsed[path.name] = norm(hcl2.load(f))
        except Exception as e:  # noqa: BLE001 - report any parse error with its file
            fail(f"{path.name}: HCL parse error: {e}")
    if not parsed:
        fail("no .tf files")
        return
    pins = [p for d in parsed.values() for t in d.get("terraform", []) for rp in t.get("required_providers", [])
            for name, p in rp.items() if name == "yandex"]
    if len(pins) != 1:
        fail(f"provider yandex must be declared once in required_providers, found {len(pins)}")
    else:
        pin = pins[0]
        if pin.get("source") != "yandex-cloud/yandex":
            fail(f"provider source {pin.get('source')} != yandex-cloud/yandex")
        version = str(pin.get("version", ""))
        if not re.fullmatch(r"(=\s*|~>\s*)?\d+\.\d+\.\d+", version):
            fail(f"provider version {version!r} is not pinned (want `= x.y.z` or `~> x.y.z`)")
    resources = {(rtype, name) for d in parsed.values() for block in d.get("resource", [])
                 for rtype, named in block.items() for name in named}
    types = {t for t, _ in resources}
    for needed in ("yandex_vpc_network", "yandex_vpc_subnet", "yandex_iam_service_account",
                   "yandex_resourcemanager_folder_iam_member", "yandex_kubernetes_cluster",
                   "yandex_kubernetes_node_group", "yandex_container_registry", "yandex_storage_bucket",
                   "yandex_iam_service_account_static_access_key"):
        if needed not in types:
            fail(f"terraform: no {needed} resource")
    variables = {name: body for d in parsed.values() for block in d.get("variable", []) for name, body in block.items()}
    for name, body in variables.items():
        if not body.get("description"):
            fail(f"variables: {name} has no description")
    declared = set(variables)
    example = (tf_dir / "terraform.tfvars.example").read_text(encoding="utf-8")
    for name in re.findall(r"^\s*([a-z_][a-z0-9_]*)\s*=", example, flags=re.M):
        if name not in declared:
            fail(f"terraform.tfvars.example sets undeclared variable {name}")
    text = "\n".join(p.read_text(encoding="utf-8") for p in tf_dir.glob("*.tf"))
    for ref in set(re.findall(r"\bvar\.([a-z_][a-z0-9_]*)", text)):
        if ref not in declared:
            fail(f"terraform: var.{ref} is used but not declared")
    if "outputs.tf" not in parsed or not parsed["outputs.tf"].get("output"):
        fail("terraform: outputs.tf declares no output")
    print(f"{len(parsed)} files, {len(resources)} resources, {len(variables)} variables")


# --- CI workflow, ArgoCD -------------------------------------------------------------------------------------
def cmd_workflow() -> None:
    wf_path = REPO / ".github/workflows/ci.yaml"
    wf = yaml.safe_load(wf_path.read_text(encoding="utf-8"))
    jobs = wf.get("jobs", {})
    text = wf_path.read_text(encoding="utf-8")
    for job in ("test", "image", "deploy"):
        if job not in jobs:
            fail(f"ci.yaml: no job {job!r}")
    if "bash .ci/run" not in text:
        fail("ci.yaml: the test job must run .ci/run")
    if "kustomize edit set image" not in text or "deploy/k8s/overlays/production" not in text:
        fail("ci.yaml: the deploy job must bump the production overlay with kustomize edit set image")
    for job in jobs.values():
        for step in job.get("steps", []):
            uses = step.get("uses", "")
            if uses and "@" not in uses:
                fail(f"ci.yaml: action {uses} is not pinned to a version")
    app = docs(DEPLOY / "argocd/application.yaml")[0]
    if app["spec"]["source"]["path"] != "deploy/k8s/overlays/production":
        fail("argocd application must follow deploy/k8s/overlays/production")
    auto = app["spec"].get("syncPolicy", {}).get("automated", {})
    if not (auto.get("prune") and auto.get("selfHeal")):
        fail("argocd application needs automated sync with prune and selfHeal")


def cmd_seed_overlay(production: Path, seed: Path) -> None:
    """The seed-sized overlay is production with only the API's CPU changed: the HPA, the alerts, the stream
    worker and everything else are what production deploys, so its drill tells production's story at the
    seeds' rates."""
    prod, seeded = docs(production), docs(seed)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731 - a sort key
    if sorted(map(key, prod)) != sorted(map(key, seeded)):
        fail(f"{seed.name}: objects differ from {production.name}")
        return
    by_key = {key(o): o for o in prod}
    for obj in seeded:
        want = json.loads(json.dumps(by_key[key(obj)]))
        got = json.loads(json.dumps(obj))
        if key(obj) == ("Deployment", "fraudops-api"):
            for o in (want, got):
                res = o["spec"]["template"]["spec"]["containers"][0]["resources"]
                res["requests"].pop("cpu"), res["limits"].pop("cpu")
        if got != want:
            fail(f"{seed.name}: {key(obj)} differs from production (only the API's CPU may)")
    api = find(seeded, "Deployment", "fraudops-api")
    res = api["spec"]["template"]["spec"]["containers"][0]["resources"] if api else {}
    if res and res["requests"]["cpu"] != res["limits"]["cpu"]:
        fail(f"{seed.name}: the API's CPU request {res['requests']['cpu']} != its limit {res['limits']['cpu']} "
             "(the sizing in the overlay's comment assumes them equal)")


def cmd_stream_hpa(paths: list[Path]) -> None:
    """Production's stream worker follows the attack: an HPA on CPU, at most one worker per partition."""
    for path in paths:
        objs = docs(path)
        hpa = find(objs, "HorizontalPodAutoscaler", "fraudops-stream")
        topic = next((o for o in objs if o.get("kind") == "KafkaTopic"
                      and o["metadata"]["name"] == "transactions-input"), None)
        if hpa is None or topic is None:
            fail(f"{path.name}: no HorizontalPodAutoscaler fraudops-stream (or no transactions-input topic)")
            continue
        spec = hpa["spec"]
        if spec["scaleTargetRef"] != {"apiVersion": "apps/v1", "kind": "Deployment", "name": "fraudops-stream"}:
            fail(f"{path.name}: the stream HPA scales {spec['scaleTargetRef']}")
        if [m["resource"]["name"] for m in spec["metrics"]] != ["cpu"]:
            fail(f"{path.name}: the stream HPA must scale on CPU only")
        if not 2 <= spec["minReplicas"] <= spec["maxReplicas"] <= topic["spec"]["partitions"]:
            fail(f"{path.name}: stream HPA {spec['minReplicas']}..{spec['maxReplicas']} must stay within "
                 f"2..{topic['spec']['partitions']} (the partitions of transactions-input)")


def cmd_attack_job(path: Path) -> None:
    """The attack Job runs the seeds' phases, then escalates until the admin alert fires, with a guard."""
    job = docs(path)[0]
    c = job["spec"]["template"]["spec"]["containers"][0]
    args = c.get("args", [])

    def value(flag: str) -> str | None:
        return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None

    if value("--phases") != "50:5m,200:5m,500:5m,1500:5m":
        fail(f"{path.name}: --phases {value('--phases')!r} is not the seeds' 50:5m,200:5m,500:5m,1500:5m")
    if value("--until-alert") != "AdminNotification_MaxScaleHighCPU":
        fail(f"{path.name}: the attack must escalate --until-alert AdminNotification_MaxScaleHighCPU")
    if value("--max-rate") is None or float(value("--max-rate")) <= 1500:
        fail(f"{path.name}: the closed loop needs a --max-rate guard above the last phase")
    env = {e["name"]: e for e in c.get("env", [])}
    if "--alertmanager" not in args and "ALERTMANAGER_URL" not in env and not any(
            "configMapRef" in e for e in c.get("envFrom", [])):
        fail(f"{path.name}: no Alertmanager URL for the closed loop")
    config = find(docs(DEPLOY / "k8s/base/configmap.yaml"), "ConfigMap", "fraudops-config")
    if "--alertmanager" not in args and "ALERTMANAGER_URL" not in env and "ALERTMANAGER_URL" not in config["data"]:
        fail("configmap.yaml: ALERTMANAGER_URL missing (the attack Job reads it through envFrom)")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("validate", "hpa", "invariants"):
        sub.add_parser(name).add_argument("files", nargs="+", type=Path)
    x = sub.add_parser("extract-rules")
    x.add_argument("file", type=Path)
    x.add_argument("out", type=Path)
    seed = sub.add_parser("seed-overlay")
    seed.add_argument("production", type=Path)
    seed.add_argument("seed", type=Path)
    sub.add_parser("stream-hpa").add_argument("files", nargs="+", type=Path)
    sub.add_parser("attack-job").add_argument("file", type=Path)
    sub.add_parser("feature-store").add_argument("files", nargs="+", type=Path)
    live = sub.add_parser("redis-live")
    live.add_argument("binary")
    live.add_argument("rendered", type=Path)
    sub.add_parser("rule-metrics")
    sub.add_parser("dashboard").add_argument("rule_out", type=Path)
    sub.add_parser("alertmanager").add_argument("out", type=Path)
    sub.add_parser("alertmanager-live").add_argument("binary")
    sub.add_parser("terraform")
    sub.add_parser("workflow")
    a = p.parse_args(argv)
    {
        "validate": lambda: cmd_validate(a.files),
        "hpa": lambda: cmd_hpa(a.files),
        "invariants": lambda: cmd_invariants(a.files),
        "extract-rules": lambda: cmd_extract_rules(a.file, a.out),
        "seed-overlay": lambda: cmd_seed_overlay(a.production, a.seed),
        "stream-hpa": lambda: cmd_stream_hpa(a.files),
        "attack-job": lambda: cmd_attack_job(a.file),
        "feature-store": lambda: cmd_feature_store(a.files),
        "redis-live": lambda: cmd_redis_live(a.binary, a.rendered),
        "rule-metrics": cmd_rule_metrics,
        "dashboard": lambda: cmd_dashboard(a.rule_out),
        "alertmanager": lambda: cmd_alertmanager(a.out),
        "alertmanager-live": lambda: cmd_alertmanager_live(a.binary),
        "terraform": cmd_terraform,
        "workflow": cmd_workflow,
    }[a.cmd]()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
