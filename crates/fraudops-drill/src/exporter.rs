//! Stand-ins for kube-state-metrics and cAdvisor: the series a cluster's Prometheus scrapes from them,
//! with the same names and labels, computed from the drill's own replicas (cgroups, `/proc`) and
//! autoscaler. With these, Prometheus evaluates `deploy/monitoring/rules/recording.cluster.yaml` as
//! deployed: one rule source, tested end to end.
//!
//! Only what the rules, the dashboard or an operator would look at is exported; every value is measured or
//! is the state the drill is in, never estimated.

use std::fmt::Write as _;

use crate::cgroup::{CFS_PERIOD, CpuStats};

/// One API pod as the cluster exporters see it.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSnapshot {
    /// Pod name.
    pub name: String,
    /// Ready condition.
    pub ready: bool,
    /// Cumulative CPU and throttling from its cgroup.
    pub cpu: CpuStats,
    /// Working set (resident memory), bytes.
    pub memory_bytes: u64,
}

/// The state behind both exporters at one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterSnapshot {
    /// Namespace of every object.
    pub namespace: String,
    /// The Deployment.
    pub deployment: String,
    /// The API container's name.
    pub container: String,
    /// The HPA's name.
    pub hpa: String,
    /// HPA `status.currentReplicas`.
    pub current_replicas: u32,
    /// HPA `status.desiredReplicas`.
    pub desired_replicas: u32,
    /// HPA `spec.minReplicas`.
    pub min_replicas: u32,
    /// HPA `spec.maxReplicas`.
    pub max_replicas: u32,
    /// HPA targets: (resource, averageUtilization).
    pub targets: Vec<(&'static str, u32)>,
    /// Deployment `spec.replicas` (what the HPA set).
    pub spec_replicas: u32,
    /// CPU request and limit of each pod, cores (the drill-scaled values).
    pub cpu_request_cores: f64,
    /// CPU limit, cores.
    pub cpu_limit_cores: f64,
    /// Memory request, bytes.
    pub memory_request_bytes: f64,
    /// Memory limit, bytes.
    pub memory_limit_bytes: f64,
    /// The pods that exist (not yet terminated).
    pub pods: Vec<PodSnapshot>,
    /// Pods that are terminating (still counted by cAdvisor while their process runs).
    pub terminating: Vec<PodSnapshot>,
}

/// A small writer of the Prometheus text format.
struct Exposition(String);

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let v = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{v}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// What cAdvisor (the kubelet's `/metrics/cadvisor`) reports for the API containers.
pub fn render_cadvisor(s: &ClusterSnapshot) -> String {
    let mut out = Exposition(String::new());
    let pods: Vec<&PodSnapshot> = s.pods.iter().chain(&s.terminating).collect();
    let labels = |p: &'_ PodSnapshot| -> Vec<(&'static str, String)> {
        vec![
            ("namespace", s.namespace.clone()),
            ("pod", p.name.clone()),
            ("container", s.container.clone()),
        ]
    };
    let period_us = CFS_PERIOD.as_micros() as f64;
    let quota = (s.cpu_limit_cores * period_us).round();
    // Name, type, help, labels beyond the pod's, the value of a pod.
    type Family<'f> = (
        &'f str,
        &'f str,
        &'f str,
        &'f [(&'f str, &'f str)],
        &'f dyn Fn(&PodSnapshot) -> f64,
    );
    let families: [Family<'_>; 7] = [
        (
            "container_cpu_usage_seconds_total",
            "counter",
            "Cumulative cpu time consumed in seconds.",
            &[("cpu", "total")],
            &|p| p.cpu.usage_seconds,
        ),
        (
            "container_cpu_cfs_periods_total",
            "counter",
            "Number of elapsed enforcement period intervals.",
            &[],
            &|p| p.cpu.periods as f64,
        ),
        (
            "container_cpu_cfs_throttled_periods_total",
            "counter",
            "Number of throttled period intervals.",
            &[],
            &|p| p.cpu.throttled_periods as f64,
        ),
        (
            "container_cpu_cfs_throttled_seconds_total",
            "counter",
            "Total time duration the container has been throttled.",
            &[],
            &|p| p.cpu.throttled_seconds,
        ),
        (
            "container_memory_working_set_bytes",
            "gauge",
            "Current working set in bytes.",
            &[],
            &|p| p.memory_bytes as f64,
        ),
        (
            "container_spec_cpu_period",
            "gauge",
            "CPU period of the container.",
            &[],
            &|_| period_us,
        ),
        (
            "container_spec_cpu_quota",
            "gauge",
            "CPU quota of the container.",
            &[],
            &|_| quota,
        ),
    ];
    for (name, kind, help, extra, value) in families {
        out.family(name, kind, help);
        for p in &pods {
            let base = labels(p);
            let mut l: Vec<(&str, &str)> = base.iter().map(|(k, v)| (*k, v.as_str())).collect();
            l.extend_from_slice(extra);
            out.sample(name, &l, value(p));
        }
    }
    out.0
}

