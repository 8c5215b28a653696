//! The deployed objects the drill reproduces, read from the rendered kustomize output (the same YAML
//! `kubectl apply -k` would send): the API Deployment (requests, limits, probes, drain), its ConfigMap, and
//! the HorizontalPodAutoscaler (min/max, targets, behaviour).
//!
//! Reading the rendered output rather than the base files means an overlay's patch (say, other requests)
//! reaches the drill exactly as it reaches the cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_yaml::Value;

use crate::error::DrillError;
use crate::hpa::{
    Behavior, HpaSpec, PolicyKind, Resource, ResourceTarget, ScalingPolicy, ScalingRules,
    SelectPolicy,
};

/// The API container as the Deployment runs it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiWorkload {
    /// `metadata.namespace` (the `namespace` label of every cluster series).
    pub namespace: String,
    /// The Deployment's name (`kube_deployment_*{deployment}`).
    pub deployment: String,
    /// The container's name (`container` label of cAdvisor and kube-state-metrics series).
    pub container: String,
    /// `resources.requests.cpu`, cores: the HPA's utilisation denominator.
    pub cpu_request_cores: f64,
    /// `resources.limits.cpu`, cores: the CFS quota the kubelet sets.
    pub cpu_limit_cores: f64,
    /// `resources.requests.memory`, bytes.
    pub memory_request_bytes: f64,
    /// `resources.limits.memory`, bytes.
    pub memory_limit_bytes: f64,
    /// `readinessProbe.periodSeconds`.
    pub readiness_period: Duration,
    /// `readinessProbe.failureThreshold`.
    pub readiness_failure_threshold: u32,
    /// `lifecycle.preStop.sleep.seconds`: how long a terminating pod keeps serving before SIGTERM.
    pub pre_stop: Duration,
    /// `terminationGracePeriodSeconds`: SIGKILL after this.
    pub termination_grace: Duration,
    /// The ConfigMaps of `envFrom`, in order.
    pub env_from: Vec<String>,
}

/// What the drill takes from the rendered manifests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Deployed {
    /// Where the objects came from (a file, or the kustomize command).
    pub source: String,
    /// The HPA object.
    pub hpa: HpaSpec,
    /// The Deployment the HPA scales.
    pub api: ApiWorkload,
    /// The environment `envFrom` gives the API container (ConfigMap data, later maps winning).
    pub env: BTreeMap<String, String>,
}

