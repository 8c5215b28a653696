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
from secrets import token_hex

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
    ("redis.redis.opstreelabs.in/v1beta2", "RedisCluster"): {
        "required": ["clusterSize", "kubernetesConfig", "redisLeader", "redisFollower", "storage"],
        "properties": {"clusterSize": {"type": "integer", "minimum": 3},
                       "kubernetesConfig": {"type": "object", "required": ["image", "resources"]},
                       "persistenceEnabled": {"const": True},
                       "storage": {"type": "object", "required": ["volumeClaimTemplate"]}},
    },
    ("cert-manager.io/v1", "ClusterIssuer"): {
        "required": ["acme"],
        "properties": {"acme": {"type": "object", "required": ["server", "email", "privateKeySecretRef", "solvers"],
                                "properties": {"solvers": {"type": "array", "minItems": 1}}}},
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
# Issue 30: a feature-store outage says so (and holds the model alerts), Redis is watched, labels keep coming.
ALERT_NAMES += ["FeatureStoreDegraded", "FeatureStoreDown", "FeatureStoreMemoryHigh", "LabelsStalled"]

failures: list[str] = []


def fail(msg: str) -> None:
    failures.append(msg)
    print(f"  - {msg}", file=sys.stderr)


def docs(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


def find(objs: list[dict], kind: str, name: str) -> dict | None:
    return next((o for o in objs if o.get("kind") == kind and o["metadata"]["name"] == name), None)


def refuse_each(base, mutants: dict, problems, passed) -> None:
    """Negative checks: each mutant of a deep copy of `base` must make `problems` report something (the
    first is printed as what refused it); one that passes fails the check with `passed(name)`."""
    import copy

    for name, mutate in mutants.items():
        mutant = copy.deepcopy(base)
        mutate(mutant)
        found = problems(mutant)
        if found:
            print(f"refused, {name}: {found[0]}")
        else:
            fail(passed(name))


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
        # The API's /metrics on its own port (METRICS_PORT): the http port answers 404 for it, so the
        # ServiceMonitor scrapes the Service's metrics port.
        if api:
            c = api["spec"]["template"]["spec"]["containers"][0]
            metrics = next((p["containerPort"] for p in c.get("ports", []) if p["name"] == "metrics"), None)
            if metrics != API_METRICS_PORT or _env(c).get("METRICS_PORT", {}).get("value") != str(API_METRICS_PORT):
                fail(f"{path.name}: fraudops-api must serve /metrics on METRICS_PORT {API_METRICS_PORT}, its container "
                     f"port `metrics` (got port {metrics}, METRICS_PORT {_env(c).get('METRICS_PORT')})")
        if not svc or not any(p["name"] == "metrics" and p["targetPort"] == "metrics" for p in svc["spec"]["ports"]):
            fail(f"{path.name}: Service fraudops-api must expose the metrics port for the ServiceMonitor")
        for kind, name in (("ServiceMonitor", "fraudops-api"), ("PodMonitor", "fraudops-stream"),
                           ("PodMonitor", "fraudops-labels"), ("PodMonitor", "fraudops-redis"),
                           ("PodMonitor", "fraudops-archive"),
                           ("PrometheusRule", "fraudops-rules")):
            obj = find(objs, kind, name)
            if obj is None or obj["metadata"].get("labels", {}).get("release") != "kube-prometheus-stack":
                fail(f"{path.name}: {kind} {name} missing or without label release=kube-prometheus-stack")
        sm = find(objs, "ServiceMonitor", "fraudops-api")
        ep = sm["spec"]["endpoints"][0] if sm else {}
        if (ep.get("port"), ep.get("path"), ep.get("interval")) != ("metrics", "/metrics", "15s"):
            fail(f"{path.name}: ServiceMonitor endpoint must be port metrics, /metrics, 15s")
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
        _check_api_network_policy(objs, path.name)
        for problem in api_auth_problems(objs, production=path.stem in PRODUCTION_LIKE):
            fail(f"{path.name}: {problem}")
        for problem in ingress_problems(objs, production=path.stem in PRODUCTION_LIKE):
            fail(f"{path.name}: {problem}")


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


def _redis_pods(objs: list[dict]) -> dict | None:
    """The feature store's pods, as the NetworkPolicy sees them: their labels, their ports, and the ports
    clients, Prometheus and (in a cluster) the shards use. The single Redis (StatefulSet fraudops-redis, named
    ports) or the production Redis Cluster (the operator's pods carry the custom resource's labels; numbered
    ports: 6379, the bus 16379, the exporter 9121)."""
    sts = find(objs, "StatefulSet", "fraudops-redis")
    if sts is not None:
        ports = {p["name"] for c in sts["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        return {"labels": sts["spec"]["template"]["metadata"]["labels"], "ports": ports, "client": "redis",
                "metrics": "metrics", "bus": None}
    cluster = find(objs, "RedisCluster", "fraudops-redis")
    if cluster is not None:
        return {"labels": cluster["metadata"].get("labels", {}), "ports": {6379, 16379, 9121}, "client": 6379,
                "metrics": 9121, "bus": 16379}
    return None


def _policy_for(objs: list[dict], labels: dict) -> dict | None:
    """The Ingress NetworkPolicy that selects pods with these labels."""
    return next((o for o in objs if o.get("kind") == "NetworkPolicy" and "Ingress" in o["spec"].get("policyTypes", [])
                 and selects(o["spec"]["podSelector"], labels)), None)


def _check_network_policies(objs: list[dict], where: str) -> None:
    """Redis (no password) admits exactly the workloads that load FEATURE_STORE_URL, and Prometheus on the
    exporter's port; the retraining bridge admits only the monitoring namespace."""
    workloads = [o for o in objs if o.get("kind") in ("Deployment", "StatefulSet")]
    redis = _redis_pods(objs)
    policy = _policy_for(objs, redis["labels"]) if redis else None
    if policy is None:
        fail(f"{where}: no NetworkPolicy restricts ingress to fraudops-redis")
    else:
        ports = redis["ports"]
        for rule in policy["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                if p.get("port") not in ports:
                    fail(f"{where}: NetworkPolicy {policy['metadata']['name']} names port {p.get('port')!r}, "
                         f"not one of the pod's {sorted(ports)}")
        for w in workloads:
            name = w["metadata"]["name"]
            uses_store = any(e.get("configMapRef", {}).get("name") == "fraudops-config"
                             for c in w["spec"]["template"]["spec"]["containers"] for e in c.get("envFrom", []))
            if _admitted(policy, redis["client"], w["spec"]["template"]["metadata"]["labels"]) != uses_store:
                fail(f"{where}: {name} {'loads' if uses_store else 'does not load'} FEATURE_STORE_URL but is "
                     f"{'not ' if uses_store else ''}admitted to Redis by NetworkPolicy {policy['metadata']['name']}")
        if not _admitted(policy, redis["metrics"], None):
            fail(f"{where}: Prometheus (namespace monitoring) cannot scrape fraudops-redis's exporter")
        if _admitted(policy, redis["client"], None):
            fail(f"{where}: the monitoring namespace must not reach Redis itself")
        if redis["bus"] is not None and not _admitted(policy, redis["bus"], redis["labels"]):
            fail(f"{where}: the Redis Cluster's shards cannot reach each other's cluster bus ({redis['bus']})")
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


# --- the API's keys, its NetworkPolicy, its Ingress and the edge limits -------------------------------------
# The `fraudops serve` contract: API_KEYS_FILE names a file of `<client-id> <scopes> sha256:<digest>` lines that
# serve re-reads when it changes; callers send `Authorization: Bearer <key>` (API_KEY of the stream worker and
# the attack). Production must not serve without it; the local overlay and the drill run without keys.
PRODUCTION_LIKE = ("production", "seed-attack")  # rendered overlays (file stems) that must require keys
API_KEYS_SECRET, API_KEYS_SECRET_KEY = "fraudops-api-keys", "api-keys"
CLIENT_KEYS_SECRET = "fraudops-api-client-keys"
API_METRICS_PORT = 9102
SCORING_PATHS = ("/predict", "/predict/batch")
# Pods of the platform, by the labels their charts and operators give them (for the NetworkPolicy checks).
PROMETHEUS_POD = ("monitoring", {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/managed-by": "prometheus-operator",
                                 "operator.prometheus.io/name": "kube-prometheus-stack-prometheus"})
INGRESS_CONTROLLER_POD = ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx", "app.kubernetes.io/instance": "ingress-nginx",
                                            "app.kubernetes.io/component": "controller"})
OTHER_PODS = {"grafana": ("monitoring", {"app.kubernetes.io/name": "grafana"}),
              "alertmanager": ("monitoring", {"app.kubernetes.io/name": "alertmanager"}),
              "a pod of another namespace": ("default", {"app": "curl"}),
              "the ingress controller's admission webhook": ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx",
                                                                                "app.kubernetes.io/component": "admission-webhook"})}


def _workloads(objs: list[dict]) -> list[dict]:
    return [o for o in objs if o.get("kind") in ("Deployment", "StatefulSet", "Job", "CronJob")]


