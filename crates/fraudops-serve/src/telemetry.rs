//! The SPEC §4.1 metrics — every name and label written once, here (JSON logging is in `logging`).

use fraudops_features::{FEATURE_NAMES, N_FEATURES};
use fraudops_store::Recorded;
use fraudops_wire::FeatureSource;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Latency buckets from 50 µs to 10 s: scoring takes microseconds, an overloaded pod seconds.
const LATENCY_BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// The values `ml_model_errors_total{type}` can take; all are exported from the start at 0.
pub const ERROR_TYPES: [&str; 5] = [
    "validation",
    "prediction",
    "system",
    "model_load",
    "model_signature",
];

/// `ml_model_errors_total{type="model_load"}`: a refused artifact or an unreachable registry.
pub const ERROR_MODEL_LOAD: &str = "model_load";

/// `ml_model_errors_total{type="model_signature"}`: an artifact refused because it is unsigned or not signed
/// by a trusted key (MODEL_TRUSTED_KEYS_FILE).
pub const ERROR_MODEL_SIGNATURE: &str = "model_signature";

/// Why a request was refused before scoring: the `reason` of `http_requests_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Shed by the in-flight cap (503).
    Overload,
    /// Over the client's rate limit (429).
    RateLimit,
    /// Body over the size limit (413).
    BodyTooLarge,
    /// Batch over the item limit (413).
    BatchTooLarge,
    /// No valid API key (401).
    Unauthenticated,
    /// The key lacks a scope the request needs (403).
    Forbidden,
    /// The body did not arrive within its deadline (408).
    BodyTimeout,
}

impl RejectReason {
    /// Every reason, exported from the start at 0.
    pub const ALL: [Self; 7] = [
        Self::Overload,
        Self::RateLimit,
        Self::BodyTooLarge,
        Self::BatchTooLarge,
        Self::Unauthenticated,
        Self::Forbidden,
        Self::BodyTimeout,
    ];

    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Overload => "overload",
            Self::RateLimit => "rate_limit",
            Self::BodyTooLarge => "body_too_large",
            Self::BatchTooLarge => "batch_too_large",
            Self::Unauthenticated => "unauthenticated",
            Self::Forbidden => "forbidden",
            Self::BodyTimeout => "body_timeout",
        }
    }
}

/// The category of an error for metrics: which counters a response increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ml_model_errors_total{type="validation"}`.
    Validation,
    /// `http_requests_rejected_total{reason}` with this reason.
    Rejected(RejectReason),
    /// `ml_model_errors_total{type="system"}`.
    System,
}

/// `ml_model_reloads_total{result}`: a model installed or an artifact refused.
pub const RELOAD_SUCCESS: &str = "success";
/// See [`RELOAD_SUCCESS`].
pub const RELOAD_FAILURE: &str = "failure";

/// `ml_model_feature_store_errors_total{op}` of reading windows and recording transactions.
pub const STORE_OP_OBSERVE: &str = "observe";
/// `ml_model_feature_store_errors_total{op}` of recording scores for the label consumer: scores not
/// recorded (queue full, or their batch failed); the answer is unaffected.
pub const STORE_OP_RECORD: &str = "record";

/// `ml_model_predictions_total{result}` of a transaction scored as fraud.
pub const RESULT_FRAUD: &str = "fraud";
/// `ml_model_predictions_total{result}` of a transaction scored as genuine.
pub const RESULT_LEGIT: &str = "legit";

/// The `reason` of `api_client_refusals_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientRefusal {
    /// No `Authorization: Bearer` key (401).
    MissingKey,
    /// A key no client holds (401).
    InvalidKey,
    /// The key lacks a scope the request needs (403).
    Scope,
    /// The client is over its quota (429).
    Quota,
}

impl ClientRefusal {
    /// The label value.
    pub const fn label(self) -> &'static str {
        match self {
            Self::MissingKey => "missing_key",
            Self::InvalidKey => "invalid_key",
            Self::Scope => "scope",
            Self::Quota => "quota",
        }
    }
}

/// The scoring routes: nearly all traffic, so their label sets are resolved once, not per request.
pub const SCORING_ENDPOINTS: [&str; 2] = ["/predict", "/predict/batch"];

