//! The retraining's outcome pushed to a Prometheus Pushgateway, for the dashboard's "Time since last
//! successful retraining" (`fraudops register --pushgateway-url`, `PUSHGATEWAY_URL`).
//!
//! Why a push: `register` is a batch step (an Airflow task's pod or process) that exits seconds after
//! the gate decided; nothing could scrape it. The Pushgateway keeps the last pushed values and
//! Prometheus scrapes it with `honor_labels: true`, so the series keep `job="fraudops-retrain"`.
//!
//! What: after a run that registered a version and decided the gate (promoted or not), one `PUT` to
//! `<url>/metrics/job/fraudops-retrain` (grouped by job only): a `PUT` replaces the whole group, so
//! the group always holds exactly the last successful run, and a champion value from an earlier run
//! cannot linger beside a first version that had none.
//!
//! * `ml_model_retrain_last_success_timestamp_seconds`: when it finished (Unix seconds); the panel is
//!   `time() -` this, red past 8 days for the weekly DAG.
//! * `ml_model_retrain_last_promoted`: 1 if the gate moved the alias, 0 if the champion stayed.
//! * `ml_model_retrain_gate_candidate_value{metric}`, `ml_model_retrain_gate_champion_value{metric}`:
//!   the two numbers the gate compared (the gate metric, both scored on the candidate's test
//!   window); the champion's is absent when there was none or it could not be evaluated.
//!
//! Failures are not pushed: a run can fail in any step of the DAG (data, train, validate, register),
//! and only this one would report it, so a "last failure" gauge would miss most of them. The ageing
//! success timestamp covers every failure, and Airflow names the failed task.
//!
//! A push that fails is a warning, never the command's failure: the version is registered and the
//! alias moved by then, and failing the task would make Airflow retry the whole registration.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use fraudops_train::Decision;
use prometheus::{Encoder, Gauge, GaugeVec, Opts, Registry, TextEncoder};

/// The Pushgateway group (`job` label) every retraining replaces.
pub const JOB: &str = "fraudops-retrain";
/// One attempt, bounded: the push must not hold up the task that already did its work.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A Pushgateway base URL, checked when the command starts (a typo fails before any training).
#[derive(Debug, Clone)]
pub struct Pushgateway {
    /// `<url>/metrics/job/fraudops-retrain`.
    endpoint: String,
}

impl Pushgateway {
    /// Checks `url` (`http://host:port`, optionally with a path prefix).
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(url)
            .with_context(|| format!("PUSHGATEWAY_URL {url:?} is not a URL"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            bail!("PUSHGATEWAY_URL {url:?} must be http(s)://host[:port]");
        }
        Ok(Self {
            endpoint: format!("{}/metrics/job/{JOB}", url.trim_end_matches('/')),
        })
    }

    /// Where the push goes.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Replaces the group with the outcome of a run that registered a version (see the module doc).
    pub fn push_success(&self, decision: &Decision) -> anyhow::Result<()> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs_f64();
        let body = encode_success(decision, now)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        runtime.block_on(self.put(body))
    }

    async fn put(&self, body: Vec<u8>) -> anyhow::Result<()> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let response = client
            .put(&self.endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                TextEncoder::new().format_type(),
            )
            .body(body)
            .send()
            .await
            .with_context(|| format!("PUT {}", self.endpoint))?;
        let status = response.status();
        if !status.is_success() {
            // The Pushgateway says why (e.g. an inconsistent metric) in the body.
            let text = response.text().await.unwrap_or_default();
            bail!("PUT {} answered {status}: {}", self.endpoint, text.trim());
        }
        Ok(())
    }
}

