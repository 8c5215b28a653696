//! The load balancer in front of the replicas: what the Service and the ingress are in the cluster.
//!
//! Request-level round robin over the **ready** endpoints (like ingress-nginx, unlike a connection-level
//! kube-proxy, so a new replica takes its share at once even from the stream worker's long-lived keep-alive
//! connections). A replica leaves the endpoints when it fails readiness or starts terminating, so draining
//! works as in the cluster. It also measures what a client sees: status counts and latency per window.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hdrhistogram::Histogram;
use tokio::net::TcpListener;

use crate::error::DrillError;

/// Largest request body forwarded (the API's own limit is 1 MiB).
const MAX_BODY: usize = 2 << 20;

/// One ready replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Pod name.
    pub pod: String,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
}

/// What clients saw in one window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowStats {
    /// 2xx answers.
    pub ok: u64,
    /// 5xx answers (from a replica, or 502/503 from the balancer itself).
    pub server_errors: u64,
    /// Other answers (4xx).
    pub other: u64,
    /// Requests refused because no replica was ready.
    pub no_endpoint: u64,
    /// 95th percentile latency of all answers, milliseconds (`None` without requests).
    pub p95_ms: Option<f64>,
}

struct Window {
    latency_us: Histogram<u64>,
    ok: u64,
    server_errors: u64,
    other: u64,
    no_endpoint: u64,
}

impl Window {
    fn new() -> Self {
        Self {
            // 1 µs .. 10 min, 3 significant digits: never saturates on an overloaded replica.
            latency_us: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("constant bounds are valid"),
            ok: 0,
            server_errors: 0,
            other: 0,
            no_endpoint: 0,
        }
    }
}

struct Inner {
    endpoints: RwLock<Vec<Endpoint>>,
    next: AtomicUsize,
    http: reqwest::Client,
    window: Mutex<Window>,
    total: AtomicU64,
}

/// The balancer; cheap to clone.
#[derive(Clone)]
pub struct Balancer(Arc<Inner>);

impl Balancer {
    /// A balancer with no endpoints (it answers 503 until some are ready).
    pub fn new(timeout: Duration) -> Result<Self, DrillError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| DrillError::http("building the balancer's client", e))?;
        Ok(Self(Arc::new(Inner {
            endpoints: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
            http,
            window: Mutex::new(Window::new()),
            total: AtomicU64::new(0),
        })))
    }

    /// Replaces the ready endpoints.
    pub fn set_endpoints(&self, endpoints: Vec<Endpoint>) {
        if let Ok(mut e) = self.0.endpoints.write()
            && *e != endpoints
        {
            tracing::info!(event = "endpoints_changed", ready = ?endpoints.iter().map(|e| e.pod.as_str()).collect::<Vec<_>>());
            *e = endpoints;
        }
    }

    /// The statistics since the previous call, and a fresh window.
    pub fn take_window(&self) -> WindowStats {
        let Ok(mut w) = self.0.window.lock() else {
            return WindowStats::default();
        };
        let old = std::mem::replace(&mut *w, Window::new());
        WindowStats {
            ok: old.ok,
            server_errors: old.server_errors,
            other: old.other,
            no_endpoint: old.no_endpoint,
            p95_ms: (!old.latency_us.is_empty())
                .then(|| old.latency_us.value_at_quantile(0.95) as f64 / 1000.0),
        }
    }

    fn pick(&self) -> Option<Endpoint> {
        let e = self.0.endpoints.read().ok()?;
        if e.is_empty() {
            return None;
        }
        let i = self.0.next.fetch_add(1, Ordering::Relaxed) % e.len();
        Some(e[i].clone())
    }

    fn record(&self, status: StatusCode, elapsed: Duration, no_endpoint: bool) {
        self.0.total.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut w) = self.0.window.lock() {
            let _ = w.latency_us.record((elapsed.as_micros() as u64).max(1));
            if no_endpoint {
                w.no_endpoint += 1;
            }
            if status.is_success() {
                w.ok += 1;
            } else if status.is_server_error() {
                w.server_errors += 1;
            } else {
                w.other += 1;
            }
        }
    }

    /// Serves on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), DrillError> {
        let app = axum::Router::new().fallback(forward).with_state(self);
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| DrillError::io("serving the load balancer", e))
    }

    /// Binds a loopback port for [`Balancer::serve`].
    pub async fn bind() -> Result<(TcpListener, SocketAddr), DrillError> {
        crate::process::bind_loopback("the load balancer").await
    }
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    let mut r = (status, message).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