/// Renders `overlay` with `kubectl kustomize`, as deploy/check.sh and ArgoCD do.
pub fn render_overlay(overlay: &Path) -> Result<String, DrillError> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(overlay)
        .output()
        .map_err(|e| {
            DrillError::Tool(format!(
                "running `kubectl kustomize {}` ({e}); install kubectl or pass --manifest with \
                 pre-rendered output",
                overlay.display()
            ))
        })?;
    if !output.status.success() {
        return Err(DrillError::Tool(format!(
            "`kubectl kustomize {}` failed: {}",
            overlay.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    String::from_utf8(output.stdout).map_err(|_| {
        DrillError::manifest(
            overlay,
            "kubectl kustomize printed something that is not UTF-8",
        )
    })
}

/// Reads the objects named `hpa_name` (HPA) and its target Deployment from a multi-document YAML stream.
pub fn parse(text: &str, source: &str, hpa_name: &str) -> Result<Deployed, DrillError> {
    let src = PathBuf::from(source);
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let value = Value::deserialize(doc).map_err(|e| DrillError::Yaml {
            context: format!("parsing {source}"),
            source: e,
        })?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    let find = |kind: &str, name: &str| {
        docs.iter().find(|d| {
            str_at(d, &["kind"]) == Some(kind) && str_at(d, &["metadata", "name"]) == Some(name)
        })
    };
    let hpa_doc = find("HorizontalPodAutoscaler", hpa_name).ok_or_else(|| {
        DrillError::manifest(&src, format!("no HorizontalPodAutoscaler named {hpa_name}"))
    })?;
    let hpa = parse_hpa(hpa_doc).map_err(|m| DrillError::manifest(&src, m))?;
    let deployment = find("Deployment", &hpa.target).ok_or_else(|| {
        DrillError::manifest(
            &src,
            format!(
                "the HPA targets Deployment {}, which is not there",
                hpa.target
            ),
        )
    })?;
    let api = parse_deployment(deployment).map_err(|m| DrillError::manifest(&src, m))?;
    let mut env = BTreeMap::new();
    for name in &api.env_from {
        let cm = find("ConfigMap", name).ok_or_else(|| {
            DrillError::manifest(
                &src,
                format!("envFrom names ConfigMap {name}, which is not there"),
            )
        })?;
        if let Some(Value::Mapping(data)) = at(cm, &["data"]) {
            for (k, v) in data {
                if let (Some(k), Some(v)) = (k.as_str(), scalar_string(v)) {
                    env.insert(k.to_owned(), v);
                }
            }
        }
    }
    Ok(Deployed {
        source: source.to_owned(),
        hpa,
        api,
        env,
    })
}

fn at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |v, key| v.get(*key))
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(value, path).and_then(Value::as_str)
}

fn u64_at(value: &Value, path: &[&str]) -> Option<u64> {
    at(value, path).and_then(Value::as_u64)
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Parses the HPA object (autoscaling/v2); Kubernetes' defaults fill what it leaves out.
pub fn parse_hpa(doc: &Value) -> Result<HpaSpec, String> {
    let api_version = str_at(doc, &["apiVersion"]).unwrap_or_default();
    if api_version != "autoscaling/v2" {
        return Err(format!(
            "HPA apiVersion {api_version:?}: only autoscaling/v2 is read"
        ));
    }
    let name = str_at(doc, &["metadata", "name"])
        .unwrap_or_default()
        .to_owned();
    let spec = at(doc, &["spec"]).ok_or("the HPA has no spec")?;
    let kind = str_at(spec, &["scaleTargetRef", "kind"]).unwrap_or_default();
    if kind != "Deployment" {
        return Err(format!(
            "the HPA scales a {kind:?}; the drill runs Deployments"
        ));
    }
    let target = str_at(spec, &["scaleTargetRef", "name"])
        .ok_or("spec.scaleTargetRef.name is missing")?
        .to_owned();
    let min_replicas = match u64_at(spec, &["minReplicas"]) {
        Some(n) => u32::try_from(n).map_err(|_| "spec.minReplicas is too large")?,
        None => 1,
    };
    let max_replicas = u64_at(spec, &["maxReplicas"])
        .ok_or("spec.maxReplicas is missing")
        .and_then(|n| u32::try_from(n).map_err(|_| "spec.maxReplicas is too large"))?;
    if max_replicas < min_replicas || max_replicas == 0 {
        return Err(format!(
            "spec.maxReplicas {max_replicas} must be at least 1 and at least minReplicas {min_replicas}"
        ));
    }
    let mut metrics = Vec::new();
    let list = at(spec, &["metrics"])
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    for (i, m) in list.iter().enumerate() {
        let ty = str_at(m, &["type"]).unwrap_or_default();
        if ty != "Resource" {
            return Err(format!(
                "spec.metrics[{i}] is of type {ty:?}; the drill implements Resource metrics"
            ));
        }
        let resource = match str_at(m, &["resource", "name"]) {
            Some("cpu") => Resource::Cpu,
            Some("memory") => Resource::Memory,
            other => {
                return Err(format!(
                    "spec.metrics[{i}]: resource {other:?} is not cpu or memory"
                ));
            }
        };
        let target_type = str_at(m, &["resource", "target", "type"]).unwrap_or_default();
        let Some(utilization) = u64_at(m, &["resource", "target", "averageUtilization"])
            .filter(|_| target_type == "Utilization")
        else {
            return Err(format!(
                "spec.metrics[{i}]: only target.type Utilization with averageUtilization is implemented"
            ));
        };
        metrics.push(ResourceTarget {
            resource,
            average_utilization: u32::try_from(utilization)
                .map_err(|_| format!("spec.metrics[{i}]: averageUtilization is too large"))?,
        });
    }
    if metrics.is_empty() {
        // The API server's default for an HPA without metrics.
        metrics.push(ResourceTarget {
            resource: Resource::Cpu,
            average_utilization: 80,
        });
    }
    let behavior = Behavior {
        scale_up: parse_rules(
            at(spec, &["behavior", "scaleUp"]),
            ScalingRules::default_scale_up(),
            "scaleUp",
        )?,
        scale_down: parse_rules(
            at(spec, &["behavior", "scaleDown"]),
            ScalingRules::default_scale_down(),
            "scaleDown",
        )?,
    };
    Ok(HpaSpec {
        name,
        target,
        min_replicas,
        max_replicas,
        metrics,
        behavior,
    })
}

fn parse_rules(
    value: Option<&Value>,
    default: ScalingRules,
    what: &str,
) -> Result<ScalingRules, String> {
    let Some(v) = value else {
        return Ok(default);
    };
    let stabilization_window = match u64_at(v, &["stabilizationWindowSeconds"]) {
        Some(s) => Duration::from_secs(s),
        None => default.stabilization_window,
    };
    let select_policy = match str_at(v, &["selectPolicy"]) {
        None | Some("Max") => SelectPolicy::Max,
        Some("Min") => SelectPolicy::Min,
        Some("Disabled") => SelectPolicy::Disabled,
        Some(other) => return Err(format!("behavior.{what}.selectPolicy {other:?} is unknown")),
    };
    let policies = match at(v, &["policies"]).and_then(Value::as_sequence) {
        None => default.policies,
        Some(list) => list
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let kind = match str_at(p, &["type"]) {
                    Some("Pods") => PolicyKind::Pods,
                    Some("Percent") => PolicyKind::Percent,
                    other => {
                        return Err(format!(
                            "behavior.{what}.policies[{i}].type {other:?} is unknown"
                        ));
                    }
                };
                let value = u64_at(p, &["value"])
                    .and_then(|n| u32::try_from(n).ok())
                    .filter(|n| *n > 0)
                    .ok_or(format!(
                        "behavior.{what}.policies[{i}].value must be a positive integer"
                    ))?;
                let period = u64_at(p, &["periodSeconds"])
                    .filter(|n| *n > 0)
                    .ok_or(format!(
                        "behavior.{what}.policies[{i}].periodSeconds must be positive"
                    ))?;
                Ok(ScalingPolicy {
                    kind,
                    value,
                    period: Duration::from_secs(period),
                })
            })
            .collect::<Result<Vec<_>, String>>()?,
    };
    Ok(ScalingRules {
        stabilization_window,
        select_policy,
        policies,
    })
}

