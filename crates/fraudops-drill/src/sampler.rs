//! One sample of the drill every few seconds: the replicas' CPU from their cgroups, what the load balancer
//! answered, the attack's and the worker's metrics, and the admin alert's state in Prometheus.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::balancer::Balancer;
use crate::cgroup::CpuStats;
use crate::cluster::ClusterView;
use crate::components::Started;
use crate::monitoring::{AlertState, PrometheusApi};
use crate::report::Sample;
use crate::verdict::ADMIN_ALERT;

/// Parses the Prometheus text format into name → sum over label sets.
fn scrape_sums(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        *out.entry(line[..name_end].to_owned()).or_insert(0.0) += value;
    }
    out
}

async fn scrape(http: &reqwest::Client, addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let r = http
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(scrape_sums(&r.text().await.ok()?))
}

/// The sampler's memory between samples.
pub(crate) struct Sampler {
    http: reqwest::Client,
    prometheus: PrometheusApi,
    balancer: Balancer,
    view: Arc<Mutex<ClusterView>>,
    /// The attack's metrics address.
    attack: SocketAddr,
    /// The stream worker's metrics address.
    stream: SocketAddr,
    cpu_limit: f64,
    t0: Instant,
    last_t: Instant,
    last_produced: Option<(f64, Instant)>,
    last_cpu: HashMap<String, (Instant, CpuStats)>,
}

impl Sampler {
    /// A sampler of the started components; times count from `t0`, CPU as a fraction of `cpu_limit`.
    pub(crate) fn new(started: &Started, cpu_limit: f64, t0: Instant) -> Sampler {
        Sampler {
            http: started.http.clone(),
            prometheus: started.prometheus.clone(),
            balancer: started.balancer.clone(),
            view: started.view.clone(),
            attack: started.attack_addr,
            stream: started.stream_addr,
            cpu_limit,
            t0,
            last_t: t0,
            last_produced: None,
            last_cpu: HashMap::new(),
        }
    }

    /// Takes one sample; rates cover the time since the previous one.
    pub(crate) async fn sample(&mut self) -> Sample {
        // The cgroups and the balancer first, at `now`, so their rates cover exactly the interval.
        let now = Instant::now();
        let dt = now.duration_since(self.last_t).as_secs_f64().max(1e-3);
        self.last_t = now;
        let w = self.balancer.take_window();
        let view = self.view.lock().map(|v| v.clone()).unwrap_or_default();
        let mut per_pod = Vec::new();
        let mut cpu = HashMap::new();
        for p in &view.pods {
            let read_at = Instant::now();
            let stats = p.group.stats(Some(p.pid));
            if let Some((before_at, before)) = self.last_cpu.get(&p.name)
                && let Some(r) = crate::metrics_server::cpu_ratio(
                    before,
                    &stats,
                    read_at.duration_since(*before_at).as_secs_f64(),
                    self.cpu_limit,
                )
            {
                per_pod.push((p.name.clone(), r, p.ready && !p.terminating));
            }
            cpu.insert(p.name.clone(), (read_at, stats));
        }
        self.last_cpu = cpu;
        let attack = scrape(&self.http, self.attack).await;
        let stream = scrape(&self.http, self.stream).await;
        let produced = attack
            .as_ref()
            .and_then(|m| m.get("kafka_messages_produced_total").copied());
        let produced_at = Instant::now();
        let achieved = match (produced, self.last_produced) {
            (Some(p), Some((l, at))) => {
                ((p - l) / produced_at.duration_since(at).as_secs_f64().max(1e-3)).max(0.0)
            }
            _ => 0.0,
        };
        if let Some(p) = produced {
            self.last_produced = Some((p, produced_at));
        }
        let alert_state = match self.prometheus.alert_state(ADMIN_ALERT).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(event = "prometheus_unreachable", error = %e);
                AlertState::Inactive
            }
        };
        let rule_cpu = self
            .prometheus
            .scalar("fraudops:pod_cpu_usage_ratio:max")
            .await
            .ok()
            .flatten();
        Sample {
            t_seconds: now.duration_since(self.t0).as_secs_f64(),
            target_tps: attack
                .as_ref()
                .and_then(|m| m.get("attack_target_rate").copied())
                .unwrap_or(0.0),
            achieved_tps: achieved,
            scored_tps: w.ok as f64 / dt,
            errors_per_s: w.server_errors as f64 / dt,
            p95_ms: w.p95_ms,
            replicas_current: view.current(),
            replicas_desired: view.desired_replicas,
            replicas_ready: view.ready(),
            cpu_ratio_max: per_pod.iter().filter(|p| p.2).map(|p| p.1).reduce(f64::max),
            rule_cpu_ratio_max: rule_cpu,
            queue_length: stream
                .as_ref()
                .and_then(|m| m.get("kafka_queue_length").copied()),
            alert_state,
            per_pod,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_text_format() {
        let m = scrape_sums(
            "# HELP x y\n# TYPE kafka_messages_produced_total counter\nkafka_messages_produced_total{topic=\"a\"} 10\n\
             kafka_messages_produced_total{topic=\"b\"} 5\nattack_target_rate 200\n",
        );
        assert_eq!(m.get("kafka_messages_produced_total"), Some(&15.0));
        assert_eq!(m.get("attack_target_rate"), Some(&200.0));
    }
}
