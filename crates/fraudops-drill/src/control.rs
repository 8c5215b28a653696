//! The drill's own HTTP endpoints on one loopback port: the webhook sink that plays the administrator and
//! the on-call chat (Alertmanager's Slack receivers post here), and the stand-in exporters Prometheus
//! scrapes (`/metrics/cadvisor`, `/metrics/kube-state-metrics`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde::Serialize;

use crate::error::DrillError;
use crate::exporter::{ClusterSnapshot, render_cadvisor, render_kube_state_metrics};

/// One POST the sink received.
#[derive(Debug, Clone, Serialize)]
pub struct Notification {
    /// The hook (`admin`, `oncall`): which secrets/*-chat-url it came through.
    pub hook: String,
    /// When it arrived (RFC 3339).
    pub received_at: String,
    /// Seconds since the attack started (filled in by the report).
    pub t_seconds: Option<f64>,
    /// The JSON body as received (Slack format).
    pub body: serde_json::Value,
}

impl Notification {
    /// `attachments[0].title` of a Slack payload: `[FIRING:1] AdminNotification_MaxScaleHighCPU ...`.
    pub fn title(&self) -> &str {
        self.body
            .pointer("/attachments/0/title")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    }
}

/// The notifications received, shared with the drill.
#[derive(Clone, Default)]
pub struct Sink {
    received: Arc<Mutex<Vec<(std::time::Instant, Notification)>>>,
}

impl Sink {
    /// Everything received so far, with the instant it arrived.
    pub fn received(&self) -> Vec<(std::time::Instant, Notification)> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Notifications of one hook.
    pub fn of(&self, hook: &str) -> Vec<(std::time::Instant, Notification)> {
        self.received()
            .into_iter()
            .filter(|(_, n)| n.hook == hook)
            .collect()
    }

    fn push(&self, n: Notification) {
        tracing::info!(event = "notification_received", hook = %n.hook, title = %n.title());
        if let Ok(mut r) = self.received.lock() {
            r.push((std::time::Instant::now(), n));
        }
    }
}

/// Produces the cluster state at scrape time.
pub type SnapshotFn = Arc<dyn Fn() -> ClusterSnapshot + Send + Sync>;

#[derive(Clone)]
struct AppState {
    sink: Sink,
    snapshot: SnapshotFn,
}

async fn hook(
    State(s): State<AppState>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> impl IntoResponse {
    // Keep whatever arrives, even if it is not JSON: the report shows it as a string.
    let body = serde_json::from_slice(&body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&body).into_owned()));
    s.sink.push(Notification {
        hook: name,
        received_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        t_seconds: None,
        body,
    });
    (StatusCode::OK, "ok")
}

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

async fn cadvisor(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        render_cadvisor(&(s.snapshot)()),
    )
}

async fn kube_state_metrics(State(s): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, TEXT_FORMAT)],
        render_kube_state_metrics(&(s.snapshot)()),
    )
}

/// Binds a loopback port and serves the sink and the exporters until `shutdown`.
pub async fn start(
    sink: Sink,
    snapshot: SnapshotFn,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<SocketAddr, DrillError> {
    let app = axum::Router::new()
        .route("/hooks/{name}", post(hook))
        .route("/metrics/cadvisor", get(cadvisor))
        .route("/metrics/kube-state-metrics", get(kube_state_metrics))
        .with_state(AppState { sink, snapshot });
    let (listener, addr) = crate::process::bind_loopback("the drill's control port").await?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::warn!(event = "control_server_failed", error = %e);
        }
    });
    Ok(addr)
}
