//! `fraudops retrain-trigger`: the bridge from Alertmanager to Airflow. Alertmanager's webhook payload is
//! fixed and Airflow's trigger API wants a login and its own body, so something has to translate:
//!
//! * `POST /alertmanager` — a webhook notification (`alert.rs`): a firing group becomes one DAG run of
//!   `ml_model_retrain` (`airflow.rs`) with the run id of its incident and the alert in the run's conf.
//!   Answers 200 when the run was created or already existed, 400 for a body that is not a v4
//!   notification (Alertmanager does not retry 4xx), 401 without the shared token, 502 when Airflow
//!   failed (Alertmanager retries, and the run id keeps retries to one run).
//! * `GET /health` — liveness (no Airflow call: an Airflow outage must not restart the bridge).
//! * `GET /metrics` — `fraudops_retrain_trigger_notifications_total{outcome}`.
//!
//! Only the alerts named in `--alerts` start runs; anything else the route might send is counted as
//! `ignored` and answered 200, so a routing mistake cannot retrain on an unrelated alert.

mod airflow;
mod alert;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus::{Encoder, IntCounterVec, Opts, Registry, TextEncoder};

pub use airflow::{Airflow, AirflowConfig};

/// The counter's name (one place).
const NOTIFICATIONS: &str = "fraudops_retrain_trigger_notifications_total";
/// Its `outcome` values: a run created, found (duplicate), a failure to reach or convince Airflow, a
/// notification with nothing to do (resolved, another alert), a body refused.
const OUTCOMES: [&str; 5] = ["triggered", "duplicate", "failed", "ignored", "rejected"];

/// What the server needs.
#[derive(Debug)]
pub struct BridgeConfig {
    /// The Airflow client.
    pub airflow: Airflow,
    /// The alert names that start a run.
    pub alerts: Vec<String>,
    /// If set, a file holding the token Alertmanager must send (`Authorization: Bearer …`); read on
    /// every request, so a rotated Secret applies at once.
    pub token_file: Option<PathBuf>,
}

struct Bridge {
    config: BridgeConfig,
    registry: Registry,
    notifications: IntCounterVec,
}

/// The router (the CLI binds it; exposed for the real-Airflow test too).
pub fn router(config: BridgeConfig) -> Router {
    let registry = Registry::new();
    let notifications = IntCounterVec::new(
        Opts::new(
            NOTIFICATIONS,
            "Alertmanager notifications received by the retraining bridge, by outcome.",
        ),
        &["outcome"],
    )
    .expect("a valid metric definition");
    registry
        .register(Box::new(notifications.clone()))
        .expect("registered once");
    for outcome in OUTCOMES {
        notifications.with_label_values(&[outcome]);
    }
    let bridge = Arc::new(Bridge {
        config,
        registry,
        notifications,
    });
    Router::new()
        .route("/alertmanager", post(notification))
        .route("/health", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .with_state(bridge)
}

/// Serves `router` on `addr` until `shutdown` completes; logs `server_started` with the bound address.
pub async fn serve(
    config: BridgeConfig,
    addr: SocketAddr,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let dag_id = config.airflow.dag_id().to_owned();
    let alerts = config.alerts.join(",");
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tracing::info!(
        event = "server_started",
        addr = %local,
        dag_id = %dag_id,
        alerts = %alerts,
        "retrain-trigger listening"
    );
    axum::serve(listener, router(config))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn metrics(State(bridge): State<Arc<Bridge>>) -> Response {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&bridge.registry.gather(), &mut out);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

impl Bridge {
    fn count(&self, outcome: &str) {
        self.notifications.with_label_values(&[outcome]).inc();
    }

    /// Whether the request carries the shared token (always, without a token file). A token file that
    /// cannot be read refuses everything: failing closed, and loudly.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(path) = &self.config.token_file else {
            return true;
        };
        let want = match std::fs::read_to_string(path) {
            Ok(token) => token.trim().to_owned(),
            Err(error) => {
                tracing::error!(event = "token_file_unreadable", path = %path.display(), %error);
                return false;
            }
        };
        let got = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        !want.is_empty() && constant_time_eq(got.as_bytes(), want.as_bytes())
    }
}

/// Compares without an early exit on the first differing byte (the token is a credential).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn notification(
    State(bridge): State<Arc<Bridge>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !bridge.authorized(&headers) {
        bridge.count("rejected");
        tracing::warn!(event = "notification_unauthorized");
        return (StatusCode::UNAUTHORIZED, "missing or wrong bearer token\n").into_response();
    }
    let incident = match alert::parse(&body) {
        Ok(alert::Notice::Firing(incident)) => incident,
        Ok(alert::Notice::Resolved) => {
            bridge.count("ignored");
            tracing::info!(event = "notification_ignored", reason = "nothing firing");
            return (StatusCode::OK, "nothing firing: no run\n").into_response();
        }
        Err(error) => {
            bridge.count("rejected");
            tracing::warn!(event = "notification_rejected", %error);
            return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response();
        }
    };
    if !bridge.config.alerts.contains(&incident.alertname) {
        bridge.count("ignored");
        tracing::warn!(
            event = "notification_ignored",
            reason = "alert not configured to retrain",
            alertname = %incident.alertname
        );
        return (
            StatusCode::OK,
            format!("{} does not start retraining\n", incident.alertname),
        )
            .into_response();
    }
    let run_id = incident.run_id();
    let dag_id = bridge.config.airflow.dag_id();
    match bridge
        .config
        .airflow
        .trigger(&run_id, &incident.conf(), &incident.note())
        .await
    {
        Ok(triggered) => {
            let (outcome, text) = match triggered {
                airflow::Triggered::Created => ("triggered", "started"),
                airflow::Triggered::AlreadyExists => ("duplicate", "already exists"),
            };
            bridge.count(outcome);
            tracing::info!(
                event = "retrain_triggered",
                outcome,
                dag_id = %dag_id,
                run_id = %run_id,
                alertname = %incident.alertname,
                starts_at = %incident.starts_at_rfc3339(),
                firing = incident.firing,
            );
            (StatusCode::OK, format!("{dag_id} run {run_id} {text}\n")).into_response()
        }
        Err(error) => {
            bridge.count("failed");
            tracing::error!(
                event = "retrain_trigger_failed",
                dag_id = %dag_id,
                run_id = %run_id,
                alertname = %incident.alertname,
                %error
            );
            (StatusCode::BAD_GATEWAY, format!("{error}\n")).into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names dashboards and rules may read (deploy/monitoring/metrics-contract.txt) are the bridge's.
    #[test]
    fn exports_exactly_the_contract_names() {
        assert_eq!(
            crate::contract_names("fraudops_retrain_trigger_"),
            [NOTIFICATIONS]
        );
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