def _pod_spec(workload: dict) -> dict:
    spec = workload["spec"]
    if workload["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]


def _secret_refs(workload: dict) -> list[tuple[str, bool]]:
    """(Secret name, optional) of every Secret the pod needs: volumes, env and envFrom."""
    pod = _pod_spec(workload)
    refs = [(v["secret"].get("secretName"), bool(v["secret"].get("optional"))) for v in pod.get("volumes", [])
            if "secret" in v]
    for c in pod.get("containers", []) + pod.get("initContainers", []):
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                refs.append((ref.get("name"), bool(ref.get("optional"))))
        for e in c.get("envFrom", []):
            if "secretRef" in e:
                refs.append((e["secretRef"].get("name"), bool(e["secretRef"].get("optional"))))
    return refs


def _attack_job() -> dict:
    return docs(DEPLOY / "k8s/attack/attack-job.yaml")[0]


def _flag(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args and args.index(flag) + 1 < len(args) else None


def api_auth_problems(objs: list[dict], production: bool) -> list[str]:
    """What is wrong with the API keys' wiring in one rendered overlay (empty: nothing). Production: serve reads
    API_KEYS_FILE from the Secret fraudops-api-keys, mounted read-only as a directory (no subPath, so a rotation
    reaches the file), required; the stream worker sends its key from fraudops-api-client-keys. Elsewhere: no pod
    needs those Secrets (a laptop has none). Everywhere: no key in git, no RATE_LIMIT_KEY_HEADER."""
    problems = []
    for o in objs:
        if o.get("kind") == "Secret" and o["metadata"]["name"] in (API_KEYS_SECRET, CLIENT_KEYS_SECRET):
            problems.append(f"Secret {o['metadata']['name']} is rendered: API keys are never in git (the operator "
                            "creates the Secret, deploy/README.md §7)")
    config = (find(objs, "ConfigMap", "fraudops-config") or {}).get("data", {})
    for var in ("API_KEY", "API_KEYS_FILE", "RATE_LIMIT_KEY_HEADER"):
        if var in config:
            problems.append(f"fraudops-config sets {var}: every workload and the drill's replicas load that ConfigMap")
    for w in _workloads(objs):
        for c in _pod_spec(w).get("containers", []):
            env = _env(c)
            if "value" in env.get("API_KEY", {}):
                problems.append(f"{w['metadata']['name']}: a literal API_KEY (keys come from the Secret "
                                f"{CLIENT_KEYS_SECRET})")
            if "RATE_LIMIT_KEY_HEADER" in env:
                problems.append(f"{w['metadata']['name']}: RATE_LIMIT_KEY_HEADER is gone (a header the client sets "
                                "cannot key a quota; with keys the quota is per client id)")
    if not production:
        for w in _workloads(objs):
            for name, optional in _secret_refs(w):
                if name in (API_KEYS_SECRET, CLIENT_KEYS_SECRET) and not optional:
                    problems.append(f"{w['metadata']['name']} needs the Secret {name}, which only production has "
                                    "(its pod would never start here)")
        return problems

    api = find(objs, "Deployment", "fraudops-api")
    if api is None:
        return problems + ["no Deployment fraudops-api"]
    pod = api["spec"]["template"]["spec"]
    c = pod["containers"][0]
    env = _env(c)
    path = env.get("API_KEYS_FILE", {}).get("value")
    if c.get("args", [None])[0] != "serve":
        problems.append(f"fraudops-api runs {c.get('args')}, not serve")
    if not path:
        problems.append("fraudops-api serves without API_KEYS_FILE (a literal path into the Secret "
                        f"{API_KEYS_SECRET}): production would answer anyone")
    else:
        mount = next((m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"].rstrip("/") + "/")), None)
        volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), None)
        secret = (volume or {}).get("secret")
        if mount is None or volume is None:
            problems.append(f"API_KEYS_FILE {path} is not in a mounted volume")
        elif secret is None or secret.get("secretName") != API_KEYS_SECRET:
            problems.append(f"API_KEYS_FILE {path} is not a file of the Secret {API_KEYS_SECRET} (volume {volume})")
        else:
            if mount.get("subPath") or mount.get("subPathExpr"):
                problems.append(f"API_KEYS_FILE's mount uses subPath: the kubelet never updates such a file, so a "
                                "rotated or revoked key would not reach the API")
            if not mount.get("readOnly"):
                problems.append("the API keys' mount must be readOnly")
            if secret.get("optional"):
                problems.append(f"the Secret {API_KEYS_SECRET} is optional: the API would start without keys")
            name = path[len(mount["mountPath"].rstrip("/")) + 1:]
            items = secret.get("items")
            key = next((i["key"] for i in items if i["path"] == name), None) if items else name
            if key != API_KEYS_SECRET_KEY:
                problems.append(f"API_KEYS_FILE {path} is the Secret's key {key!r}, not {API_KEYS_SECRET_KEY!r}")
    stream = find(objs, "Deployment", "fraudops-stream")
    ref = _env(stream["spec"]["template"]["spec"]["containers"][0]).get("API_KEY", {}).get("valueFrom", {}).get(
        "secretKeyRef", {}) if stream else {}
    if (ref.get("name"), ref.get("key"), bool(ref.get("optional"))) != (CLIENT_KEYS_SECRET, "stream-worker", False):
        problems.append(f"fraudops-stream must send API_KEY from the Secret {CLIENT_KEYS_SECRET}, key stream-worker "
                        f"(required), got {ref}")
    # The quota is per client, and the stream worker is one client carrying every event of the attack: its key
    # carries its own quota (`rps=` in the keys file, `fraudops api-key new --rps`), which the operator's command
    # in deploy/README.md must give above the attack's guard per replica, or the worker's quota, not the API's
    # CPU, would stop the escalation before the admin alert. RATE_LIMIT_RPS is every other client's quota.
    hpa = find(objs, "HorizontalPodAutoscaler", "fraudops-api")
    guard = _flag(_attack_job()["spec"]["template"]["spec"]["containers"][0].get("args", []), "--max-rate")
    readme = (DEPLOY / "README.md").read_text()
    worker = re.search(r"fraudops api-key new --client stream-worker [^\n]*?--rps (\d+)", readme)
    if not worker:
        problems.append("deploy/README.md: the stream worker's key must be made with its own quota (--rps)")
    elif hpa and guard and int(worker.group(1)) * hpa["spec"]["maxReplicas"] < float(guard):
        problems.append(f"the stream worker's --rps {worker.group(1)} per replica × {hpa['spec']['maxReplicas']} "
                        f"replicas is below the attack's --max-rate {guard}: its quota would end the attack")
    if not int(env.get("RATE_LIMIT_RPS", {}).get("value", "0") or 0):
        problems.append("RATE_LIMIT_RPS must be set: the quota of every client without its own is on in production")
    return problems


def cmd_api_keys_negative(production: Path) -> None:
    """The check above refuses each way production could serve without keys (and passes the overlay as it is)."""
    objs = docs(production)
    if api_auth_problems(objs, production=True):
        fail(f"{production.name}: the unmodified overlay fails: {api_auth_problems(objs, production=True)}")
        return

    def api(o):  # the API's pod spec and container
        d = find(o, "Deployment", "fraudops-api")["spec"]["template"]["spec"]
        return d, d["containers"][0]

    def keys_volume(o):
        d, c = api(o)
        path = _env(c)["API_KEYS_FILE"]["value"]
        m = next(m for m in c["volumeMounts"] if path.startswith(m["mountPath"] + "/"))
        return m, next(v for v in d["volumes"] if v["name"] == m["name"])

    def drop_env(container: dict, name: str) -> None:
        container["env"] = [e for e in container.get("env", []) if e["name"] != name]

    def worker(o):
        return find(o, "Deployment", "fraudops-stream")["spec"]["template"]["spec"]["containers"][0]

    def from_volume(kind: str, source: dict):
        def mutate(o):
            volume = keys_volume(o)[1]
            volume.pop("secret")
            volume[kind] = source
        return mutate

    def literal_worker_key(o):
        drop_env(worker(o), "API_KEY")
        worker(o)["env"].append({"name": "API_KEY", "value": "not-a-key"})

    mutants = {
        "no API_KEYS_FILE": lambda o: drop_env(api(o)[1], "API_KEYS_FILE"),
        "API_KEYS_FILE outside any volume": lambda o: _env(api(o)[1])["API_KEYS_FILE"].update(value="/tmp/api-keys"),
        "keys from an emptyDir": from_volume("emptyDir", {}),
        "keys from a ConfigMap": from_volume("configMap", {"name": API_KEYS_SECRET}),
        "keys from another Secret": lambda o: keys_volume(o)[1]["secret"].update(secretName="fraudops-lake"),
        "a subPath mount": lambda o: keys_volume(o)[0].update(subPath=API_KEYS_SECRET_KEY),
        "an optional Secret": lambda o: keys_volume(o)[1]["secret"].update(optional=True),
        "a writable mount": lambda o: keys_volume(o)[0].update(readOnly=False),
        "another key of the Secret": lambda o: keys_volume(o)[1]["secret"].update(
            items=[{"key": "old-keys", "path": API_KEYS_SECRET_KEY}]),
        "a literal worker key": literal_worker_key,
        "the worker without a key": lambda o: drop_env(worker(o), "API_KEY"),
        "the keys Secret in git": lambda o: o.append({"apiVersion": "v1", "kind": "Secret",
                                                      "metadata": {"name": API_KEYS_SECRET},
                                                      "stringData": {API_KEYS_SECRET_KEY: "x score sha256:00"}}),
        "RATE_LIMIT_KEY_HEADER": lambda o: find(o, "ConfigMap", "fraudops-config")["data"].update(
            RATE_LIMIT_KEY_HEADER="x-client-id"),
        "no quota": lambda o: _env(api(o)[1])["RATE_LIMIT_RPS"].update(value="0"),
    }
    refuse_each(objs, mutants, lambda mutant: api_auth_problems(mutant, production=True),
                lambda name: f"{production.name} with {name} passes the API keys check")
    # And production's objects as a laptop overlay: its pods would wait for Secrets a laptop does not have.
    if not api_auth_problems(objs, production=False):
        fail(f"{production.name} passes as a non-production overlay although its pods need the key Secrets")


def _metrics_integrity_problems(policy_objs: list[dict], pushgateway: dict, kube_prometheus: dict) -> list[str]:
    """Nobody can forge the model's metrics: a NetworkPolicy lets only the retraining's pods push to the
    Pushgateway and only Prometheus scrape it; the scrape keeps only ml_model_retrain_* series, under job
    fraudops-retrain whatever a push says; kube-state-metrics does not list Secrets."""
    problems = []
    policy = next((o for o in policy_objs if o.get("kind") == "NetworkPolicy"
                   and selects(o["spec"]["podSelector"], {"app.kubernetes.io/name": "prometheus-pushgateway"})
                   and "Ingress" in o["spec"].get("policyTypes", [])), None)
    allowed = {("airflow", "fraudops-retrain"), ("monitoring", "prometheus")}
    if policy is None:
        problems.append("no NetworkPolicy restricts who reaches the Pushgateway")
    else:
        peers = set()
        for rule in policy["spec"].get("ingress", []):
            if not rule.get("from") or not rule.get("ports"):
                problems.append("a Pushgateway ingress rule admits every peer or every port")
                continue
            for peer in rule["from"]:
                ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
                app = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                peers.add((ns, app))
        if peers != allowed:
            problems.append(f"the Pushgateway admits {sorted(map(str, peers))}, want exactly {sorted(map(str, allowed))}")
    monitor = pushgateway.get("serviceMonitor", {})
    relabel = monitor.get("metricRelabelings", [])
    keeps = [r for r in relabel if r.get("action") == "keep" and r.get("sourceLabels") == ["__name__"]]
    if not keeps or any(k.get("regex") != "ml_model_retrain_.*" for k in keeps):
        problems.append("the Pushgateway's scrape must keep only ml_model_retrain_.* (metricRelabelings keep)")
    if monitor.get("honorLabels") and not any(r.get("targetLabel") == "job" and r.get("replacement") ==
                                              "fraudops-retrain" for r in relabel):
        problems.append("with honorLabels a push chooses its job: set job fraudops-retrain in metricRelabelings")
    collectors = kube_prometheus.get("kube-state-metrics", {}).get("collectors", [])
    if "secrets" in collectors:
        problems.append("kube-state-metrics has the secrets collector (it may list every Secret)")
    return problems


def cmd_metrics_integrity(policy: Path) -> None:
    """The check above on the shipped platform, then each way the metrics could be forged again refused."""
    objs = docs(policy)
    gateway = yaml.safe_load((DEPLOY / "platform/prometheus-pushgateway.values.yaml").read_text(encoding="utf-8"))
    kps = yaml.safe_load((DEPLOY / "platform/kube-prometheus-stack.values.yaml").read_text(encoding="utf-8"))
    found = _metrics_integrity_problems(objs, gateway, kps)
    for problem in found:
        fail(problem)
    if found:
        return

    def rules(o):
        return next(x for x in o[0] if x.get("kind") == "NetworkPolicy")["spec"]["ingress"]

    mutants = {
        "no Pushgateway policy": lambda o: o[0].clear(),
        "a rule for every pod": lambda o: rules(o).append({"ports": [{"port": 9091}]}),
        "the fraudops namespace may push": lambda o: rules(o)[0]["from"].append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "fraudops"}}}),
        "every series kept": lambda o: o[1]["serviceMonitor"].update(metricRelabelings=[]),
        "a push chooses its job": lambda o: o[1]["serviceMonitor"].update(
            metricRelabelings=[r for r in o[1]["serviceMonitor"]["metricRelabelings"] if r.get("targetLabel") != "job"]),
        "kube-state-metrics lists Secrets": lambda o: o[2]["kube-state-metrics"]["collectors"].append("secrets"),
    }
    refuse_each([objs, gateway, kps], mutants, lambda mutant: _metrics_integrity_problems(*mutant),
                lambda name: f"the platform with {name} passes the metrics integrity check")


