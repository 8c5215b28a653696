//! Everything `serve` can be told, each option also an environment variable (12-factor).

use std::path::PathBuf;

/// Options of `fraudops serve`; the defaults serve the embedded model on port 8000.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeConfig {
    /// Port of the API (and of `/metrics` unless METRICS_PORT is set).
    #[arg(long, env = "PORT", default_value_t = 8000)]
    pub port: u16,
    /// Address to bind.
    #[arg(long, env = "BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind: String,
    /// Optional second listener that serves `/metrics`; when set, the API's port does not (so a route
    /// to the API never exposes the metrics).
    #[arg(long, env = "METRICS_PORT")]
    pub metrics_port: Option<u16>,
    /// Model artifact file (`model.json`); watched and hot-swapped when it changes.
    #[arg(long, env = "MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// Public keys models must be signed with (one hex Ed25519 key per line): every artifact from
    /// MODEL_PATH or the registry is then refused unless `model.json.sig` beside it verifies (the embedded
    /// model is part of the binary and needs none). Unset: artifacts are checked by their checksum only.
    #[arg(long, env = "MODEL_TRUSTED_KEYS_FILE")]
    pub model_trusted_keys_file: Option<PathBuf>,
    /// MLflow tracking server, used with MLFLOW_MODEL_URI.
    #[arg(long, env = "MLFLOW_TRACKING_URI")]
    pub mlflow_tracking_uri: Option<String>,
    /// Registry model to follow, e.g. `models:/fraud-detector@champion` or `models:/fraud-detector/3`.
    #[arg(long, env = "MLFLOW_MODEL_URI")]
    pub mlflow_model_uri: Option<String>,
    /// Seconds between checks for a new model version.
    #[arg(long, env = "MODEL_POLL_SECONDS", default_value_t = 30)]
    pub model_poll_seconds: u64,
    /// Prediction requests processed at once; more are shed with 503 at once.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 256)]
    pub max_in_flight: usize,
    /// Longest a prediction request may wait for the CPU (from its connection's wake-up to being read),
    /// milliseconds; past it the request is answered 503 + `Retry-After` at once. 0 disables. The default
    /// is one CFS period: a replica at its CPU limit pauses up to 100 ms minus its quota, and a request
    /// that waits out one pause is served in the next period, so only a queue longer than that is shed.
    #[arg(long, env = "MAX_QUEUE_WAIT_MS", default_value_t = 100)]
    pub max_queue_wait_ms: u64,
    /// Client connections open at once; more are closed at accept (counted). Capped by the process's
    /// file-descriptor limit, which start-up raises to its hard limit.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 16_384)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request's headers, idle keep-alive time included (hyper
    /// times both with one timer): slow-header (slowloris) and idle connections are closed past it.
    /// Longer than the 60 s a proxy such as ingress-nginx keeps idle upstream connections, so the proxy
    /// closes first and never sends on a connection the server is closing.
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 65, value_parser = clap::value_parser!(u64).range(1..))]
    pub header_read_timeout_seconds: u64,
    /// API keys: a file of lines `<client-id> <scope>[,<scope>...] sha256:<hex digest of the key>`
    /// (scopes `score`, `record`, `history`; see `fraudops api-key new`), re-read when it changes. Unset:
    /// no authentication, every caller may score, record and send history (one's own machine only).
    #[arg(long, env = "API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// Per-client quota on the scoring routes (requests/s): per authenticated client id with
    /// API_KEYS_FILE, per peer address without; 0 disables it.
    #[arg(long, env = "RATE_LIMIT_RPS", default_value_t = 0)]
    pub rate_limit_rps: u32,
    /// Burst a client may send above its rate.
    #[arg(long, env = "RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,
    /// Largest accepted request body, bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Seconds a request's body may take to arrive after its headers; past it, 408 and the connection
    /// is closed (a slow body holds memory and, once read, a place among the requests in flight).
    #[arg(long, env = "BODY_READ_TIMEOUT_SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub body_read_timeout_seconds: u64,
    /// Bytes of request bodies held at once, over all requests being read or scored; a body that would
    /// exceed it is shed (503). Bounds body memory whatever clients send: the default, 32 MiB, is an
    /// eighth of the API's 256Mi memory limit.
    #[arg(long, env = "MAX_BODY_BYTES_IN_FLIGHT", default_value_t = 32 << 20)]
    pub max_body_bytes_in_flight: usize,
    /// Largest accepted batch, transactions.
    #[arg(long, env = "MAX_BATCH_SIZE", default_value_t = 1000)]
    pub max_batch_size: usize,
    /// Seconds in-flight requests get to finish after SIGTERM before the process exits anyway.
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value_t = 20)]
    pub shutdown_grace_seconds: u64,
    /// Replica identity in responses, logs and metrics; the pod name in Kubernetes.
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
    /// CPU limit in cores for `ml_model_cpu_usage_ratio`; read from the cgroup when unset.
    #[arg(long, env = "CPU_LIMIT_CORES")]
    pub cpu_limit_cores: Option<f64>,
    /// Hold each prediction's response until the other requests ready at the same moment are scored,
    /// then write them back to back (see `dispatch.rs`); `false` writes each as soon as it is ready.
    #[arg(long, env = "COALESCE_WRITES", default_value_t = true, action = clap::ArgAction::Set)]
    pub coalesce_writes: bool,
    /// Drift window, seconds: `ml_model_score_psi` and `ml_model_feature_psi` compare the predictions of
    /// the last half to whole window with the model's reference (the older half is dropped every half).
    #[arg(long, env = "DRIFT_WINDOW_SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(2..))]
    pub drift_window_seconds: u64,
    /// Whose clock the drift window's halves follow: `wall` (a new half every half window) or `event`
    /// (the transactions' `tx_datetime`: a replay at any speed is measured as it would have been live;
    /// the timer still moves a window that event time does not). Wall by default: the attack and the
    /// drills replay days of event time in minutes, and live traffic's event time is the wall clock's.
    #[arg(long, env = "DRIFT_CLOCK", value_enum, default_value_t = DriftClock::Wall)]
    pub drift_clock: DriftClock,
    /// The online feature store: requests with `customer_id`, `terminal_id`, `tx_datetime` and no
    /// `history` are scored with the windows it holds, and recorded there.
    #[command(flatten)]
    pub feature_store: fraudops_store::StoreArgs,
}