/// `POST` handles of one scoring route, for its successful requests.
struct ScoringRoute {
    endpoint: &'static str,
    ok: IntCounter,
    duration: Histogram,
}

/// Every metric the API exports, registered in its own registry (one per server, so tests can run
/// several servers in one process).
pub struct Metrics {
    registry: Registry,
    /// `ml_model_predictions_total{model_version,result}`.
    pub predictions: IntCounterVec,
    /// `ml_model_prediction_duration_seconds`: model scoring time per transaction.
    pub prediction_duration: Histogram,
    /// `ml_model_fraud_probability`: the score distribution (drift shows here first).
    pub fraud_probability: Histogram,
    /// `ml_model_confidence_score`.
    pub confidence: Histogram,
    /// `http_requests_total{method,endpoint,status}`.
    pub http_requests: IntCounterVec,
    /// `http_request_duration_seconds{method,endpoint}`.
    pub http_duration: HistogramVec,
    /// `http_requests_in_progress`.
    pub http_in_progress: IntGauge,
    /// `ml_model_errors_total{type}`.
    pub errors: IntCounterVec,
    /// `http_errors_total{status_class}`.
    pub http_errors: IntCounterVec,
    /// `ml_model_failed_predictions_total`: prediction requests answered without a prediction.
    pub failed_predictions: IntCounter,
    /// `http_requests_rejected_total{reason}`: shed, rate-limited and oversized requests.
    pub rejected: IntCounterVec,
    /// `ml_model_memory_usage_bytes`: resident memory of the process.
    pub memory: IntGauge,
    /// `ml_model_cpu_usage_ratio`: CPU used ÷ the container's CPU limit.
    pub cpu_ratio: Gauge,
    /// `ml_model_active_requests`: prediction requests being scored now.
    pub active_requests: IntGauge,
    /// `ml_model_info{model_version,library,source,replica_id}` = 1 for the served model.
    pub info: IntGaugeVec,
    /// `ml_model_reloads_total{result}`: model swaps (`success`) and refused artifacts (`failure`).
    pub reloads: IntCounterVec,
    /// `ml_model_offline_{roc_auc,average_precision,card_precision_at_100}`: the served model's test
    /// metrics from its artifact, labelled by `model_version`: the online metrics of `fraudops labels`
    /// carry the version that scored, and each version is compared with its own offline values.
    pub offline: [GaugeVec; 3],
    /// `ml_model_unknown_category_total`: transactions scored with a merchant category the model does not
    /// know (scored as missing instead of refused).
    pub unknown_category: IntCounter,
    /// `ml_model_feature_store_errors_total{op}`: store calls that gave no answer (the request was
    /// scored without history).
    pub feature_store_errors: IntCounterVec,
    /// `ml_model_feature_store_duration_seconds`: one store round trip (all of a request's transactions).
    pub feature_store_duration: Histogram,
    /// `ml_model_feature_store_unrecorded_total{reason}`: direct calls scored with the store's windows
    /// but not recorded there (`read_only`: the key may not record; `too_old`: older than the store's
    /// reach for its card).
    pub feature_store_unrecorded: IntCounterVec,
    /// `ml_model_feature_source_total{source}`, resolved per value in `FeatureSource::ALL` order: where
    /// each prediction's history came from (`store_unavailable`: needed and not reached).
    pub feature_source: [IntCounter; 4],
    /// `api_client_refusals_total{client,reason}`: requests refused because of who sent them
    /// (`missing_key`, `invalid_key`, `scope`, `quota`); `client` is `unknown` without a valid key.
    pub client_refusals: IntCounterVec,
    /// `ml_model_score_psi`: PSI of the live fraud probability against the model's reference. A vector
    /// without labels so the series can be absent (no reference, too few predictions), not a fake 0.
    score_psi: GaugeVec,
    /// `ml_model_feature_psi{feature}`: PSI of each live feature, labelled by its `FEATURE_NAMES` name.
    feature_psi: GaugeVec,
    /// `ml_model_drift_window_predictions`: predictions in the drift window (0 without a reference).
    drift_window: IntGauge,
    /// `http_request_queue_wait_seconds`: how long each scoring request waited for the CPU before it was
    /// read (what MAX_QUEUE_WAIT_MS sheds on; its tail says how close the replica runs to shedding).
    pub queue_wait: Histogram,
    /// `http_connections_open`: client connections open now.
    pub connections_open: IntGauge,
    /// `http_connections_refused_total`: connections closed at accept because MAX_CONNECTIONS were open.
    pub connections_refused: IntCounter,
    /// Pre-resolved handles for [`SCORING_ENDPOINTS`] (a label lookup hashes every label per call).
    scoring: Vec<ScoringRoute>,
}