/// The gauges of a successful run, in the Prometheus text format.
fn encode_success(decision: &Decision, now: f64) -> anyhow::Result<Vec<u8>> {
    let registry = Registry::new();
    let gauge = |name: &str, help: &str, value: f64| -> prometheus::Result<()> {
        let g = Gauge::with_opts(Opts::new(name, help))?;
        g.set(value);
        registry.register(Box::new(g))
    };
    gauge(
        "ml_model_retrain_last_success_timestamp_seconds",
        "Unix time the last retraining that registered a model version finished.",
        now,
    )?;
    gauge(
        "ml_model_retrain_last_promoted",
        "1 if the last successful retraining's champion gate promoted its version, else 0.",
        if decision.promote { 1.0 } else { 0.0 },
    )?;
    let metric = decision.metric.name();
    let candidate = GaugeVec::new(
        Opts::new(
            "ml_model_retrain_gate_candidate_value",
            "The new version's value of the gate metric on its test window, as the gate compared it.",
        ),
        &["metric"],
    )?;
    candidate
        .with_label_values(&[metric])
        .set(decision.candidate);
    registry.register(Box::new(candidate))?;
    if let Some(value) = decision.champion {
        let champion = GaugeVec::new(
            Opts::new(
                "ml_model_retrain_gate_champion_value",
                "The champion's value of the gate metric on the new version's test window.",
            ),
            &["metric"],
        )?;
        champion.with_label_values(&[metric]).set(value);
        registry.register(Box::new(champion))?;
    }
    let mut body = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut body)
        .context("encoding the metrics")?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use fraudops_train::{GateMetric, Reason};

    use super::*;

    fn decision(promote: bool, champion: Option<f64>) -> Decision {
        Decision {
            promote,
            reason: if champion.is_some() {
                Reason::NotWorse
            } else {
                Reason::FirstVersion
            },
            metric: GateMetric::AveragePrecision,
            candidate: 0.625,
            champion,
            tolerance: 0.0,
        }
    }

    #[test]
    fn endpoint_is_the_job_group() {
        for url in ["http://pgw:9091", "http://pgw:9091/"] {
            assert_eq!(
                Pushgateway::new(url).expect("valid").endpoint(),
                "http://pgw:9091/metrics/job/fraudops-retrain"
            );
        }
        for bad in ["pgw:9091", "ftp://pgw", "not a url", ""] {
            assert!(Pushgateway::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn body_holds_the_outcome() {
        let text =
            String::from_utf8(encode_success(&decision(false, Some(0.75)), 1.7e9).expect("encode"))
                .expect("utf-8");
        for line in [
            "ml_model_retrain_last_success_timestamp_seconds 1700000000",
            "ml_model_retrain_last_promoted 0",
            "ml_model_retrain_gate_candidate_value{metric=\"average_precision\"} 0.625",
            "ml_model_retrain_gate_champion_value{metric=\"average_precision\"} 0.75",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.contains("# TYPE ml_model_retrain_last_promoted gauge"));
    }

    #[test]
    fn no_champion_no_champion_value() {
        let text = String::from_utf8(encode_success(&decision(true, None), 1.0).expect("encode"))
            .expect("utf-8");
        assert!(text.contains("ml_model_retrain_last_promoted 1"), "{text}");
        assert!(
            !text.contains("ml_model_retrain_gate_champion_value"),
            "{text}"
        );
    }

    /// The names the dashboard may read (deploy/monitoring/metrics-contract.txt) are the ones pushed.
    #[test]
    fn pushes_exactly_the_contract_names() {
        let listed = crate::contract_names("ml_model_retrain_");
        let text = String::from_utf8(encode_success(&decision(true, Some(0.5)), 1.0).expect("x"))
            .expect("utf-8");
        let pushed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        let mut sorted = listed.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, pushed, "metrics-contract.txt vs the push");
    }

    #[test]
    fn unreachable_gateway_is_an_error_not_a_hang() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("port")
            .port();
        let gateway = Pushgateway::new(&format!("http://127.0.0.1:{port}")).expect("valid");
        let error = gateway
            .push_success(&decision(true, None))
            .expect_err("nothing listens");
        assert!(
            format!("{error:#}").contains("PUT http://127.0.0.1:"),
            "{error:#}"
        );
    }
}
