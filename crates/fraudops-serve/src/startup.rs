//! Wiring: build the router, bind the listeners, run until a shutdown signal, drain gracefully.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::routing::get;
use fraudops_store::{FeatureStore, ScoreRecorder};
use tokio::net::TcpListener;
use utoipa::OpenApi;

use crate::auth::{Authenticator, KEYS_POLL};
use crate::config::ServeConfig;
use crate::connections::{ConnectionLimits, serve_connections};
use crate::dispatch::{Dispatch, ScoringGuard};
use crate::model_store::{ModelSource, ModelStore, rotate_drift, watch};
use crate::openapi::ApiDoc;
use crate::protection::{Admission, BodyLimits, ClientRateLimit};
use crate::routes::{self, AppInner, AppState};
use crate::system::{CpuSampler, cpu_limit_cores, resident_memory_bytes};
use crate::telemetry::{Metrics, STORE_OP_RECORD};

/// Scores queued for the store at most (about 100 bytes each); past it, scores are dropped and counted
/// (`ml_model_feature_store_errors_total{op="record"}`), never waited for.
const SCORE_QUEUE: usize = 65_536;
/// Longest the queued scores may take to reach the store at shutdown (within the pod's termination grace).
const SCORE_FLUSH: Duration = Duration::from_secs(5);
use crate::tracking::TrackLayer;

/// A store URL for logs: without the password (`redis://:secret@host` → `redis://***@host`).
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// A bound, ready-to-run API server.
pub struct Server {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
    source: ModelSource,
    rate_limit: Option<ClientRateLimit>,
    auth: Arc<Authenticator>,
    /// The task writing queued scores to the store (with a store), flushed at shutdown.
    score_writer: Option<tokio::task::JoinHandle<()>>,
    config: ServeConfig,
}

impl Server {
    /// Loads the first model (fails fast on a bad embedded or file model), binds the listeners.
    pub async fn bind(config: ServeConfig, source: ModelSource) -> anyhow::Result<Self> {
        let metrics = Arc::new(Metrics::new().context("registering metrics")?);
        let replica_id = config.resolved_replica_id();
        let mut store = ModelStore::new(
            metrics.clone(),
            replica_id.clone(),
            config.drift_window_seconds / 2,
            config.drift_clock == crate::config::DriftClock::Event,
        );
        if let Some(path) = &config.model_trusted_keys_file {
            let keys = fraudops_model::signing::TrustedKeys::load(path)
                .context("MODEL_TRUSTED_KEYS_FILE")?;
            store = store.with_trusted_keys(keys);
        }
        let store = Arc::new(store);
        store
            .load_initial(&source)
            .context("loading the initial model")?;
        let openapi_json = ApiDoc::openapi()
            .to_pretty_json()
            .context("rendering the OpenAPI document")?;
        // Lazy: a store that is down at start-up is not an error (requests are scored without history and
        // counted until it answers); a URL that is not Redis's is.
        let features = config
            .feature_store
            .connect()
            .context("configuring the feature store")?;
        // The scores of direct calls, for the label consumer: written in batches by a task of their own, on
        // a connection and breakers of their own.
        let recorder_store = features
            .as_ref()
            .map(FeatureStore::own_connection)
            .transpose()
            .context("configuring the feature store")?;
        let (scores, score_writer) = recorder_store
            .map(|store| {
                let metrics = metrics.clone();
                ScoreRecorder::spawn(store, SCORE_QUEUE, move |n, _| {
                    metrics
                        .feature_store_errors
                        .with_label_values(&[STORE_OP_RECORD])
                        .inc_by(n as u64);
                })
            })
            .unzip();
        let state = Arc::new(AppInner {
            scores,
            features,
            store,
            metrics,
            replica_id,
            draining: false.into(),
            max_body_bytes: config.max_body_bytes,
            max_batch_size: config.max_batch_size,
            openapi_json,
        });
        let addr = format!("{}:{}", config.bind, config.port);
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let metrics_listener = match config.metrics_port {
            Some(port) => {
                let addr = format!("{}:{port}", config.bind);
                Some(
                    TcpListener::bind(&addr)
                        .await
                        .with_context(|| format!("binding {addr}"))?,
                )
            }
            None => None,
        };
        let rate_limit = ClientRateLimit::new(config.rate_limit_rps, config.rate_limit_burst);
        let auth = Arc::new(match &config.api_keys_file {
            Some(path) => Authenticator::from_file(path).context("loading API_KEYS_FILE")?,
            None => Authenticator::open(),
        });
        Ok(Self {
            score_writer,
            auth,
            listener,
            metrics_listener,
            state,
            source,
            rate_limit,
            config,
        })
    }

    /// Where the API listens (tests bind port 0 and read it here).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Where the separate metrics listener listens, if configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The whole application as the service each connection runs; benches drive it without a socket.
    pub fn dispatch(&self) -> Dispatch {
        let guard = ScoringGuard {
            auth: self.auth.clone(),
            admission: Admission::new(
                self.config.max_in_flight,
                self.rate_limit.clone(),
                (self.config.max_queue_wait_ms > 0)
                    .then(|| Duration::from_millis(self.config.max_queue_wait_ms)),
            ),
            bodies: BodyLimits::new(
                self.config.max_body_bytes,
                Duration::from_secs(self.config.body_read_timeout_seconds),
                self.config.max_body_bytes_in_flight,
            ),
        };
        Dispatch::new(
            self.state.clone(),
            guard,
            self.router(),
            self.config.coalesce_writes,
        )
    }