/// Reads the Deployment's first container (the API).
pub fn parse_deployment(doc: &Value) -> Result<ApiWorkload, String> {
    let deployment = str_at(doc, &["metadata", "name"])
        .unwrap_or_default()
        .to_owned();
    let namespace = str_at(doc, &["metadata", "namespace"])
        .unwrap_or("default")
        .to_owned();
    let pod = at(doc, &["spec", "template", "spec"]).ok_or("the Deployment has no pod template")?;
    let container = at(pod, &["containers"])
        .and_then(Value::as_sequence)
        .and_then(|c| c.first())
        .ok_or("the Deployment has no container")?;
    let name = str_at(container, &["name"]).unwrap_or_default().to_owned();
    let quantity = |path: &[&str], parse: fn(&str) -> Option<f64>| -> Result<f64, String> {
        let v = at(container, path)
            .and_then(scalar_string)
            .ok_or(format!("container {name}: {} is missing", path.join(".")))?;
        parse(&v).ok_or(format!(
            "container {name}: {} = {v:?} is not a quantity",
            path.join(".")
        ))
    };
    let cpu_request_cores = quantity(&["resources", "requests", "cpu"], parse_cpu)?;
    let cpu_limit_cores = quantity(&["resources", "limits", "cpu"], parse_cpu)?;
    let memory_request_bytes = quantity(&["resources", "requests", "memory"], parse_bytes)?;
    let memory_limit_bytes = quantity(&["resources", "limits", "memory"], parse_bytes)?;
    if cpu_request_cores <= 0.0 || cpu_limit_cores < cpu_request_cores {
        return Err(format!(
            "container {name}: CPU request {cpu_request_cores} and limit {cpu_limit_cores} make no sense"
        ));
    }
    let secs = |path: &[&str], default: u64| {
        Duration::from_secs(u64_at(container, path).unwrap_or(default))
    };
    let env_from = at(container, &["envFrom"])
        .and_then(Value::as_sequence)
        .map(|list| {
            list.iter()
                .filter_map(|e| str_at(e, &["configMapRef", "name"]).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(ApiWorkload {
        namespace,
        deployment,
        container: name,
        cpu_request_cores,
        cpu_limit_cores,
        memory_request_bytes,
        memory_limit_bytes,
        // Kubernetes' probe defaults: every 10 s, 3 failures.
        readiness_period: secs(&["readinessProbe", "periodSeconds"], 10),
        readiness_failure_threshold: u64_at(container, &["readinessProbe", "failureThreshold"])
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(3),
        pre_stop: secs(&["lifecycle", "preStop", "sleep", "seconds"], 0),
        termination_grace: Duration::from_secs(
            u64_at(pod, &["terminationGracePeriodSeconds"]).unwrap_or(30),
        ),
        env_from,
    })
}

/// A CPU quantity (`250m`, `0.5`, `2`) in cores.
pub fn parse_cpu(q: &str) -> Option<f64> {
    let q = q.trim();
    let v = match q.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().ok()? / 1000.0,
        None => q.parse::<f64>().ok()?,
    };
    (v.is_finite() && v >= 0.0).then_some(v)
}

/// A memory quantity (`64Mi`, `1G`, `128974848`) in bytes.
pub fn parse_bytes(q: &str) -> Option<f64> {
    const SUFFIXES: [(&str, f64); 12] = [
        ("Ki", 1024.0),
        ("Mi", 1048576.0),
        ("Gi", 1073741824.0),
        ("Ti", 1099511627776.0),
        ("Pi", 1125899906842624.0),
        ("Ei", 1152921504606846976.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let q = q.trim();
    let (number, scale) = SUFFIXES
        .iter()
        .find_map(|(s, m)| q.strip_suffix(s).map(|n| (n, *m)))
        .unwrap_or((q, 1.0));
    let v = number.parse::<f64>().ok()? * scale;
    (v.is_finite() && v >= 0.0).then_some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINI: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: ns}
data: {RUST_LOG: info, MAX_IN_FLIGHT: "256"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: ns}
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: api
          envFrom: [{configMapRef: {name: cfg}}]
          resources:
            requests: {cpu: 250m, memory: 64Mi}
            limits: {cpu: "1", memory: 256Mi}
          readinessProbe: {periodSeconds: 5, failureThreshold: 2}
          lifecycle: {preStop: {sleep: {seconds: 5}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: api, namespace: ns}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  maxReplicas: 3
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
  behavior:
    scaleDown:
      selectPolicy: Disabled
"#;

    #[test]
    fn reads_deployment_configmap_and_hpa_with_kubernetes_defaults() {
        let d = parse(MINI, "mini.yaml", "api").expect("parses");
        assert_eq!(d.api.cpu_request_cores, 0.25);
        assert_eq!(d.api.cpu_limit_cores, 1.0);
        assert_eq!(d.api.memory_request_bytes, 64.0 * 1048576.0);
        assert_eq!(d.api.readiness_period, Duration::from_secs(5));
        assert_eq!(d.api.pre_stop, Duration::from_secs(5));
        assert_eq!(d.api.namespace, "ns");
        assert_eq!(d.env.get("MAX_IN_FLIGHT").map(String::as_str), Some("256"));
        // minReplicas and scaleUp are absent: Kubernetes' defaults.
        assert_eq!(d.hpa.min_replicas, 1);
        assert_eq!(d.hpa.behavior.scale_up, ScalingRules::default_scale_up());
        assert_eq!(
            d.hpa.behavior.scale_down.select_policy,
            SelectPolicy::Disabled
        );
        assert_eq!(
            d.hpa.behavior.scale_down.stabilization_window,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn refuses_what_it_cannot_reproduce() {
        let external = MINI.replace("type: Resource", "type: External");
        assert!(
            parse(&external, "x", "api")
                .unwrap_err()
                .to_string()
                .contains("Resource")
        );
        assert!(
            parse(MINI, "x", "other")
                .unwrap_err()
                .to_string()
                .contains("other")
        );
        let no_max = MINI.replace("maxReplicas: 3", "");
        assert!(parse(&no_max, "x", "api").is_err());
    }

    #[test]
    fn quantities() {
        assert_eq!(parse_cpu("500m"), Some(0.5));
        assert_eq!(parse_cpu("2"), Some(2.0));
        assert_eq!(parse_cpu("x"), None);
        assert_eq!(parse_bytes("1Gi"), Some(1073741824.0));
        assert_eq!(parse_bytes("1G"), Some(1e9));
        assert_eq!(parse_bytes("1000"), Some(1000.0));
        assert_eq!(parse_bytes("-1"), None);
    }

    /// The deployed HPA (deploy/k8s/base/api-hpa.yaml) reads as SPEC §7 states it.
    #[test]
    fn the_deployed_hpa_is_the_specs() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s/base/api-hpa.yaml");
        let text = std::fs::read_to_string(&path).expect("the repository's HPA manifest");
        let doc: Value = serde_yaml::from_str(&text).expect("yaml");
        let hpa = parse_hpa(&doc).expect("parses");
        assert_eq!((hpa.min_replicas, hpa.max_replicas), (4, 6));
        assert_eq!(
            hpa.metrics,
            vec![
                ResourceTarget {
                    resource: Resource::Cpu,
                    average_utilization: 70
                },
                ResourceTarget {
                    resource: Resource::Memory,
                    average_utilization: 80
                },
            ]
        );
        let one_pod = |secs| ScalingPolicy {
            kind: PolicyKind::Pods,
            value: 1,
            period: Duration::from_secs(secs),
        };
        assert_eq!(hpa.behavior.scale_up.policies, vec![one_pod(60)]);
        assert_eq!(
            hpa.behavior.scale_up.stabilization_window,
            Duration::from_secs(60)
        );
        assert_eq!(hpa.behavior.scale_down.policies, vec![one_pod(300)]);
        assert_eq!(
            hpa.behavior.scale_down.stabilization_window,
            Duration::from_secs(300)
        );
    }
}