# Keys whose value is a credential: set from a Secret, never written in the values.
CREDENTIAL_KEY = re.compile(r"(?i)(password|passwd|secretkey|secret_key|token|fernetkey)$")


def _default_credential_problems(values: dict[str, dict]) -> list[str]:
    """No platform chart runs with its default credentials: each password comes from a Secret the values
    name, the charts' built-in users (Airflow's admin/admin, its Postgres's "postgres") are off or take their
    password from a Secret, and no credential is written in a values file."""
    problems = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                if CREDENTIAL_KEY.search(str(k)) and isinstance(v, (str, int)) and str(v).strip():
                    problems.append(f"{path}.{k}: a literal credential in a values file")
                walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")

    for name, doc in values.items():
        walk(doc, name)
    airflow = values.get("airflow.values.yaml", {})
    if airflow.get("webserver", {}).get("defaultUser", {}).get("enabled", True) is not False:
        problems.append("airflow: the chart's default admin user (admin/admin) is created")
    if not airflow.get("data", {}).get("metadataSecretName"):
        problems.append("airflow: its database connection is the chart's default (data.metadataSecretName)")
    if airflow.get("postgresql", {}).get("enabled") and not airflow["postgresql"].get("auth", {}).get("existingSecret"):
        problems.append("airflow: its bundled Postgres runs with the chart's password (postgresql.auth.existingSecret)")
    mlflow = values.get("mlflow.values.yaml", {})
    if mlflow.get("postgresql", {}).get("enabled") and not mlflow["postgresql"].get("auth", {}).get("existingSecret"):
        problems.append("mlflow: its Postgres runs with the chart's password (postgresql.auth.existingSecret)")
    grafana = values.get("kube-prometheus-stack.values.yaml", {}).get("grafana", {}).get("admin", {})
    if not grafana.get("existingSecret"):
        problems.append("grafana: the admin password is the chart's default (grafana.admin.existingSecret)")
    return problems


def cmd_default_credentials() -> None:
    """The check above on the shipped values, then each way back to a default credential refused."""
    values = {p.name: yaml.safe_load(p.read_text(encoding="utf-8")) or {}
              for p in sorted((DEPLOY / "platform").glob("*.values.yaml"))}
    found = _default_credential_problems(values)
    for problem in found:
        fail(problem)
    if found:
        return
    mutants = {
        "Airflow's default admin": lambda v: v["airflow.values.yaml"]["webserver"]["defaultUser"].update(enabled=True),
        "Airflow's default connection": lambda v: v["airflow.values.yaml"]["data"].pop("metadataSecretName"),
        "Airflow's Postgres default password": lambda v: v["airflow.values.yaml"]["postgresql"]["auth"].pop(
            "existingSecret"),
        "MLflow's Postgres default password": lambda v: v["mlflow.values.yaml"]["postgresql"]["auth"].pop(
            "existingSecret"),
        "Grafana's default admin": lambda v: v["kube-prometheus-stack.values.yaml"]["grafana"]["admin"].pop(
            "existingSecret"),
        "a password in the values": lambda v: v["mlflow.values.yaml"]["postgresql"]["auth"].update(
            password="mlflow"),
    }
    refuse_each(values, mutants, _default_credential_problems,
                lambda name: f"the platform with {name} passes the default credentials check")


def _mlflow_policy_problems(objs: list[dict]) -> list[str]:
    """MLflow (no authentication yet) admits only the API and the retraining's pods."""
    policy = next((o for o in objs if o.get("kind") == "NetworkPolicy"
                   and selects(o["spec"]["podSelector"], {"app.kubernetes.io/name": "mlflow"})
                   and "Ingress" in o["spec"].get("policyTypes", [])), None)
    if policy is None:
        return ["no NetworkPolicy restricts who reaches MLflow"]
    problems, peers = [], set()
    for rule in policy["spec"].get("ingress", []):
        if not rule.get("from") or not rule.get("ports"):
            problems.append("an MLflow ingress rule admits every peer or every port")
            continue
        for peer in rule["from"]:
            ns = peer.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
            app = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            peers.add((ns, app))
    allowed = {("fraudops", "fraudops-api"), ("airflow", "fraudops-retrain")}
    if peers and peers != allowed:
        problems.append(f"MLflow admits {sorted(map(str, peers))}, want exactly {sorted(map(str, allowed))}")
    return problems


def cmd_mlflow_policy(path: Path) -> None:
    """The check above on the shipped policy, then each way to open MLflow again refused."""
    objs = docs(path)
    found = _mlflow_policy_problems(objs)
    for problem in found:
        fail(problem)
    if found:
        return

    def rule(o):
        return next(x for x in o if x.get("kind") == "NetworkPolicy")["spec"]["ingress"][0]

    mutants = {
        "no policy": lambda o: o.clear(),
        "every pod": lambda o: rule(o).pop("from"),
        "the stream worker too": lambda o: rule(o)["from"].append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "fraudops"}},
             "podSelector": {"matchLabels": {"app.kubernetes.io/name": "fraudops-stream"}}}),
        "a whole namespace": lambda o: rule(o)["from"].append(
            {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "airflow"}}}),
    }
    refuse_each(objs, mutants, _mlflow_policy_problems, lambda name: f"the MLflow policy with {name} passes")


def cmd_redis_cluster_negative(production: Path) -> None:
    """The Redis Cluster checks refuse each way production's feature store could lose data or availability
    (and pass the overlay as it is)."""
    objs = docs(production)

    def problems(o: list[dict]) -> list[str]:
        before = len(failures)
        cluster = find(o, "RedisCluster", "fraudops-redis")
        if cluster is None:
            fail("no RedisCluster fraudops-redis")
        else:
            _check_redis_cluster(o, cluster, production)
        _check_network_policies(o, production.name)
        found = failures[before:]
        del failures[before:]
        return found

    if problems(objs):
        fail(f"{production.name}: the unmodified overlay fails: {problems(objs)}")
        return

    def spec(o):
        return find(o, "RedisCluster", "fraudops-redis")["spec"]

    def conf(o, text):
        cm = find(o, "ConfigMap", spec(o)["redisLeader"]["redisConfig"]["additionalRedisConfig"])
        cm["data"]["redis-additional.conf"] += text

    def no_bus(o):
        policy = find(o, "NetworkPolicy", "fraudops-redis")
        for rule in policy["spec"]["ingress"]:
            rule["ports"] = [p for p in rule.get("ports", []) if p.get("port") != 16379]

    mutants = {
        "two shards": lambda o: spec(o)["redisLeader"].update(replicas=2),
        "no followers": lambda o: spec(o)["redisFollower"].update(replicas=0),
        "persistence off": lambda o: spec(o).update(persistenceEnabled=False),
        "no leader PDB": lambda o: spec(o)["redisLeader"].pop("pdb"),
        "no follower PDB": lambda o: spec(o)["redisFollower"]["pdb"].update(enabled=False),
        "an unpinned image": lambda o: spec(o)["kubernetesConfig"].update(image="quay.io/opstree/redis:latest"),
        "AOF off": lambda o: conf(o, "appendonly no\n"),
        "eviction": lambda o: conf(o, "maxmemory-policy allkeys-lru\n"),
        "maxmemory at the limit": lambda o: conf(o, "maxmemory 2gb\n"),
        "full coverage required": lambda o: conf(o, "cluster-require-full-coverage yes\n"),
        "one leader in the URL": lambda o: find(o, "ConfigMap", "fraudops-config")["data"].update(
            FEATURE_STORE_URL="redis://fraudops-redis-leader-0.fraudops-redis-leader-headless.fraudops.svc:6379"),
        "no cluster bus in the NetworkPolicy": no_bus,
    }
    refuse_each(objs, mutants, problems, lambda name: f"{production.name} with {name} passes the Redis Cluster checks")


def _admits(policy: dict, port: tuple[str, int], namespace: str, labels: dict, own: str = "fraudops") -> bool:
    """Whether the policy lets a pod with these labels in this namespace reach the port (name, number)."""
    for rule in policy["spec"].get("ingress", []):
        if rule.get("ports") and not any(p.get("port") in port for p in rule["ports"]):
            continue
        if not rule.get("from"):
            return True
        for peer in rule["from"]:
            if "ipBlock" in peer:
                return True  # an address range admits pods of every namespace, and more
            ns, pods = peer.get("namespaceSelector"), peer.get("podSelector")
            in_ns = namespace == own if ns is None else selects(ns, {"kubernetes.io/metadata.name": namespace})
            if in_ns and (pods is None or selects(pods, labels)):
                return True
    return False