    /// Every route but the scoring ones, which [`Dispatch`] answers itself. `/metrics` only when no
    /// METRICS_PORT serves it.
    fn router(&self) -> Router {
        let router = Router::new()
            .route("/", get(routes::service_info))
            .route("/health", get(routes::health))
            .route("/ready", get(routes::ready));
        let router = if self.metrics_listener.is_none() {
            router.route("/metrics", get(routes::metrics))
        } else {
            router
        };
        router
            .route("/openapi.json", get(routes::openapi_json))
            .route("/docs", get(routes::docs))
            .route("/docs/swagger-ui-bundle.js", get(routes::docs_js))
            .route("/docs/swagger-ui.css", get(routes::docs_css))
            .fallback(routes::not_found)
            .layer(TrackLayer::new(self.state.metrics.clone()))
            .with_state(self.state.clone())
    }

    /// Serves until `shutdown` resolves; then readiness turns false, in-flight requests finish (at most
    /// SHUTDOWN_GRACE_SECONDS), and the call returns.
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let dispatch = Arc::new(self.dispatch());
        let state = self.state.clone();
        let grace = Duration::from_secs(self.config.shutdown_grace_seconds);
        let (limit, limit_source) = cpu_limit_cores(self.config.cpu_limit_cores);
        // Plain values; an absent metrics address or model leaves its field out (tracing records an Option
        // only when it is Some).
        let model_version = state.store.get().map(|m| m.model.version().to_owned());
        tracing::info!(event = "server_started", addr = %self.local_addr(),
            metrics_addr = self.metrics_addr().map(tracing::field::display),
            replica_id = %state.replica_id, cpu_limit_cores = limit, cpu_limit_source = limit_source.as_str(),
            model_version = model_version.as_deref(),
            feature_store = self.config.feature_store.url.as_deref().map(redacted),
            api_keys = self.auth.is_enforced().then(|| self.auth.key_count()),
            quota_rps = self.config.rate_limit_rps);

        let watcher = tokio::spawn(watch(
            state.store.clone(),
            self.source.clone(),
            Duration::from_secs(self.config.model_poll_seconds.max(1)),
        ));
        let sampler = tokio::spawn(sample_system(state.metrics.clone(), limit));
        let drift = tokio::spawn(rotate_drift(
            state.store.clone(),
            Duration::from_secs(self.config.drift_window_seconds / 2),
        ));
        let keys = self.auth.is_enforced().then(|| {
            let auth = self.auth.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(KEYS_POLL).await;
                    match auth.reload() {
                        Ok(true) => tracing::info!(event = "api_keys_reloaded", keys = auth.key_count()),
                        Ok(false) => {}
                        Err(error) => tracing::error!(event = "api_keys_invalid", error = %error,
                            keys = auth.key_count(), "the keys file changed and cannot be used; the keys in force stay"),
                    }
                }
            })
        });
        let janitor = self.rate_limit.clone().map(|limit| {
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    limit.forget_idle();
                }
            })
        });

        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let draining = state.clone();
        tokio::spawn(async move {
            shutdown.await;
            draining.draining.store(true, Ordering::SeqCst);
            tracing::info!(event = "draining", grace_seconds = grace.as_secs());
            let _ = stop_tx.send(true);
        });
        let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|&s| s).await;
        };

        let metrics_server = self.metrics_listener.map(|listener| {
            let (store, metrics) = (state.store.clone(), state.metrics.clone());
            let app = Router::new().route(
                "/metrics",
                get(move || async move { routes::metrics_text(&store, &metrics) }),
            );
            tokio::spawn(
                axum::serve(listener, app)
                    .with_graceful_shutdown(stopped(stop_rx.clone()))
                    .into_future(),
            )
        });
        let limits = ConnectionLimits::new(
            self.config.max_connections,
            Duration::from_secs(self.config.header_read_timeout_seconds),
        );
        tracing::info!(
            event = "connection_limits",
            max_connections = limits.max_connections,
            header_read_timeout_seconds = self.config.header_read_timeout_seconds,
            max_queue_wait_ms = self.config.max_queue_wait_ms,
            max_in_flight = self.config.max_in_flight
        );
        let server = serve_connections(
            self.listener,
            dispatch,
            limits,
            state.metrics.clone(),
            stopped(stop_rx.clone()),
        );
        let deadline = async {
            stopped(stop_rx.clone()).await;
            tokio::time::sleep(grace).await;
        };
        tokio::select! {
            () = server => {},
            () = deadline => tracing::warn!(event = "grace_period_expired", "in-flight requests did not finish within the grace period"),
        }
        watcher.abort();
        sampler.abort();
        drift.abort();
        if let Some(j) = janitor {
            j.abort();
        }
        if let Some(k) = keys {
            k.abort();
        }
        if let Some(m) = metrics_server {
            m.abort();
        }
        // The scores of the last requests still queued reach the store, so their labels find them.
        if let (Some(recorder), Some(writer)) = (&state.scores, self.score_writer) {
            recorder.stop();
            if tokio::time::timeout(SCORE_FLUSH, writer).await.is_err() {
                tracing::warn!(
                    event = "scores_not_flushed",
                    "the store did not take the queued scores in time"
                );
            }
        }
        tracing::info!(event = "server_stopped");
        Ok(())
    }
}

/// Refreshes the CPU and memory gauges every few seconds.
async fn sample_system(metrics: Arc<Metrics>, limit_cores: f64) {
    let mut cpu = CpuSampler::new(limit_cores);
    loop {
        metrics
            .memory
            .set(i64::try_from(resident_memory_bytes()).unwrap_or(i64::MAX));
        tokio::time::sleep(Duration::from_secs(5)).await;
        metrics.cpu_ratio.set(cpu.sample());
    }
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