/// What kube-state-metrics reports for the API's HPA, Deployment and pods.
pub fn render_kube_state_metrics(s: &ClusterSnapshot) -> String {
    let mut out = Exposition(String::new());
    let ns = s.namespace.as_str();
    let hpa = [
        ("namespace", ns),
        ("horizontalpodautoscaler", s.hpa.as_str()),
    ];
    for (name, help, value) in [
        (
            "kube_horizontalpodautoscaler_status_current_replicas",
            "Current number of replicas of pods managed by this autoscaler.",
            s.current_replicas,
        ),
        (
            "kube_horizontalpodautoscaler_status_desired_replicas",
            "Desired number of replicas of pods managed by this autoscaler.",
            s.desired_replicas,
        ),
        (
            "kube_horizontalpodautoscaler_spec_min_replicas",
            "Lower limit for the number of pods that can be set by the autoscaler, default 1.",
            s.min_replicas,
        ),
        (
            "kube_horizontalpodautoscaler_spec_max_replicas",
            "Upper limit for the number of pods that can be set by the autoscaler; cannot be smaller than MinReplicas.",
            s.max_replicas,
        ),
    ] {
        out.family(name, "gauge", help);
        out.sample(name, &hpa, f64::from(value));
    }
    out.family(
        "kube_horizontalpodautoscaler_spec_target_metric",
        "gauge",
        "The metric specifications used by this autoscaler when calculating the desired replica count.",
    );
    for (metric, value) in &s.targets {
        out.sample(
            "kube_horizontalpodautoscaler_spec_target_metric",
            &[
                hpa[0],
                hpa[1],
                ("metric_name", metric),
                ("metric_target_type", "utilization"),
            ],
            f64::from(*value),
        );
    }
    let dep = [("namespace", ns), ("deployment", s.deployment.as_str())];
    let ready = s.pods.iter().filter(|p| p.ready).count() as f64;
    for (name, help, value) in [
        (
            "kube_deployment_spec_replicas",
            "Number of desired pods for a deployment.",
            f64::from(s.spec_replicas),
        ),
        (
            "kube_deployment_status_replicas",
            "The number of replicas per deployment.",
            s.pods.len() as f64,
        ),
        (
            "kube_deployment_status_replicas_ready",
            "The number of ready replicas per deployment.",
            ready,
        ),
        (
            "kube_deployment_status_replicas_available",
            "The number of available replicas per deployment.",
            ready,
        ),
    ] {
        out.family(name, "gauge", help);
        out.sample(name, &dep, value);
    }
    let all: Vec<&PodSnapshot> = s.pods.iter().chain(&s.terminating).collect();
    for (name, help) in [
        (
            "kube_pod_container_resource_requests",
            "The number of requested request resource by a container.",
        ),
        (
            "kube_pod_container_resource_limits",
            "The number of requested limit resource by a container.",
        ),
    ] {
        out.family(name, "gauge", help);
        let (cpu, mem) = if name.ends_with("requests") {
            (s.cpu_request_cores, s.memory_request_bytes)
        } else {
            (s.cpu_limit_cores, s.memory_limit_bytes)
        };
        for p in &all {
            let base = [
                ("namespace", ns),
                ("pod", p.name.as_str()),
                ("container", s.container.as_str()),
            ];
            out.sample(
                name,
                &[
                    base[0],
                    base[1],
                    base[2],
                    ("resource", "cpu"),
                    ("unit", "core"),
                ],
                cpu,
            );
            out.sample(
                name,
                &[
                    base[0],
                    base[1],
                    base[2],
                    ("resource", "memory"),
                    ("unit", "byte"),
                ],
                mem,
            );
        }
    }
    out.family(
        "kube_pod_status_ready",
        "gauge",
        "Describes whether the pod is ready to serve requests.",
    );
    for p in &all {
        for (condition, on) in [("true", p.ready), ("false", !p.ready)] {
            out.sample(
                "kube_pod_status_ready",
                &[
                    ("namespace", ns),
                    ("pod", p.name.as_str()),
                    ("condition", condition),
                ],
                if on { 1.0 } else { 0.0 },
            );
        }
    }
    out.family(
        "kube_pod_container_status_restarts_total",
        "counter",
        "The number of container restarts per container.",
    );
    for p in &all {
        out.sample(
            "kube_pod_container_status_restarts_total",
            &[
                ("namespace", ns),
                ("pod", p.name.as_str()),
                ("container", s.container.as_str()),
            ],
            0.0,
        );
    }
    out.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> ClusterSnapshot {
        let pod = |i: usize, ready| PodSnapshot {
            name: format!("fraudops-api-{i}"),
            ready,
            cpu: CpuStats {
                usage_seconds: 1.5,
                periods: 10,
                throttled_periods: 3,
                throttled_seconds: 0.2,
            },
            memory_bytes: 30 << 20,
        };
        ClusterSnapshot {
            namespace: "fraudops".into(),
            deployment: "fraudops-api".into(),
            container: "fraudops-api".into(),
            hpa: "fraudops-api".into(),
            current_replicas: 5,
            desired_replicas: 6,
            min_replicas: 4,
            max_replicas: 6,
            targets: vec![("cpu", 70), ("memory", 80)],
            spec_replicas: 5,
            cpu_request_cores: 0.0125,
            cpu_limit_cores: 0.025,
            memory_request_bytes: 64.0 * 1048576.0,
            memory_limit_bytes: 256.0 * 1048576.0,
            pods: (0..5).map(|i| pod(i, i != 4)).collect(),
            terminating: vec![],
        }
    }

    /// `deploy/monitoring/<file>` as deployed.
    fn deployed(file: &str) -> String {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/monitoring")
            .join(file);
        std::fs::read_to_string(path).expect(file)
    }

    /// Both stand-ins' exposition of [`snapshot`].
    fn exported() -> String {
        let s = snapshot();
        format!("{}{}", render_cadvisor(&s), render_kube_state_metrics(&s))
    }

    /// Every selector of recording.cluster.yaml (the deployed cluster recording rules) matches a series
    /// the stand-ins export: name and every `label="value"` matcher.
    #[test]
    fn the_deployed_cluster_recording_rules_find_their_series() {
        let rules = deployed("rules/recording.cluster.yaml");
        let exported = exported();
        let mut checked = 0;
        for (i, _) in rules.match_indices('{') {
            let name_start = rules[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .map_or(0, |j| j + 1);
            let name = &rules[name_start..i];
            if !(name.starts_with("kube_") || name.starts_with("container_")) {
                continue;
            }
            let end = i + rules[i..].find('}').expect("closed selector");
            let matchers: Vec<String> = rules[i + 1..end]
                .split(',')
                .map(|m| m.trim().replace(' ', ""))
                .filter(|m| !m.is_empty())
                .collect();
            assert!(
                matchers
                    .iter()
                    .all(|m| m.contains("=\"") && !m.contains("=~")),
                "{matchers:?}"
            );
            let found = exported.lines().any(|line| {
                line.starts_with(&format!("{name}{{"))
                    && matchers.iter().all(|m| line.contains(m.as_str()))
            });
            assert!(
                found,
                "no exported series for {name}{{{}}}",
                matchers.join(",")
            );
            checked += 1;
        }
        assert_eq!(checked, 6, "the rules read 6 cluster selectors");
    }

    /// The names kube-prometheus-stack's standard series list (deploy/monitoring/metrics-external.txt)
    /// that come from kube-state-metrics or cAdvisor are all exported.
    #[test]
    fn exports_every_external_cluster_series() {
        let list = deployed("metrics-external.txt");
        let exported = exported();
        for name in list
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("kube_") || l.starts_with("container_"))
        {
            assert!(
                exported.contains(&format!("\n{name}{{")),
                "{name} is not exported"
            );
        }
    }

    #[test]
    fn values_are_the_state() {
        let s = snapshot();
        let ksm = render_kube_state_metrics(&s);
        assert!(ksm.contains(
            "kube_horizontalpodautoscaler_status_current_replicas{namespace=\"fraudops\",horizontalpodautoscaler=\"fraudops-api\"} 5"
        ));
        assert!(ksm.contains("kube_deployment_status_replicas_ready{namespace=\"fraudops\",deployment=\"fraudops-api\"} 4"));
        assert!(ksm.contains("resource=\"cpu\",unit=\"core\"} 0.025"));
        let cadvisor = render_cadvisor(&s);
        assert!(cadvisor.contains("container_spec_cpu_quota{namespace=\"fraudops\",pod=\"fraudops-api-0\",container=\"fraudops-api\"} 2500"));
        assert_eq!(
            cadvisor
                .matches("container_cpu_usage_seconds_total{")
                .count(),
            5
        );
    }
}