def _check_api_network_policy(objs: list[dict], where: str) -> None:
    """The API's two ports: metrics (9102) only for Prometheus; http (8000) for the ingress controller and the
    in-cluster clients (the stream worker, the attack Job), never for other pods of monitoring or elsewhere."""
    api = find(objs, "Deployment", "fraudops-api")
    if api is None:
        return
    labels = api["spec"]["template"]["metadata"]["labels"]
    c = api["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    policy = _policy_for(objs, labels)
    if policy is None:
        fail(f"{where}: no NetworkPolicy restricts ingress to fraudops-api")
        return
    http, metrics = ("http", ports.get("http")), ("metrics", ports.get("metrics"))
    for rule in policy["spec"].get("ingress", []):
        for p in rule.get("ports", []):
            if p.get("port") not in list(ports) + list(ports.values()):
                fail(f"{where}: NetworkPolicy {policy['metadata']['name']} names port {p.get('port')!r}, not one of "
                     f"the API's {sorted(ports)}")
    if not _admits(policy, metrics, *PROMETHEUS_POD):
        fail(f"{where}: Prometheus cannot scrape the API's metrics port")
    if not _admits(policy, http, *INGRESS_CONTROLLER_POD):
        fail(f"{where}: the ingress controller cannot reach the API's http port")
    if _admits(policy, metrics, *INGRESS_CONTROLLER_POD):
        fail(f"{where}: the ingress controller may reach the API's metrics port")
    for name, (ns, pod_labels) in OTHER_PODS.items():
        for port in (http, metrics):
            if _admits(policy, port, ns, pod_labels):
                fail(f"{where}: {name} (namespace {ns}) may reach the API's {port[0]} port")
    attack = _attack_job()["spec"]["template"]["metadata"]["labels"]
    clients = [(w["metadata"]["name"], w["spec"]["template"]["metadata"]["labels"]) for w in _workloads(objs)
               if any(a.startswith("http://fraudops-api.") for c in _pod_spec(w)["containers"] for a in c.get("args", []))]
    for name, pod_labels in clients + [("the attack Job", attack)]:
        if not _admits(policy, http, "fraudops", pod_labels):
            fail(f"{where}: {name} calls the API but NetworkPolicy {policy['metadata']['name']} does not admit it")
    for w in _workloads(objs):
        if _admits(policy, metrics, "fraudops", w["spec"]["template"]["metadata"]["labels"]):
            fail(f"{where}: {w['metadata']['name']} may reach the API's metrics port")
    if not clients:
        fail(f"{where}: no workload calls the API (the stream worker's --api-url)")


def _cluster_issuers() -> dict[str, dict]:
    return {o["metadata"]["name"]: o for p in sorted((DEPLOY / "platform/cert-manager").glob("*.yaml"))
            for o in docs(p) if o.get("kind") == "ClusterIssuer"}


def ingress_problems(objs: list[dict], production: bool) -> list[str]:
    """The Ingress routes only the scoring paths (Exact), with no limit annotation (it would silence the edge
    limits of the controller's http-snippet); in production with a host, TLS for that host, and a certificate
    from a ClusterIssuer of deploy/platform/cert-manager."""
    ing = find(objs, "Ingress", "fraudops-api")
    if ing is None:
        return ["no Ingress fraudops-api"] if production else []  # the local overlay deletes it
    problems = []
    rules = ing["spec"].get("rules", [])
    paths = [(p["path"], p.get("pathType")) for r in rules for p in r.get("http", {}).get("paths", [])]
    if not rules or sorted(paths) != sorted([(p, "Exact") for p in SCORING_PATHS] * len(rules)):
        problems.append(f"Ingress fraudops-api routes {paths}; only {list(SCORING_PATHS)}, pathType Exact")
    for r in rules:
        for p in r.get("http", {}).get("paths", []):
            svc = p["backend"].get("service", {})
            if svc.get("name") != "fraudops-api" or svc.get("port") not in ({"name": "http"}, {"number": 80}):
                problems.append(f"Ingress fraudops-api path {p['path']} goes to {svc}, not fraudops-api's http port")
    if ing["spec"].get("defaultBackend"):
        problems.append("Ingress fraudops-api has a defaultBackend (every other path would reach it)")
    for key in ing["metadata"].get("annotations", {}):
        if re.fullmatch(r"nginx\.ingress\.kubernetes\.io/(limit-rps|limit-rpm|limit-burst-multiplier|[a-z-]*snippet)", key):
            problems.append(f"Ingress fraudops-api has {key}: a limit_req of its own makes nginx drop the edge limits "
                            "of the controller's http-snippet for these paths (deploy/platform/ingress-nginx.values.yaml)")
    if production:
        hosts = [r.get("host") for r in rules]
        tls_hosts = {h for t in ing["spec"].get("tls", []) for h in t.get("hosts", [])}
        if not all(hosts) or not set(hosts) <= tls_hosts or not all(t.get("secretName") for t in ing["spec"].get("tls", [])):
            problems.append(f"Ingress fraudops-api: every rule needs a host with TLS (hosts {hosts}, TLS {sorted(tls_hosts)})")
        issuer = ing["metadata"].get("annotations", {}).get("cert-manager.io/cluster-issuer")
        issuers = _cluster_issuers()
        if issuer not in issuers:
            problems.append(f"Ingress fraudops-api's cert-manager.io/cluster-issuer {issuer!r} is none of "
                            f"deploy/platform/cert-manager's ClusterIssuers {sorted(issuers)}")
        else:
            classes = [s.get("http01", {}).get("ingress", {}).get("ingressClassName")
                       for s in issuers[issuer]["spec"]["acme"]["solvers"]]
            if ing["spec"].get("ingressClassName") not in classes:
                problems.append(f"ClusterIssuer {issuer} solves HTTP-01 through ingress classes {classes}, not the "
                                f"API's {ing['spec'].get('ingressClassName')}")
    return problems


def upstream_name(namespace: str, backend: dict) -> str:
    """ingress-nginx's name of an Ingress backend's upstream, as its locations set $proxy_upstream_name
    (internal/ingress/controller/util.go, upstreamName): <namespace>-<service>-<port number, else port name>."""
    port = backend["service"]["port"]
    return f"{namespace}-{backend['service']['name']}-{port.get('number') or port.get('name')}"


def _snippet(values: dict) -> tuple[dict, str]:
    config = values["controller"]["config"]
    return config, config.get("http-snippet", "")


def _nginx_maps(snippet: str) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """`map SOURCE $VAR { K V; … }` blocks of the snippet: VAR -> (SOURCE, [(K, V), …])."""
    maps = {}
    for m in re.finditer(r"map\s+(\"[^\"]*\"|\S+)\s+\$(\w+)\s*\{(.*?)\n\s*\}", snippet, flags=re.S):
        entries = [tuple(re.match(r"(\"[^\"]*\"|\S+)\s+(.*?)\s*$", e.strip()).groups())
                   for e in m.group(3).split(";") if e.strip()]
        maps[m.group(2)] = (m.group(1).strip('"'), [(k.strip('"'), v.strip('"')) for k, v in entries])
    return maps


EDGE_ZONES = ("fraudops_key", "fraudops_addr", "fraudops_nokey")


def _edge_limits(snippet: str) -> tuple[dict, dict]:
    """zone -> (key variable, rate r/s) of limit_req_zone; zone -> burst of the (nodelay) limit_req lines."""
    zones = {m.group(2): (m.group(1), int(m.group(3))) for m in re.finditer(
        r"limit_req_zone\s+\$(\w+)\s+zone=(\w+):\w+\s+rate=(\d+)r/s\s*;", snippet)}
    limits = {m.group(1): int(m.group(2)) for m in re.finditer(
        r"limit_req\s+zone=(\w+)\s+burst=(\d+)\s+nodelay\s*;", snippet)}
    return zones, limits


def cmd_edge(production: Path) -> None:
    """ingress-nginx's configuration of the edge: TLS only (redirect, HSTS), client addresses from the
    connection, and the API's limits per key, per address and for keyless requests, scoped to the API's
    upstream (the names ingress-nginx gives the production Ingress's backends) and to nothing else."""
    values = yaml.safe_load((DEPLOY / "platform/ingress-nginx.values.yaml").read_text(encoding="utf-8"))
    config, snippet = _snippet(values)
    for key, want in {"use-forwarded-headers": "false", "ssl-redirect": "true", "force-ssl-redirect": "true",
                      "hsts": "true", "hsts-include-subdomains": "true", "limit-req-status-code": "429"}.items():
        if config.get(key) != want:
            fail(f"ingress-nginx config {key}={config.get(key)!r}, want {want!r}")
    if int(config.get("hsts-max-age", 0)) < 15_552_000:
        fail(f"ingress-nginx hsts-max-age {config.get('hsts-max-age')} is under 180 days")
    if re.search(r"\blimit_req_status\b", snippet):
        fail("the http-snippet sets limit_req_status: ingress-nginx writes it from limit-req-status-code, and nginx "
             "refuses the duplicate")
    if re.search(r"\$http_x_|\$cookie_|\$arg_", snippet):
        fail("the http-snippet reads a header, cookie or argument the client chooses: a client could spend another "
             "client's budget")
    maps = _nginx_maps(snippet)
    zones, limits = _edge_limits(snippet)
    if set(zones) != set(EDGE_ZONES) or set(limits) != set(EDGE_ZONES):
        fail(f"edge limits: zones {sorted(zones)} and nodelay limit_req {sorted(limits)}, want {list(EDGE_ZONES)}")
        return
    scope = [(var, src, entries) for var, (src, entries) in maps.items() if src == "$proxy_upstream_name"]
    if len(scope) != 1:
        fail(f"edge limits: want one map of $proxy_upstream_name (the API's scope), found {len(scope)}")
        return
    scope_var, _, entries = scope[0]
    patterns = [k[1:] for k, v in entries if k.startswith("~") and v == "1"]
    if len(patterns) != 1 or dict(entries).get("default") != "0":
        fail(f"edge limits: the scope map must be one regex -> 1, default 0: {entries}")
        return
    scope_re = re.compile(patterns[0])
    objs = docs(production)
    ing = find(objs, "Ingress", "fraudops-api")
    api_upstreams = {upstream_name(ing["metadata"].get("namespace", "fraudops"), p["backend"])
                     for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    others = {f"{s['metadata'].get('namespace', 'fraudops')}-{s['metadata']['name']}-{p.get(k)}"
              for s in objs if s.get("kind") == "Service" and s["metadata"]["name"] != "fraudops-api"
              for p in s["spec"]["ports"] for k in ("name", "port")}
    others |= {"fraudops-cm-acme-http-solver-x7k2p-8089", "monitoring-kube-prometheus-stack-grafana-80", "-", "internal"}
    for name in sorted(api_upstreams):
        if not scope_re.search(name):
            fail(f"edge limits: the scope {scope_re.pattern!r} misses the API's upstream {name} (the limits would "
                 "not apply)")
    for name in sorted(others):
        if scope_re.search(name):
            fail(f"edge limits: the scope {scope_re.pattern!r} also matches {name}")
    # Each zone's key: its map reads the scope first (no key, no count, outside the API).
    want_source = {"fraudops_key": "$http_authorization", "fraudops_addr": None, "fraudops_nokey": "$http_authorization"}
    for zone, (var, _) in zones.items():
        src, _entries = maps.get(var, ("", []))
        if f"${scope_var}" not in src or (want_source[zone] and want_source[zone] not in src):
            fail(f"edge limits: zone {zone} keys on ${var} = map of {src!r}, which is not scoped to the API "
                 f"(${scope_var}) or not on {want_source[zone] or 'the address'}")
        if dict(_entries).get("default") != "":
            fail(f"edge limits: ${var} must default to \"\" (not counted) outside the API")
    rate = {z: zones[z][1] for z in EDGE_ZONES}
    if not rate["fraudops_nokey"] <= rate["fraudops_key"] <= rate["fraudops_addr"]:
        fail(f"edge limits: want keyless ≤ per key ≤ per address, got {rate}")
    print(f"scope {scope_re.pattern} covers {sorted(api_upstreams)}; per key {rate['fraudops_key']} r/s "
          f"(burst {limits['fraudops_key']}), per address {rate['fraudops_addr']} r/s (burst {limits['fraudops_addr']}), "
          f"keyless {rate['fraudops_nokey']} r/s (burst {limits['fraudops_nokey']}), per controller pod")


# The live check's limits: no refill during the test (1 r/m), small bursts (burst + 1 requests pass).
LIVE_BURST = {"fraudops_key": 5, "fraudops_addr": 12, "fraudops_nokey": 2}


def cmd_edge_live(binary: str, production: Path) -> None:
    """The controller's http-snippet in a real nginx, inside a server built as ingress-nginx's template builds
    them (limit_req_status from limit-req-status-code, $proxy_upstream_name set per server and per location,
    the API's locations from the production Ingress). Only the rates and bursts are swapped for small ones so
    the limits are reached in a few requests. Per key, per address and keyless limits apply to the API's
    locations and to nothing else; a long token counts only per address."""
    import http.client
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    values = yaml.safe_load((DEPLOY / "platform/ingress-nginx.values.yaml").read_text(encoding="utf-8"))
    config, snippet = _snippet(values)
    zones, limits = _edge_limits(snippet)
    if set(limits) != set(LIVE_BURST):
        fail(f"edge limits {sorted(limits)} are not {sorted(LIVE_BURST)} (run the edge check)")
        return
    test_snippet = re.sub(r"rate=\d+r/s", "rate=1r/m", snippet)
    for zone, burst in LIVE_BURST.items():
        test_snippet = re.sub(rf"(limit_req\s+zone={zone}\s+burst=)\d+", rf"\g<1>{burst}", test_snippet)
    ing = find(docs(production), "Ingress", "fraudops-api")
    locations = {p["path"]: upstream_name(ing["metadata"].get("namespace", "fraudops"), p["backend"])
                 for r in ing["spec"]["rules"] for p in r["http"]["paths"]}
    other = "fraudops-fraudops-retrain-trigger-8080"

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    port, backend = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="fraudops-nginx-"))
    (work / "snippet.conf").write_text(test_snippet, encoding="utf-8")
    location = "\n".join(
        f"        location = {path} {{\n            set $proxy_upstream_name \"{name}\";\n"
        f"            proxy_pass http://127.0.0.1:{backend};\n        }}" for path, name in
        list(locations.items()) + [("/other", other)])
    temp = "\n".join(f"    {d}_temp_path {work}/{d};" for d in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    (work / "nginx.conf").write_text(f"""
pid {work}/nginx.pid;
error_log {work}/error.log notice;
worker_processes 2;
events {{ worker_connections 256; }}
http {{
{temp}
    access_log off;
    uninitialized_variable_warn off;
    limit_req_status {config['limit-req-status-code']};
    include {work}/snippet.conf;
    server {{
        listen 127.0.0.1:{backend};
        location / {{ return 200 "scored\\n"; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        listen 127.0.0.2:{port};
        listen 127.0.0.3:{port};
        set $proxy_upstream_name "-";
{location}
    }}
}}
""", encoding="utf-8")
    base = [binary, "-p", str(work), "-e", str(work / "error.log"), "-c", str(work / "nginx.conf")]
    test = subprocess.run(base + ["-t"], capture_output=True, text=True)
    if test.returncode != 0:
        fail(f"nginx -t refuses the http-snippet:\n{test.stderr}")
        shutil.rmtree(work, ignore_errors=True)
        return
    print(test.stderr.strip().splitlines()[-1])
    proc = subprocess.Popen(base + ["-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        if proc.poll() is not None:
            fail(f"nginx exited: {(work / 'error.log').read_text()[-2000:]}")
            return
        status = int(config["limit-req-status-code"])
        api_path = SCORING_PATHS[0]

        def statuses(n: int, path: str, source: str, token: str | None) -> list[int]:
            conn = http.client.HTTPConnection(source, port, timeout=5, source_address=(source, 0))
            got = []
            for _ in range(n):
                conn.request("POST", path, body=b"{}", headers={"Authorization": token} if token else {})
                response = conn.getresponse()
                response.read()
                got.append(response.status)
            conn.close()
            return got

        def expect(what: str, got: list[int], want: list[int]) -> None:
            if got != want:
                fail(f"edge limits, {what}: got {got}, want {want}")
            else:
                print(f"{what}: {len(want)} requests, {want.count(200)} passed, {want.count(status)} refused ({status})")

        k, a, n = (LIVE_BURST[z] + 1 for z in EDGE_ZONES)  # requests a fresh bucket lets through
        expect("one key on the API", statuses(k + 1, api_path, "127.0.0.1", "Bearer key-a"), [200] * k + [status])
        expect("a second key, same address", statuses(k, SCORING_PATHS[-1], "127.0.0.1", "Bearer key-b"), [200] * k)
        left = a - 2 * k
        expect("a third key once the address is spent", statuses(left + 1, api_path, "127.0.0.1", "Bearer key-c"),
               [200] * left + [status])
        expect("the same key on another Ingress", statuses(3 * a, "/other", "127.0.0.1", "Bearer key-a"), [200] * 3 * a)
        expect("no key, from another address", statuses(n + 1, api_path, "127.0.0.2", None), [200] * n + [status])
        expect("a key from that address", statuses(1, api_path, "127.0.0.2", "Bearer key-d"), [200])
        long_token = "Bearer " + "x" * 300
        expect("a 300-character token (per address only)", statuses(a + 1, api_path, "127.0.0.3", long_token),
               [200] * a + [status])
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def cmd_platform() -> None:
    """The ArgoCD platform: every chart pinned to a version, from a repository the project allows, into a
    namespace the project allows; cert-manager among them with its issuers after it; the cluster-scoped kinds
    the issuers need are whitelisted."""
    project = docs(DEPLOY / "argocd/project.yaml")[0]["spec"]
    repos = set(project["sourceRepos"])
    namespaces = {d["namespace"] for d in project["destinations"]}
    cluster_kinds = {(k["group"], k["kind"]) for k in project.get("clusterResourceWhitelist", [])}
    apps = {}
    for path in sorted((DEPLOY / "argocd/platform").glob("*.yaml")):
        app = docs(path)[0]
        apps[app["metadata"]["name"]] = app
        spec = app["spec"]
        for src in spec.get("sources") or [spec["source"]]:
            if src["repoURL"] not in repos:
                fail(f"{path.name}: {src['repoURL']} is not in the project's sourceRepos")
            if "chart" in src and not re.fullmatch(r"v?\d+\.\d+\.\d+", str(src.get("targetRevision", ""))):
                fail(f"{path.name}: chart {src['chart']} is not pinned to a version ({src.get('targetRevision')!r})")
            if "path" in src and not (REPO / src["path"]).is_dir():
                fail(f"{path.name}: path {src['path']} does not exist")
        if spec["destination"]["namespace"] not in namespaces:
            fail(f"{path.name}: namespace {spec['destination']['namespace']} is not a destination of the project")
    wave = lambda a: int(a["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", 0))  # noqa: E731
    cm = next((a for a in apps.values() if any(s.get("chart") == "cert-manager"
                                                for s in a["spec"].get("sources") or [a["spec"]["source"]])), None)
    issuer = next((a for a in apps.values() if (a["spec"].get("source") or {}).get("path") == "deploy/platform/cert-manager"),
                  None)
    if cm is None or issuer is None:
        fail("no ArgoCD platform Application for the cert-manager chart and one for deploy/platform/cert-manager")
    elif wave(issuer) <= wave(cm):
        fail("the cert-manager issuers must sync in a later wave than the chart (their CRD comes with it)")
    if ("cert-manager.io", "ClusterIssuer") not in cluster_kinds:
        fail("the project does not whitelist cert-manager.io/ClusterIssuer")
    for name, obj in _cluster_issuers().items():
        acme = obj["spec"]["acme"]
        if not acme["server"].startswith("https://acme-") or not acme.get("email"):
            fail(f"ClusterIssuer {name}: ACME server {acme['server']!r}, email {acme.get('email')!r}")
    print(f"{len(apps)} platform applications")


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


def _check_single_redis(objs: list[dict], path: Path) -> str | None:
    """The single Redis (local and seed-attack): durable, bounded, never evicting, probed, locked down; its
    Service and the URL every scorer uses. Returns a summary, or None after a failure that stops the rest."""
    where = f"{path.name}: fraudops-redis"
    found = redis_objects(objs, where)
    if found is None:
        return None
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
    return f"redis {redis['image']}, maxmemory {conf['maxmemory']} of {limit}, store {url}"


def _check_redis_cluster(objs: list[dict], cluster: dict, path: Path) -> str | None:
    """The production Redis Cluster (redis-operator): at least 3 shards with a follower each, persistence with
    a volume per pod, a PodDisruptionBudget per role, the single Redis's durability and bounds in its extra
    config (AOF fsynced every second, noeviction, maxmemory within 60% of the limit), a pinned image with
    requests and limits, and FEATURE_STORE_URL naming every leader (several URLs: the store's cluster client)."""
    where = f"{path.name}: RedisCluster fraudops-redis"
    spec = cluster["spec"]
    shards = spec.get("redisLeader", {}).get("replicas", spec.get("clusterSize"))
    followers = spec.get("redisFollower", {}).get("replicas", spec.get("clusterSize"))
    if not isinstance(shards, int) or shards < 3:
        fail(f"{where}: {shards} shards; a Redis Cluster needs at least 3 leaders to agree on a failover")
        return None
    if followers != shards:
        fail(f"{where}: {followers} followers for {shards} leaders; each shard needs a follower to fail over to")
    if spec.get("persistenceEnabled") is not True or not spec.get("storage", {}).get("volumeClaimTemplate", {}) \
            .get("spec", {}).get("resources", {}).get("requests", {}).get("storage"):
        fail(f"{where}: persistence must be on with a volume claim that requests storage")
    for role in ("redisLeader", "redisFollower"):
        pdb = spec.get(role, {}).get("pdb", {})
        if not pdb.get("enabled") or not (pdb.get("maxUnavailable") == 1 or pdb.get("minAvailable")):
            fail(f"{where}: {role} needs a PodDisruptionBudget (pdb.enabled, maxUnavailable 1)")
    k8s = spec.get("kubernetesConfig", {})
    image = k8s.get("image", "")
    if ":" not in image or image.endswith(":latest"):
        fail(f"{where}: image {image!r} is not pinned")
    limit = k8s.get("resources", {}).get("limits", {}).get("memory")
    if not all(k8s.get("resources", {}).get(k, {}).get(r) for k in ("requests", "limits") for r in ("cpu", "memory")):
        fail(f"{where}: cpu/memory requests and limits are required")
    names = {spec.get(role, {}).get("redisConfig", {}).get("additionalRedisConfig") for role in ("redisLeader",
                                                                                               "redisFollower")}
    if len(names) != 1 or None in names:
        fail(f"{where}: leaders and followers must run the same additionalRedisConfig ConfigMap (got {names})")
        return None
    cm = find(objs, "ConfigMap", names.pop())
    conf = redis_conf((cm or {}).get("data", {}).get("redis-additional.conf", ""))
    for key, want in {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction",
                      "aof-load-truncated": "yes", "cluster-require-full-coverage": "no"}.items():
        if conf.get(key) != want:
            fail(f"{where}: redis-additional.conf {key} {conf.get(key)!r}, want {want!r}")
    if "maxmemory" not in conf or limit is None or not 0 < parse_quantity(conf["maxmemory"]) <= 0.6 * parse_quantity(limit):
        fail(f"{where}: maxmemory {conf.get('maxmemory')!r} must be set and at most 60% of the limit {limit}")
    ns = cluster["metadata"].get("namespace", "fraudops")
    want = [f"redis://fraudops-redis-leader-{i}.fraudops-redis-leader-headless.{ns}.svc:6379" for i in range(shards)]
    config = find(objs, "ConfigMap", "fraudops-config")
    url = (config or {}).get("data", {}).get("FEATURE_STORE_URL", "")
    if url.split(",") != want:
        fail(f"{path.name}: FEATURE_STORE_URL {url!r} must name every leader: {','.join(want)}")
    if find(objs, "StatefulSet", "fraudops-redis") is not None:
        fail(f"{path.name}: the single Redis must go when the Redis Cluster replaces it")
    return f"Redis Cluster {shards} shards x {1 + followers // shards} ({image}), maxmemory {conf.get('maxmemory')} of {limit} each"


def redis_cluster_conf(objs: list[dict]) -> str | None:
    """The redis.conf a production shard runs, for redis-live: the operator's cluster settings, then the
    extra config of the custom resource."""
    cluster = find(objs, "RedisCluster", "fraudops-redis")
    if cluster is None:
        return None
    name = cluster["spec"].get("redisLeader", {}).get("redisConfig", {}).get("additionalRedisConfig")
    cm = find(objs, "ConfigMap", name or "")
    extra = (cm or {}).get("data", {}).get("redis-additional.conf")
    if extra is None:
        return None
    return "cluster-enabled yes\ncluster-config-file nodes.conf\ndir /data\n" + extra


ACL_USERS = {"fraudops-scorer", "fraudops-labels", "fraudops-exporter"}
STORE_USER_OF = {"fraudops-api": "fraudops-scorer", "fraudops-stream": "fraudops-scorer",
                 "fraudops-labels": "fraudops-labels"}


def _redis_auth_problems(objs: list[dict]) -> list[str]:
    """Nobody reaches the store without a user: Redis loads an ACL whose default user is off and whose
    workload users carry no literal password (the pod renders the hashes from the Secret fraudops-redis-users;
    in a cluster the operator mounts the rendered ACL Secret), and every workload that loads
    FEATURE_STORE_URL logs in as its own user with a password file from a mounted Secret."""
    problems = []
    sts = find(objs, "StatefulSet", "fraudops-redis")
    cluster = find(objs, "RedisCluster", "fraudops-redis")
    if sts is not None:
        found = redis_objects(objs, "fraudops-redis")
        if found is None:
            return ["fraudops-redis: no redis.conf"]
        _, redis, conf_text, _ = found
        conf = redis_conf(conf_text)
        if conf.get("protected-mode") != "yes":
            problems.append(f"redis.conf protected-mode {conf.get('protected-mode')!r}, want 'yes'")
        aclfile = conf.get("aclfile")
        if not aclfile:
            problems.append("redis.conf has no aclfile: Redis has no users, anyone admitted may do anything")
        cm = next((o for o in objs if o.get("kind") == "ConfigMap" and "redis-users.acl" in o.get("data", {})), None)
        acl = (cm or {}).get("data", {}).get("redis-users.acl", "")
        users = {line.split()[1]: line for line in acl.splitlines() if line.startswith("user ")}
        if "user default off" not in acl.splitlines() and not users.get("default", "").startswith("user default off"):
            problems.append("redis-users.acl: the default user must be off")
        for name in ACL_USERS:
            line = users.get(name, "")
            if f"#PASSWORD_{name.split('-')[1].upper()}" not in line.split():
                problems.append(f"redis-users.acl: user {name} missing or without its PASSWORD_ placeholder")
            if re.search(r"(^|\s)>\S", line) or "nopass" in line.split():
                problems.append(f"redis-users.acl: user {name} has a literal password or nopass")
        pod = sts["spec"]["template"]["spec"]
        secret_volumes = {v["name"] for v in pod.get("volumes", [])
                          if v.get("secret", {}).get("secretName") == "fraudops-redis-users"}
        init = [c for c in pod.get("initContainers", [])
                if any(m["name"] in secret_volumes for m in c.get("volumeMounts", []))]
        acl_dir = aclfile.rsplit("/", 1)[0] if aclfile else None
        if not init or not any(m["mountPath"] == acl_dir for m in redis.get("volumeMounts", [])):
            problems.append("no init container renders the aclfile from the Secret fraudops-redis-users into "
                            "a volume Redis mounts")
    elif cluster is not None:
        if not cluster["spec"].get("acl", {}).get("secret", {}).get("secretName"):
            problems.append("RedisCluster fraudops-redis: no acl.secret (its users, the default user off)")
    else:
        return ["no feature store"]
    for w in objs:
        if w.get("kind") != "Deployment":
            continue
        name = w["metadata"]["name"]
        pod = w["spec"]["template"]["spec"]
        for c in pod["containers"]:
            if not any(e.get("configMapRef", {}).get("name") == "fraudops-config" for e in c.get("envFrom", [])):
                continue
            env = _env(c)
            user = env.get("FEATURE_STORE_USERNAME", {}).get("value")
            if user != STORE_USER_OF.get(name, "?"):
                problems.append(f"{name} logs in to the store as {user!r}, want {STORE_USER_OF.get(name)!r}")
            path = env.get("FEATURE_STORE_PASSWORD_FILE", {}).get("value", "")
            mount = next((m for m in c.get("volumeMounts", []) if path.startswith(m["mountPath"] + "/")), None)
            volume = next((v for v in pod.get("volumes", []) if mount and v["name"] == mount["name"]), None)
            if volume is None or volume.get("secret", {}).get("secretName") != "fraudops-redis-users":
                problems.append(f"{name}: FEATURE_STORE_PASSWORD_FILE {path!r} is not a file of the Secret "
                                "fraudops-redis-users")
            if "FEATURE_STORE_PASSWORD" in env or re.search(r"redis://[^/]*@", str(
                    (find(objs, "ConfigMap", "fraudops-config") or {}).get("data", {}).get("FEATURE_STORE_URL"))):
                problems.append(f"{name}: a store password in the environment or the URL")
    return problems


def cmd_redis_auth_negative(local: Path, production: Path) -> None:
    """The check above refuses each way the store could be open again (and passes the overlays as they are)."""
    import copy

    for path in (local, production):
        found = _redis_auth_problems(docs(path))
        if found:
            fail(f"{path.name}: the unmodified overlay fails: {found}")
            return
    objs = docs(local)

    def conf(o, edit):
        cm = next(x for x in o if x.get("kind") == "ConfigMap" and "redis.conf" in x.get("data", {}))
        cm["data"]["redis.conf"] = edit(cm["data"]["redis.conf"])

    def acl(o, edit):
        cm = next(x for x in o if x.get("kind") == "ConfigMap" and "redis-users.acl" in x.get("data", {}))
        cm["data"]["redis-users.acl"] = edit(cm["data"]["redis-users.acl"])

    def container(o, name):
        return find(o, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]

    def literal_password(o):
        container(o, "fraudops-api")["env"].append({"name": "FEATURE_STORE_PASSWORD", "value": "hunter2"})

    mutants = {
        "no aclfile": lambda o: conf(o, lambda t: re.sub(r"(?m)^aclfile .*$", "", t)),
        "protected-mode no": lambda o: conf(o, lambda t: t.replace("protected-mode yes", "protected-mode no")),
        "the default user on": lambda o: acl(o, lambda t: t.replace("user default off", "user default on nopass ~* +@all")),
        "a literal password": lambda o: acl(o, lambda t: t.replace("#PASSWORD_SCORER", ">scorer")),
        "no init container": lambda o: find(o, "StatefulSet", "fraudops-redis")["spec"]["template"]["spec"].pop(
            "initContainers"),
        "the API without a user": lambda o: container(o, "fraudops-api").update(
            env=[e for e in container(o, "fraudops-api")["env"] if e["name"] != "FEATURE_STORE_USERNAME"]),
        "the label consumer as a scorer": lambda o: _env(container(o, "fraudops-labels"))[
            "FEATURE_STORE_USERNAME"].update(value="fraudops-scorer"),
        "a password in the environment": literal_password,
        "a password in the URL": lambda o: find(o, "ConfigMap", "fraudops-config")["data"].update(
            FEATURE_STORE_URL="redis://fraudops-scorer:pw@fraudops-redis.fraudops.svc:6379/0"),
    }
    prod = docs(production)
    refuse_each(objs, mutants, _redis_auth_problems,
                lambda name: f"{local.name} with {name} passes the Redis authentication check")
    mutant = copy.deepcopy(prod)
    find(mutant, "RedisCluster", "fraudops-redis")["spec"].pop("acl", None)
    found = _redis_auth_problems(mutant)
    if found:
        print(f"refused, a Redis Cluster without users: {found[0]}")
    else:
        fail(f"{production.name} with a Redis Cluster without users passes the Redis authentication check")


def cmd_feature_store(paths: list[Path]) -> None:
    """Redis for the feature store (durable, bounded, never evicting), its address in the ConfigMap, the
    fraud-labels topic and the label consumer, on the rendered output of every overlay."""
    for path in paths:
        objs = docs(path)
        cluster = find(objs, "RedisCluster", "fraudops-redis")
        summary = (_check_redis_cluster(objs, cluster, path) if cluster is not None
                   else _check_single_redis(objs, path))
        if summary is None:
            continue
        for problem in _redis_auth_problems(objs):
            fail(f"{path.name}: {problem}")
        config = find(objs, "ConfigMap", "fraudops-config")
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
        print(f"{path.name}: {summary}, labels on {labels_topic} ({group})")


def cmd_redis_live(binary: str, rendered: Path) -> None:
    """The deployed redis.conf in a real redis-server: it loads, AOF is on, a script's writes survive a
    SIGKILL and a restart, and at maxmemory a write is refused (noeviction) while reads still answer.
    Only `dir` is swapped for a temporary directory (there is no /data here)."""
    import signal
    import socket
    import subprocess
    import tempfile
    import time

    objs = docs(rendered)
    conf_text = redis_cluster_conf(objs)
    cluster = conf_text is not None
    if not cluster:
        found = redis_objects(objs, f"{rendered.name}: fraudops-redis")
        if found is None:
            return
        conf_text = found[2]
    work = Path(tempfile.mkdtemp(prefix="fraudops-redis-"))
    (work / "data").mkdir()
    conf_file = work / "redis.conf"
    conf_text = re.sub(r"(?m)^dir .*$", f"dir {work / 'data'}", conf_text)
    # The deployed users, rendered as the pod's init container does (test passwords), plus an administrator
    # for this check's own commands (not deployed).
    acl_template = next((o["data"]["redis-users.acl"] for o in objs
                         if o.get("kind") == "ConfigMap" and "redis-users.acl" in o.get("data", {})), None)
    if acl_template is not None and not cluster:
        import hashlib
        lines = [line.strip() for line in acl_template.splitlines()
                 if line.strip() and not line.strip().startswith("#")]
        text = "\n".join(lines)
        for name in ("SCORER", "LABELS", "EXPORTER"):
            text = text.replace(f"PASSWORD_{name}", hashlib.sha256(f"{name.lower()}-pw".encode()).hexdigest())
        (work / "users.acl").write_text(text + "\nuser check on >check-pw ~* &* +@all\n", encoding="utf-8")
        conf_text = re.sub(r"(?m)^aclfile .*$", f"aclfile {work / 'users.acl'}", conf_text)
    users = acl_template is not None and not cluster
    conf_file.write_text(conf_text, encoding="utf-8")
    # A free port; a cluster node's bus is its port + 10000, so at most 55535.
    port = 65536
    while port > 55535:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    cli_bin = str(Path(binary).with_name("redis-cli"))

    def cli(*args: str, user: str | None = "check") -> str:
        name = user if user == "check" else f"fraudops-{user}"
        login = ["--user", name, "--pass", f"{user}-pw", "--no-auth-warning"] if users and user else []
        out = subprocess.run([cli_bin, "-h", "127.0.0.1", "-p", str(port), *login, *args], capture_output=True,
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

    def cluster_ok() -> None:
        # A restarted node that owns slots waits a moment before it serves them again (its rejoin delay).
        for _ in range(150):
            if "cluster_state:ok" in cli("cluster", "info"):
                return
            time.sleep(0.1)
        raise RuntimeError("the shard's cluster state did not become ok (its slots, from nodes.conf)")

    proc = None
    try:
        proc = start()
        if cluster:
            # One shard owning every slot (the operator's CLUSTER MEET and slot assignment, in small).
            cli("cluster", "addslotsrange", "0", "16383")
            cluster_ok()
        if users:
            # Nobody without a user; each user its job only (the full matrix: fraudops-store's redis_acl.rs).
            if "NOAUTH" not in cli("ping", user=None):
                fail("redis-server answers without a user (the default user must be off)")
            if "used_memory" not in cli("info", "memory", user="exporter"):
                fail("redis-server: the exporter's user cannot read INFO")
            for user in ("scorer", "labels", "exporter"):
                if "NOPERM" not in cli("flushall", user=user):
                    fail(f"redis-server: {user} may FLUSHALL")
                if "NOPERM" not in cli("config", "set", "maxmemory", "1", user=user):
                    fail(f"redis-server: {user} may CONFIG SET")
        for key, want in {"appendonly": "yes", "appendfsync": "everysec", "maxmemory-policy": "noeviction"}.items():
            got = cli("config", "get", key).splitlines()
            if got[-1:] != [want]:
                fail(f"redis-server runs {key}={got[-1:]}, want {want}")
        if "aof_enabled:1" not in cli("info", "persistence"):
            fail("redis-server: AOF is not enabled")
        # An update as the scorers make them: one Lua script, several keys, each with a 37-day TTL.
        script = ("redis.call('HINCRBY', KEYS[1], 'n', 1) redis.call('EXPIRE', KEYS[1], ARGV[1]) "
                  "redis.call('HINCRBY', KEYS[2], 'n', 1) redis.call('EXPIRE', KEYS[2], ARGV[1]) return 1")
        # Hash-tagged: one slot, as every feature store script call.
        cli("eval", script, "2", "check:{c}:customer", "check:{c}:terminal", str(37 * 86400))
        # everysec may hold a write back while a background fsync runs (up to ~2 s: the "last second" the
        # docs allow); the check is that what reached the file survives, so wait until the buffer is empty.
        for _ in range(40):
            if "aof_buffer_length:0" in cli("info", "persistence"):
                break
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)  # a crash, not a shutdown: no final fsync
        proc.wait(timeout=10)
        proc = start()
        if cluster:
            cluster_ok()
        if cli("hget", "check:{c}:customer", "n") != "1" or cli("hget", "check:{c}:terminal", "n") != "1":
            fail("redis-server: a script's writes did not survive a crash and restart (AOF)")
        ttl = cli("ttl", "check:{c}:terminal")
        if not ttl.isdigit() or int(ttl) <= 0:
            fail(f"redis-server: the key's TTL was lost over the restart (ttl {ttl})")
        # noeviction at the ceiling: writes refused, nothing evicted, reads answer.
        cli("config", "set", "maxmemory", "1")
        refused = cli("eval", script, "2", "check:{c}:customer", "check:{c}:terminal", "60")
        if "OOM" not in refused:
            fail(f"redis-server: a write at maxmemory was not refused: {refused!r}")
        if cli("hget", "check:{c}:customer", "n") != "1":
            fail("redis-server: at maxmemory a key was evicted or unreadable")
        if not failures:
            print(f"{'a Redis Cluster shard' if cluster else 'redis.conf'} loads in "
                  f"{cli('info', 'server').split('redis_version:')[1].split()[0]}; "
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
    """What the fraudops deployment exports: the contract, the archive's names (kept apart because the API's
    contract test reads metrics-contract.txt), and the feature store's redis_exporter sidecar's (metrics-redis.txt:
    deployed in the base with Redis, read by recording.yaml like the project's own series)."""
    return (read_list(MONITORING / "metrics-contract.txt") | read_list(MONITORING / "metrics-lake.txt")
            | read_list(MONITORING / "metrics-redis.txt"))


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
    # Who the API's keys refused and why (api_client_refusals_total, RUNBOOK.md "401, 403 and 429 from the API").
    if "api_client_refusals_total" not in used:
        fail("dashboard: no panel shows api_client_refusals_total")
    # Drift, and the retraining's age (pushed by `fraudops register`), in the Model quality row.
    for needed in ("ml_model_score_psi", "ml_model_feature_psi", "fraudops:model_retrain_age_seconds"):
        if needed not in used:
            fail(f"dashboard: no panel shows {needed}")
    # The feature store and labels row (issue 30): how predictions got their features, the share FeatureStoreDegraded
    # watches, Redis's memory against maxmemory, the store's errors per client, labels against the traffic.
    for needed in ("ml_model_feature_source_total", "fraudops:feature_store_unavailable_ratio:rate2m",
                   "fraudops:redis_memory_used_ratio", "fraudops:redis_up", "ml_model_feature_store_errors_total",
                   "stream_feature_store_errors_total", "fraudops_labels_applied_total",
                   "fraudops:model_predictions:rate1h"):
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


class _WebhookSink:
    """A local HTTP server that records every POST (path, JSON body): the chat webhooks' stand-in."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.received: list[tuple[str, dict]] = []
        received = self.received

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, json.loads(body or b"{}")))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def titles(self, path: str) -> list[str]:
        """The notification titles (Slack attachments) posted to `path`, in order."""
        return [a.get("title", "") for p, b in list(self.received) if p == path for a in b.get("attachments", [])]

    def close(self) -> None:
        self.server.shutdown()


class _Alertmanager:
    """The real Alertmanager on alertmanager.yaml UNCHANGED, in a temporary working directory whose secrets/ files
    point the chat receivers at `sink_url` + `prefix` (/admin, /oncall): what the drill does. Started on a free
    port, clustering off; stopped by its PID."""

    def __init__(self, binary: str, sink_url: str, prefix: str = "") -> None:
        import socket
        import subprocess
        import tempfile
        import time
        import urllib.request

        self.work = Path(tempfile.mkdtemp(prefix="fraudops-am-"))
        (self.work / "secrets").mkdir()
        (self.work / "secrets/admin-chat-url").write_text(f"{sink_url}{prefix}/admin\n")
        (self.work / "secrets/oncall-chat-url").write_text(f"{sink_url}{prefix}/oncall\n")
        (self.work / "secrets/smtp-password").write_text("not-a-real-password\n")
        # A fresh random token for this throwaway Alertmanager (the config only needs the file to exist).
        (self.work / "secrets/retrain-trigger-token").write_text(token_hex(16) + "\n")
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.root = f"http://127.0.0.1:{port}"
        self.base = f"{self.root}/api/v2"
        self.log = (self.work / "alertmanager.log").open("w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={MONITORING / 'alertmanager/alertmanager.yaml'}",
             f"--storage.path={self.work / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
             "--cluster.listen-address=", "--log.level=warn"],
            cwd=self.work, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{self.base}/status", timeout=1)
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise RuntimeError(f"alertmanager did not start: {tail}")

    def log_tail(self) -> str:
        return (self.work / "alertmanager.log").read_text(encoding="utf-8", errors="replace")[-2000:]

    def post(self, alerts: list[dict]) -> None:
        import urllib.request

        req = urllib.request.Request(f"{self.base}/alerts", data=json.dumps(alerts).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        urllib.request.urlopen(req, timeout=5)

    def alerts(self) -> list[dict]:
        import urllib.request

        return json.load(urllib.request.urlopen(f"{self.base}/alerts", timeout=5))

    def metric(self, sample: str) -> float | None:
        """The value of one exposition line of /metrics, e.g. alertmanager_notifications_total{integration="webhook"}."""
        import urllib.request

        text = urllib.request.urlopen(f"{self.root}/metrics", timeout=5).read().decode()
        for line in text.splitlines():
            if line.startswith(sample + " "):
                return float(line.split()[-1])
        return None

    def stop(self) -> None:
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)


def _rfc3339(offset_seconds: float = 0) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + offset_seconds))


def cmd_alertmanager_live(binary: str) -> None:
    """Run the real Alertmanager on alertmanager.yaml UNCHANGED, with only the secrets/ files pointing at a local
    webhook sink (what the drill does): the admin alert must reach the admin chat URL, and HighCPUUsage of the
    same namespace must be inhibited."""
    import time

    sink = _WebhookSink()
    try:
        am = _Alertmanager(binary, sink.url)
    except RuntimeError as e:
        sink.close()
        fail(str(e))
        return
    try:
        now = _rfc3339()
        am.post([
            {"labels": {"alertname": "AdminNotification_MaxScaleHighCPU", "severity": "critical", "notify": "admin",
                        "namespace": "fraudops"},
             "annotations": {"summary": "fraudops-api runs at its replica maximum", "description": "check"},
             "startsAt": now},
            {"labels": {"alertname": "HighCPUUsage", "severity": "warning", "namespace": "fraudops",
                        "pod": "fraudops-api-a"},
             "annotations": {"summary": "hot pod", "description": "check"}, "startsAt": now},
        ])
        time.sleep(0.5)
        state = {a["labels"]["alertname"]: a["status"] for a in am.alerts()}
        if state.get("HighCPUUsage", {}).get("state") != "suppressed" or not state["HighCPUUsage"].get("inhibitedBy"):
            fail(f"HighCPUUsage is not inhibited by the admin alert: {state.get('HighCPUUsage')}")
        if state.get("AdminNotification_MaxScaleHighCPU", {}).get("state") != "active":
            fail(f"admin alert is not active: {state.get('AdminNotification_MaxScaleHighCPU')}")
        deadline = time.time() + 45  # route group_wait is 10 s
        while time.time() < deadline and not sink.titles("/admin"):
            time.sleep(0.5)
        titles = sink.titles("/admin")
        if not titles:
            fail(f"no notification reached the admin webhook within 45 s; log: {am.log_tail()}")
        elif not titles[0].startswith("[FIRING:1] AdminNotification_MaxScaleHighCPU"):
            fail(f"unexpected admin notification title {titles[0]!r}")
        else:
            print(f"admin webhook got: {titles[0]}")
        if any(p == "/oncall" and "HighCPUUsage" in json.dumps(b) for p, b in sink.received):
            fail("the inhibited HighCPUUsage was notified to on-call")
    finally:
        am.stop()
        sink.close()


# The feature-store outage holds the model alerts (issue 30): who holds, who is held.
# Only the outage the scores saw: FeatureStoreDown also fires for a Redis that is merely not scraped, and a
# setup without a monitored Redis must still retrain on real drift (scripts/test-retrain-loop.sh).
FEATURE_STORE_SOURCES = ("FeatureStoreDegraded",)
MODEL_ALERTS = ("ScoreDistributionDrift", "ModelQualityDegraded")
# kube-prometheus-stack's Prometheus puts this external label on every alert it sends.
PROMETHEUS_LABEL = "monitoring/kube-prometheus-stack-prometheus"


def _tested_alert_labels(alertname: str) -> dict[str, str]:
    """The labels a rule gives its firing alert, as its promtool test in deploy/monitoring/tests asserts them (the
    first exp_alerts naming it): exactly what Alertmanager receives from the deployed rule, but for Prometheus's
    external labels."""
    for path in sorted((MONITORING / "tests").glob("*.yaml")):
        for test in yaml.safe_load(path.read_text(encoding="utf-8")).get("tests", []):
            for case in test.get("alert_rule_test", []):
                if case["alertname"] == alertname and case.get("exp_alerts"):
                    labels = case["exp_alerts"][0].get("exp_labels", {})
                    return {"alertname": alertname, **{k: str(v) for k, v in labels.items()}}
    raise KeyError(f"no promtool test in deploy/monitoring/tests expects {alertname} to fire")


def cmd_alertmanager_inhibit(binary: str) -> None:
    """While a feature-store alert fires, the model alerts are held, so the fraudops-retrain route never gets them:
    on real Alertmanagers with alertmanager.yaml UNCHANGED (only secrets/ swapped), alerts carrying the labels the
    rules give them (their promtool tests' exp_labels) plus the external `prometheus` label the inhibit rule's
    `equal` names. Two Alertmanagers side by side, so each counts its own notifications:

      held:    per cluster (`prometheus`), a firing FeatureStoreDegraded (twice; and once with no `prometheus` label
               at all, as in the drill) with ScoreDistributionDrift and ModelQualityDegraded:
               both `suppressed`, inhibitedBy = that cluster's source. ModelRetrainingStale beside them (not a
               target) and the sources themselves stay active. After the routes' group_wait, on-call's chat got
               the sources and ModelRetrainingStale and neither model alert, and the one webhook integration of the
               config (the fraudops-retrain route) was never called.
      control: the model alerts beside a FeatureStoreDown only; beside a FeatureStoreDegraded that has resolved; and beside a firing one of
               another cluster: all active, not inhibited; on-call gets them and the retrain webhook is called.
    """
    import time

    config = yaml.safe_load((MONITORING / "alertmanager/alertmanager.yaml").read_text(encoding="utf-8"))
    webhooks = sorted(r["name"] for r in config["receivers"] if r.get("webhook_configs"))
    if webhooks != ["fraudops-retrain"]:
        fail(f"receivers with a webhook {webhooks}: this check reads the webhook counter as the retrain route's")
        return
    rules = [r for r in config.get("inhibit_rules", [])
             if any(m.replace(" ", "").startswith("alertname=~") and all(a in m for a in FEATURE_STORE_SOURCES)
                    for m in r.get("source_matchers", []))]
    if len(rules) != 1:
        fail(f"want one inhibit rule whose source is {FEATURE_STORE_SOURCES}: {rules}")
    elif rules[0].get("equal") != ["prometheus"]:
        fail(f"the feature-store inhibit rule must be equal on [prometheus] (the rules share no label): {rules[0]}")
    try:
        labels = {name: _tested_alert_labels(name)
                  for name in (*FEATURE_STORE_SOURCES, "FeatureStoreDown", *MODEL_ALERTS, "ModelRetrainingStale")}
    except KeyError as e:
        fail(str(e))
        return
    # The rules share no label but severity: the inhibition cannot rely on job (ModelQualityDegraded has none).
    print("rule labels: " + "; ".join(f"{n} {sorted((k, v) for k, v in l.items() if k != 'alertname')}"
                                      for n, l in labels.items()))

    def alert(name: str, prometheus: str | None, resolved: bool = False) -> dict:
        lab = dict(labels[name])
        if prometheus is not None:
            lab["prometheus"] = prometheus
        out = {"labels": lab, "annotations": {"summary": f"{name} (check)", "description": "check"},
               "startsAt": _rfc3339(-600 if resolved else 0)}
        if resolved:
            out["endsAt"] = _rfc3339(-60)
        return out

    held_scenarios = {  # prometheus label -> source
        PROMETHEUS_LABEL: "FeatureStoreDegraded",
        "monitoring/second": "FeatureStoreDegraded",
        None: "FeatureStoreDegraded",  # no external label (the drill)
    }
    held_alerts = [alert("ModelRetrainingStale", PROMETHEUS_LABEL)]
    for cluster, source in held_scenarios.items():
        held_alerts += [alert(source, cluster), *(alert(m, cluster) for m in MODEL_ALERTS)]
    control_alerts = [
        # FeatureStoreDown (Redis down or not scraped) holds nothing: no monitored Redis must not stop retraining.
        alert("FeatureStoreDown", "monitoring/no-outage"),
        *(alert(m, "monitoring/no-outage") for m in MODEL_ALERTS),
        alert("FeatureStoreDegraded", "monitoring/resolved", resolved=True),
        *(alert(m, "monitoring/resolved") for m in MODEL_ALERTS),
        alert("FeatureStoreDegraded", "monitoring/other-cluster"),
        *(alert(m, "monitoring/this-cluster") for m in MODEL_ALERTS),
    ]

    sink = _WebhookSink()
    started: list[_Alertmanager] = []
    try:
        held = _Alertmanager(binary, sink.url, "/held")
        started.append(held)
        control = _Alertmanager(binary, sink.url, "/control")
        started.append(control)
        held.post(held_alerts)
        control.post(control_alerts)
        time.sleep(0.5)

        def by_key(am: _Alertmanager) -> dict[tuple[str, str | None], dict]:
            return {(a["labels"]["alertname"], a["labels"].get("prometheus")): a for a in am.alerts()}

        got = by_key(held)
        for cluster, source in held_scenarios.items():
            src = got.get((source, cluster))
            if src is None or src["status"]["state"] != "active":
                fail(f"held: source {source} ({cluster}) is not active: {src and src['status']}")
                continue
            for m in MODEL_ALERTS:
                st = got.get((m, cluster), {}).get("status", {})
                if st.get("state") != "suppressed" or st.get("inhibitedBy") != [src["fingerprint"]]:
                    fail(f"held: {m} ({cluster}) is not inhibited by {source}: {st}")
        st = got.get(("ModelRetrainingStale", PROMETHEUS_LABEL), {}).get("status", {})
        if st.get("state") != "active":
            fail(f"held: ModelRetrainingStale (not a target) is not active: {st}")
        got = by_key(control)
        for m in MODEL_ALERTS:
            for cluster in ("monitoring/no-outage", "monitoring/resolved", "monitoring/this-cluster"):
                st = got.get((m, cluster), {}).get("status", {})
                if st.get("state") != "active" or st.get("inhibitedBy"):
                    fail(f"control: {m} ({cluster}) is not active: {st}")
        if not failures:
            print("states: the model alerts suppressed beside each firing source (inhibitedBy = its fingerprint), "
                  "active alone, beside a resolved source and beside another cluster's")

        # The notifications (the routes' group_wait is 30 s): wait until on-call has the control's model alerts and
        # the held Alertmanager's ModelRetrainingStale, grouped and flushed at the same moment as the held model
        # alerts' groups would have been.
        def has(path: str, name: str, firing: int | None = None) -> bool:
            return any(f"] {name}" in t and (firing is None or t.startswith(f"[FIRING:{firing}] "))
                       for t in sink.titles(path))

        # One on-call group per alert name and job: the three control clusters' copies arrive together.
        deadline = time.time() + 75
        while time.time() < deadline and not (
                all(has("/control/oncall", m, 3) for m in MODEL_ALERTS) and has("/held/oncall", "ModelRetrainingStale")):
            time.sleep(0.5)
        time.sleep(2)
        for m in MODEL_ALERTS:
            if not has("/control/oncall", m, 3):
                fail(f"control: {m} did not reach on-call from all three clusters within 75 s: "
                     f"{sink.titles('/control/oncall')}; log: {control.log_tail()}")
            if has("/held/oncall", m):
                fail(f"held: the inhibited {m} was notified to on-call: {sink.titles('/held/oncall')}")
        for name in ("ModelRetrainingStale", *FEATURE_STORE_SOURCES):
            if not has("/held/oncall", name):
                fail(f"held: {name} never reached on-call; got {sink.titles('/held/oncall')}; log: {held.log_tail()}")
        webhook = 'alertmanager_notifications_total{integration="webhook"}'
        held_calls, control_calls = held.metric(webhook), control.metric(webhook)
        if held_calls != 0:
            fail(f"held: the fraudops-retrain webhook was called {held_calls} times (want 0)")
        if not control_calls:
            fail(f"control: the fraudops-retrain webhook was never called ({control_calls}): the 0 above proves nothing")
        print(f"on-call got {sorted(set(sink.titles('/held/oncall')))} (held) and "
              f"{sorted(set(sink.titles('/control/oncall')))} (control); retrain webhook calls: held {held_calls:.0f}, "
              f"control {control_calls:.0f}")
    except RuntimeError as e:
        fail(str(e))
    finally:
        for am in started:
            am.stop()
        sink.close()


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
        if not re.fullmatch(r"=\s*\d+\.\d+\.\d+", version):
            fail(f"provider version {version!r} is not pinned exactly (want `= x.y.z`)")
    # The state holds the static keys: a remote backend (S3 on Object Storage, locked), never local.
    backends = [b for d in parsed.values() for t in d.get("terraform", []) for b in t.get("backend", [])]
    if not any("s3" in b for b in backends):
        fail("terraform: no backend \"s3\" (the state, with the static keys, would be a local file)")
    example = (tf_dir / "backend.hcl.example")
    if not example.exists() or not re.search(r"(?m)^\s*(use_lockfile\s*=\s*true|dynamodb_table\s*=)", example.read_text()):
        fail("terraform: backend.hcl.example must lock the state (use_lockfile = true or a dynamodb_table)")
    # No account of the workloads gets a folder-wide storage role: each bucket grants its own account.
    for d in parsed.values():
        for block in d.get("resource", []):
            for name, body in block.get("yandex_resourcemanager_folder_iam_member", {}).items():
                if str(body.get("role", "")).startswith("storage."):
                    fail(f"terraform: folder role {body.get('role')} ({name}) reaches every bucket; grant the bucket")
    resources = {(rtype, name) for d in parsed.values() for block in d.get("resource", [])
                 for rtype, named in block.items() for name in named}
    types = {t for t, _ in resources}
    for needed in ("yandex_vpc_network", "yandex_vpc_subnet", "yandex_iam_service_account",
                   "yandex_resourcemanager_folder_iam_member", "yandex_kubernetes_cluster",
                   "yandex_kubernetes_node_group", "yandex_container_registry", "yandex_storage_bucket",
                   "yandex_iam_service_account_static_access_key", "yandex_vpc_address"):
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
    outputs = {name for block in parsed.get("outputs.tf", {}).get("output", []) for name in block}
    if "ingress_address" not in outputs:
        fail("terraform: no output ingress_address (the load balancer's reserved address, loadBalancerIP)")
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
            # A tag can be moved to other code by whoever controls the action's repository (and the deploy
            # job may push): pinned by full commit, the tag in a comment for the reader.
            if uses and not re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", uses):
                fail(f"ci.yaml: action {uses} is not pinned to a full commit SHA")
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
    sub.add_parser("alertmanager-inhibit").add_argument("binary")
    sub.add_parser("terraform")
    sub.add_parser("workflow")
    sub.add_parser("api-keys-negative").add_argument("production", type=Path)
    sub.add_parser("redis-cluster-negative").add_argument("production", type=Path)
    sub.add_parser("metrics-integrity").add_argument("policy", type=Path)
    sub.add_parser("default-credentials")
    sub.add_parser("mlflow-policy").add_argument("policy", type=Path)
    auth = sub.add_parser("redis-auth-negative")
    auth.add_argument("local", type=Path)
    auth.add_argument("production", type=Path)
    sub.add_parser("edge").add_argument("production", type=Path)
    edge_live = sub.add_parser("edge-live")
    edge_live.add_argument("binary")
    edge_live.add_argument("production", type=Path)
    sub.add_parser("platform")
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
        "alertmanager-inhibit": lambda: cmd_alertmanager_inhibit(a.binary),
        "terraform": cmd_terraform,
        "workflow": cmd_workflow,
        "api-keys-negative": lambda: cmd_api_keys_negative(a.production),
        "redis-cluster-negative": lambda: cmd_redis_cluster_negative(a.production),
        "metrics-integrity": lambda: cmd_metrics_integrity(a.policy),
        "default-credentials": cmd_default_credentials,
        "mlflow-policy": lambda: cmd_mlflow_policy(a.policy),
        "redis-auth-negative": lambda: cmd_redis_auth_negative(a.local, a.production),
        "edge": lambda: cmd_edge(a.production),
        "edge-live": lambda: cmd_edge_live(a.binary, a.production),
        "platform": cmd_platform,
    }[a.cmd]()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