impl Metrics {
    /// Registers every metric; label values that are known up front are created at 0.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let hist = |name: &str, help: &str, buckets: Vec<f64>| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
        };
        let mut m = Self {
            predictions: IntCounterVec::new(
                Opts::new(
                    "ml_model_predictions_total",
                    "Predictions made, by model version and result (fraud or legit).",
                ),
                &["model_version", "result"],
            )?,
            prediction_duration: hist(
                "ml_model_prediction_duration_seconds",
                "Time to score one transaction (features and model).",
                LATENCY_BUCKETS.to_vec(),
            )?,
            fraud_probability: hist(
                "ml_model_fraud_probability",
                "Distribution of predicted fraud probabilities.",
                vec![
                    0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99,
                ],
            )?,
            confidence: hist(
                "ml_model_confidence_score",
                "Distribution of prediction confidence (probability of the predicted class).",
                vec![0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999],
            )?,
            http_requests: IntCounterVec::new(
                Opts::new(
                    "http_requests_total",
                    "HTTP requests by method, route template and status.",
                ),
                &["method", "endpoint", "status"],
            )?,
            http_duration: HistogramVec::new(
                HistogramOpts::new(
                    "http_request_duration_seconds",
                    "HTTP request latency by method and route template.",
                )
                .buckets(LATENCY_BUCKETS.to_vec()),
                &["method", "endpoint"],
            )?,
            http_in_progress: IntGauge::new(
                "http_requests_in_progress",
                "HTTP requests being served now.",
            )?,
            errors: IntCounterVec::new(
                Opts::new(
                    "ml_model_errors_total",
                    "Errors by type: validation, prediction, system, model_load.",
                ),
                &["type"],
            )?,
            http_errors: IntCounterVec::new(
                Opts::new(
                    "http_errors_total",
                    "HTTP error responses by status class (4xx, 5xx).",
                ),
                &["status_class"],
            )?,
            failed_predictions: IntCounter::new(
                "ml_model_failed_predictions_total",
                "Prediction requests answered without a prediction (invalid input, no model).",
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "http_requests_rejected_total",
                    "Requests refused before scoring, by reason.",
                ),
                &["reason"],
            )?,
            memory: IntGauge::new(
                "ml_model_memory_usage_bytes",
                "Resident memory of the API process, bytes.",
            )?,
            cpu_ratio: Gauge::new(
                "ml_model_cpu_usage_ratio",
                "CPU used divided by the container's CPU limit (1.0 = at the limit).",
            )?,
            active_requests: IntGauge::new(
                "ml_model_active_requests",
                "Prediction requests being scored now.",
            )?,
            info: IntGaugeVec::new(
                Opts::new(
                    "ml_model_info",
                    "The served model (value 1), with its identity in labels.",
                ),
                &["model_version", "library", "source", "replica_id"],
            )?,
            reloads: IntCounterVec::new(
                Opts::new(
                    "ml_model_reloads_total",
                    "Model swaps (success) and refused artifacts (failure).",
                ),
                &["result"],
            )?,
            unknown_category: IntCounter::new(
                "ml_model_unknown_category_total",
                "Transactions scored with a merchant category the model has never seen (scored as unknown).",
            )?,
            offline: [
                GaugeVec::new(
                    Opts::new(
                        "ml_model_offline_roc_auc",
                        "ROC AUC of the served model on its test window (from the artifact).",
                    ),
                    &["model_version"],
                )?,
                GaugeVec::new(
                    Opts::new(
                        "ml_model_offline_average_precision",
                        "Average precision of the served model on its test window (from the artifact).",
                    ),
                    &["model_version"],
                )?,
                GaugeVec::new(
                    Opts::new(
                        "ml_model_offline_card_precision_at_100",
                        "Card Precision@100 of the served model on its test window (from the artifact).",
                    ),
                    &["model_version"],
                )?,
            ],
            feature_store_errors: IntCounterVec::new(
                Opts::new(
                    "ml_model_feature_store_errors_total",
                    "Feature store calls that failed or timed out, by operation; those requests were scored without history.",
                ),
                &["op"],
            )?,
            feature_store_duration: hist(
                "ml_model_feature_store_duration_seconds",
                "Time of one feature store round trip (read the windows and record the transactions).",
                LATENCY_BUCKETS.to_vec(),
            )?,
            feature_store_unrecorded: IntCounterVec::new(
                Opts::new(
                    "ml_model_feature_store_unrecorded_total",
                    "Direct calls scored with the feature store's windows but not recorded there, by reason (read_only, too_old).",
                ),
                &["reason"],
            )?,
            feature_source: {
                let by_source = IntCounterVec::new(
                    Opts::new(
                        "ml_model_feature_source_total",
                        "Predictions by where their history windows came from: store, request, none, store_unavailable (the store was needed and not reached).",
                    ),
                    &["source"],
                )?;
                registry.register(Box::new(by_source.clone()))?;
                FeatureSource::ALL.map(|s| by_source.with_label_values(&[s.as_str()]))
            },
            client_refusals: IntCounterVec::new(
                Opts::new(
                    "api_client_refusals_total",
                    "Requests refused because of their caller, by client id and reason (missing_key, invalid_key, scope, quota).",
                ),
                &["client", "reason"],
            )?,
            queue_wait: hist(
                "http_request_queue_wait_seconds",
                "Time a scoring request waited for the CPU (from its connection's wake-up to its first poll).",
                LATENCY_BUCKETS.to_vec(),
            )?,
            connections_open: IntGauge::new(
                "http_connections_open",
                "Client connections open now.",
            )?,
            connections_refused: IntCounter::new(
                "http_connections_refused_total",
                "Connections closed at accept because MAX_CONNECTIONS were already open.",
            )?,
            score_psi: GaugeVec::new(
                Opts::new(
                    "ml_model_score_psi",
                    "Population stability index of the live fraud probability against the served model's training-time reference (absent without a reference or with too few predictions).",
                ),
                &[],
            )?,
            feature_psi: GaugeVec::new(
                Opts::new(
                    "ml_model_feature_psi",
                    "Population stability index of each live feature against the served model's training-time reference.",
                ),
                &["feature"],
            )?,
            drift_window: IntGauge::new(
                "ml_model_drift_window_predictions",
                "Predictions in the sliding window the PSI gauges are computed over.",
            )?,
            registry,
            scoring: Vec::new(),
        };
        m.register_all()?;
        for t in ERROR_TYPES {
            m.errors.with_label_values(&[t]);
        }
        for class in ["4xx", "5xx"] {
            m.http_errors.with_label_values(&[class]);
        }
        for reason in RejectReason::ALL {
            m.rejected.with_label_values(&[reason.label()]);
        }
        m.feature_store_errors
            .with_label_values(&[STORE_OP_OBSERVE]);
        for why in [ClientRefusal::MissingKey, ClientRefusal::InvalidKey] {
            m.client_refusals
                .with_label_values(&[crate::auth::UNKNOWN_CLIENT, why.label()]);
        }
        for reason in [Recorded::ReadOnly, Recorded::TooOld] {
            m.feature_store_unrecorded
                .with_label_values(&[reason.as_str()]);
        }
        for result in [RELOAD_SUCCESS, RELOAD_FAILURE] {
            m.reloads.with_label_values(&[result]);
        }
        m.scoring = SCORING_ENDPOINTS
            .into_iter()
            .map(|endpoint| ScoringRoute {
                endpoint,
                ok: m
                    .http_requests
                    .with_label_values(&["POST", endpoint, "200"]),
                duration: m.http_duration.with_label_values(&["POST", endpoint]),
            })
            .collect();
        Ok(m)
    }

    /// Counts a request refused because of its caller (`client`: its id, or `unknown`).
    pub fn refuse_client(&self, client: &str, why: ClientRefusal) {
        self.client_refusals
            .with_label_values(&[client, why.label()])
            .inc();
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.predictions.clone()))?;
        r.register(Box::new(self.prediction_duration.clone()))?;
        r.register(Box::new(self.fraud_probability.clone()))?;
        r.register(Box::new(self.confidence.clone()))?;
        r.register(Box::new(self.http_requests.clone()))?;
        r.register(Box::new(self.http_duration.clone()))?;
        r.register(Box::new(self.http_in_progress.clone()))?;
        r.register(Box::new(self.errors.clone()))?;
        r.register(Box::new(self.http_errors.clone()))?;
        r.register(Box::new(self.failed_predictions.clone()))?;
        r.register(Box::new(self.rejected.clone()))?;
        r.register(Box::new(self.memory.clone()))?;
        r.register(Box::new(self.cpu_ratio.clone()))?;
        r.register(Box::new(self.active_requests.clone()))?;
        r.register(Box::new(self.info.clone()))?;
        r.register(Box::new(self.reloads.clone()))?;
        for g in &self.offline {
            r.register(Box::new(g.clone()))?;
        }
        r.register(Box::new(self.feature_store_errors.clone()))?;
        r.register(Box::new(self.unknown_category.clone()))?;
        r.register(Box::new(self.feature_store_duration.clone()))?;
        r.register(Box::new(self.feature_store_unrecorded.clone()))?;
        r.register(Box::new(self.client_refusals.clone()))?;
        r.register(Box::new(self.queue_wait.clone()))?;
        r.register(Box::new(self.connections_open.clone()))?;
        r.register(Box::new(self.connections_refused.clone()))?;
        r.register(Box::new(self.score_psi.clone()))?;
        r.register(Box::new(self.feature_psi.clone()))?;
        r.register(Box::new(self.drift_window.clone()))?;
        Ok(())
    }

    /// Counts one finished HTTP request: status, latency, error class and the error's kind.
    pub fn record_request(
        &self,
        method: &str,
        endpoint: &str,
        status: axum::http::StatusCode,
        seconds: f64,
        error: Option<ErrorKind>,
    ) {
        let scoring = (method == "POST")
            .then(|| self.scoring.iter().find(|r| r.endpoint == endpoint))
            .flatten();
        match scoring {
            Some(route) => route.duration.observe(seconds),
            None => self
                .http_duration
                .with_label_values(&[method, endpoint])
                .observe(seconds),
        }
        match scoring {
            Some(route) if status == axum::http::StatusCode::OK => route.ok.inc(),
            _ => self
                .http_requests
                .with_label_values(&[method, endpoint, status.as_str()])
                .inc(),
        }
        match status.as_u16() {
            400..=499 => self.http_errors.with_label_values(&["4xx"]).inc(),
            500..=599 => self.http_errors.with_label_values(&["5xx"]).inc(),
            _ => {}
        }
        match error {
            Some(ErrorKind::Validation) => self.errors.with_label_values(&["validation"]).inc(),
            Some(ErrorKind::Rejected(reason)) => {
                self.rejected.with_label_values(&[reason.label()]).inc()
            }
            Some(ErrorKind::System) => self.errors.with_label_values(&["system"]).inc(),
            None => {}
        }
        if error.is_some_and(|k| !matches!(k, ErrorKind::Rejected(_)))
            && endpoint.starts_with("/predict")
        {
            self.failed_predictions.inc();
        }
    }

    /// Sets the drift gauges: `psi` is the score's and each feature's PSI, `None` removes the series
    /// (no reference, or too few predictions to say anything).
    pub fn set_drift(&self, samples: u64, psi: Option<(f64, &[f64; N_FEATURES])>) {
        self.drift_window
            .set(i64::try_from(samples).unwrap_or(i64::MAX));
        match psi {
            Some((score, features)) => {
                self.score_psi.with_label_values(&[] as &[&str]).set(score);
                for (name, &value) in FEATURE_NAMES.iter().zip(features) {
                    self.feature_psi.with_label_values(&[name]).set(value);
                }
            }
            None => {
                self.score_psi.reset();
                self.feature_psi.reset();
            }
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
