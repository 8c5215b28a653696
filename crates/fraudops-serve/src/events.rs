//! Every observable event of the API as a type whose `emit` writes its log line and its metrics together,
//! so a count and the line that explains it cannot drift apart (vector's `internal_events` pattern).
//!
//! Metric names and label values are `telemetry`'s; the field names of the log lines are here.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use fraudops_features::FeatureVector;
use fraudops_wire::{FeatureSource, TransactionId};

use crate::drift::WhenScored;
use crate::model_store::ServedModel;
use crate::telemetry::{ERROR_MODEL_LOAD, Metrics, RELOAD_FAILURE, RELOAD_SUCCESS};

/// One transaction scored: `prediction_made` and the prediction metrics of SPEC §4.1.
pub struct PredictionMade<'a> {
    /// The model that scored it (its per-version counters are resolved once).
    pub served: &'a ServedModel,
    /// The request's transaction id.
    pub transaction_id: &'a TransactionId,
    /// The feature vector the model scored (counted into the drift window).
    pub features: &'a FeatureVector,
    /// The model's fraud probability.
    pub fraud_probability: f64,
    /// The probability of the predicted class.
    pub confidence: f64,
    /// The decision at the serving threshold.
    pub is_fraud: bool,
    /// Time spent in the model, seconds.
    pub scoring_seconds: f64,
    /// Time since the request was read, milliseconds (the response's `processing_time_ms`).
    pub processing_time_ms: f64,
    /// The replica that answered.
    pub replica_id: &'a str,
    /// The request's merchant category was one the model does not know (scored as missing).
    pub unknown_merchant_category: bool,
    /// Where its history windows came from.
    pub feature_source: FeatureSource,
    /// When the transaction happened (the drift window's clock and part of the week).
    pub when: WhenScored,
}

impl PredictionMade<'_> {
    /// Counts and logs the prediction.
    pub fn emit(&self, metrics: &Metrics) {
        metrics.prediction_duration.observe(self.scoring_seconds);
        metrics.fraud_probability.observe(self.fraud_probability);
        metrics.confidence.observe(self.confidence);
        self.served.count(self.is_fraud);
        metrics.feature_source[self.feature_source.index()].inc();
        // A score made without the history the store was asked for is not the model's input
        // distribution; its shift is the outage's (FeatureStoreDegraded), not drift.
        if let (Some(window), true) = (
            &self.served.drift,
            self.feature_source != FeatureSource::StoreUnavailable,
        ) {
            window.record(self.features, self.fraud_probability, self.when);
        }
        if self.unknown_merchant_category {
            metrics.unknown_category.inc();
        }
        tracing::info!(
            event = "prediction_made",
            transaction_id = %DisplayId(self.transaction_id),
            fraud_probability = self.fraud_probability,
            processing_time_ms = self.processing_time_ms,
            model_version = self.served.model.version(),
            replica_id = self.replica_id,
            feature_source = self.feature_source.as_str(),
        );
    }
}

/// A model became the served one: the first (`model_loaded`) or a replacement (`model_swapped`).
pub struct ModelInstalled<'a> {
    /// The version served until now, if any.
    pub previous: Option<&'a str>,
    /// The version served from now on.
    pub version: &'a str,
    /// Where it came from.
    pub source: &'a str,
    /// Whether its artifact carries a drift reference (without one no PSI is exported).
    pub drift_reference: bool,
}

impl ModelInstalled<'_> {
    /// Logs the swap and counts `ml_model_reloads_total{result="success"}`.
    pub fn emit(&self, metrics: &Metrics) {
        match self.previous {
            Some(from) => tracing::info!(
                event = "model_swapped",
                from,
                to = self.version,
                source = self.source,
                drift_reference = self.drift_reference
            ),
            None => tracing::info!(
                event = "model_loaded",
                model_version = self.version,
                source = self.source,
                drift_reference = self.drift_reference
            ),
        }
        metrics.reloads.with_label_values(&[RELOAD_SUCCESS]).inc();
    }
}

/// An artifact was refused (bad checksum, wrong features, unreadable); the served model stays.
pub struct ModelRefused<'a> {
    /// Where the artifact came from.
    pub source: &'a str,
    /// Why it was refused.
    pub reason: &'a str,
    /// The version still served, if any.
    pub kept: Option<&'a str>,
}

impl ModelRefused<'_> {
    /// Logs the refusal; counts it as a `model_load` error and a failed reload.
    pub fn emit(&self, metrics: &Metrics) {
        match self.kept {
            Some(kept) => tracing::error!(
                event = "model_refused",
                error_type = ERROR_MODEL_LOAD,
                source = self.source,
                reason = self.reason,
                kept
            ),
            None => tracing::error!(
                event = "model_refused",
                error_type = ERROR_MODEL_LOAD,
                source = self.source,
                reason = self.reason
            ),
        }
        metrics.errors.with_label_values(&[ERROR_MODEL_LOAD]).inc();
        metrics.reloads.with_label_values(&[RELOAD_FAILURE]).inc();
    }
}

/// The model registry could not be asked (the served model stays; the poller retries).
pub struct RegistryUnreachable<'a> {
    /// What is followed (`models:/fraud-detector@champion`).
    pub registry: &'a str,
    /// The error's text.
    pub error: &'a str,
}

impl RegistryUnreachable<'_> {
    /// Logs it and counts it as a `model_load` error.
    pub fn emit(&self, metrics: &Metrics) {
        tracing::warn!(
            event = "registry_unreachable",
            error_type = ERROR_MODEL_LOAD,
            registry = self.registry,
            error = self.error
        );
        metrics.errors.with_label_values(&[ERROR_MODEL_LOAD]).inc();
    }
}

/// A feature store call gave no answer; the request was scored without history (never failed).
pub struct FeatureStoreFailed<'a> {
    /// The operation (`telemetry::STORE_OP_*`).
    pub op: &'static str,
    /// What went wrong.
    pub error: &'a fraudops_store::StoreError,
    /// Transactions scored without history because of it.
    pub transactions: usize,
}

/// Second of the last `feature_store_failed` line, and the failures not logged since: a store that is
/// down fails every request, and one line per second says so without flooding the log.
static STORE_LOGGED_AT: AtomicI64 = AtomicI64::new(i64::MIN);
static STORE_SUPPRESSED: AtomicU64 = AtomicU64::new(0);

impl FeatureStoreFailed<'_> {
    /// Counts every failure; logs at most one line per second, with how many it stands for.
    pub fn emit(&self, metrics: &Metrics) {
        metrics
            .feature_store_errors
            .with_label_values(&[self.op])
            .inc();
        let now = chrono_seconds();
        let last = STORE_LOGGED_AT.load(Ordering::Relaxed);
        if now > last
            && STORE_LOGGED_AT
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = STORE_SUPPRESSED.swap(0, Ordering::Relaxed);
            tracing::warn!(
                event = "feature_store_failed",
                op = self.op,
                error = %self.error,
                transactions = self.transactions,
                failures_not_logged = suppressed,
                "scored without history"
            );
        } else {
            STORE_SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Whole seconds of the wall clock (the log limiter's unit).
fn chrono_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A transaction id as the log shows it: a number bare, a text as is.
struct DisplayId<'a>(&'a TransactionId);

impl std::fmt::Display for DisplayId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            TransactionId::Number(n) => write!(f, "{n}"),
            TransactionId::Text(s) => f.write_str(s),
        }
    }
}