/// See [`ServeConfig::drift_clock`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DriftClock {
    /// A new half every half window of wall time.
    Wall,
    /// A new half when a transaction's `tx_datetime` enters it (or, without one, by the timer).
    Event,
}

impl ServeConfig {
    /// A configuration for tests and embedding: ephemeral port, loopback, defaults elsewhere.
    pub fn for_tests() -> Self {
        Self {
            port: 0,
            bind: "127.0.0.1".into(),
            metrics_port: None,
            model_path: None,
            model_trusted_keys_file: None,
            mlflow_tracking_uri: None,
            mlflow_model_uri: None,
            model_poll_seconds: 30,
            max_in_flight: 256,
            max_queue_wait_ms: 100,
            max_connections: 16_384,
            header_read_timeout_seconds: 65,
            api_keys_file: None,
            rate_limit_rps: 0,
            rate_limit_burst: 100,
            max_body_bytes: 1 << 20,
            body_read_timeout_seconds: 10,
            max_body_bytes_in_flight: 32 << 20,
            max_batch_size: 1000,
            shutdown_grace_seconds: 5,
            replica_id: Some("test-replica".into()),
            feature_store: fraudops_store::StoreArgs {
                url: None,
                timeout: std::time::Duration::from_millis(25),
                max_clock_skew: fraudops_store::DEFAULT_MAX_CLOCK_SKEW,
                drain: true,
                username: None,
                password_file: None,
            },
            cpu_limit_cores: None,
            coalesce_writes: true,
            drift_window_seconds: 600,
            drift_clock: DriftClock::Wall,
        }
    }

    /// The replica id: explicit, else the host name (the pod name in Kubernetes), else `local`.
    pub fn resolved_replica_id(&self) -> String {
        self.replica_id
            .clone()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|s| s.trim().to_owned())
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "local".into())
    }
}