async fn forward(State(lb): State<Balancer>, request: Request) -> Response {
    let start = Instant::now();
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        let r = plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n");
        lb.record(r.status(), start.elapsed(), false);
        return r;
    };
    let Some(endpoint) = lb.pick() else {
        let r = plain(StatusCode::SERVICE_UNAVAILABLE, "no ready replica\n");
        lb.record(r.status(), start.elapsed(), true);
        return r;
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream =
        lb.0.http
            .request(
                parts.method.clone(),
                format!("{}{}", endpoint.base_url, path),
            )
            .body(body);
    for name in [header::CONTENT_TYPE, header::ACCEPT] {
        if let Some(v) = parts.headers.get(&name) {
            upstream = upstream.header(name, v.clone());
        }
    }
    let response = match upstream.send().await {
        Ok(r) => {
            let status = r.status();
            let content_type = r.headers().get(header::CONTENT_TYPE).cloned();
            let retry_after = r.headers().get(header::RETRY_AFTER).cloned();
            match r.bytes().await {
                Ok(bytes) => {
                    let mut out = Response::new(Body::from(bytes));
                    *out.status_mut() = status;
                    if let Some(v) = content_type {
                        out.headers_mut().insert(header::CONTENT_TYPE, v);
                    }
                    if let Some(v) = retry_after {
                        out.headers_mut().insert(header::RETRY_AFTER, v);
                    }
                    out
                }
                Err(_) => plain(StatusCode::BAD_GATEWAY, "replica closed the response\n"),
            }
        }
        Err(e) if e.is_timeout() => plain(StatusCode::GATEWAY_TIMEOUT, "replica timed out\n"),
        Err(_) => plain(StatusCode::BAD_GATEWAY, "replica unreachable\n"),
    };
    lb.record(response.status(), start.elapsed(), false);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn backend(name: &'static str) -> String {
        let app = axum::Router::new().fallback(move || async move { name });
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let a = l.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(l, app).await });
        format!("http://{a}")
    }

    #[tokio::test]
    async fn round_robin_over_ready_endpoints_and_503_without_any() {
        let lb = Balancer::new(Duration::from_secs(5)).expect("balancer");
        let (l, addr) = Balancer::bind().await.expect("bind");
        tokio::spawn(lb.clone().serve(l, std::future::pending()));
        let client = reqwest::Client::new();
        let url = format!("http://{addr}/predict");

        let r = client.post(&url).send().await.expect("answer");
        assert_eq!(r.status(), 503);
        assert_eq!(
            r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );

        lb.set_endpoints(vec![
            Endpoint {
                pod: "a".into(),
                base_url: backend("a").await,
            },
            Endpoint {
                pod: "b".into(),
                base_url: backend("b").await,
            },
        ]);
        let mut seen = vec![];
        for _ in 0..4 {
            seen.push(
                client
                    .post(&url)
                    .body("{}")
                    .send()
                    .await
                    .expect("answer")
                    .text()
                    .await
                    .expect("text"),
            );
        }
        seen.sort();
        assert_eq!(seen, vec!["a", "a", "b", "b"]);
        let w = lb.take_window();
        assert_eq!((w.ok, w.server_errors, w.no_endpoint), (4, 1, 1));
        assert!(w.p95_ms.is_some());
        assert_eq!(lb.take_window().ok, 0, "a fresh window");
    }
}
