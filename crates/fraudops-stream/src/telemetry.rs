//! The Kafka metrics of SPEC §4.1, the worker's and the label consumer's own, each name written once
//! here, plus the `/metrics` listener. Code elsewhere calls the methods of [`KafkaMetrics`] (and
//! [`LabelMetrics`]); it never spells a metric name.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;

use crate::error::StreamError;
use fraudops_store::Recorded;

/// SPEC §4.1: messages read from Kafka.
pub const MESSAGES_CONSUMED: &str = "kafka_messages_consumed_total";
/// SPEC §4.1: messages acknowledged by the broker (predictions, dead letters, attack events).
pub const MESSAGES_PRODUCED: &str = "kafka_messages_produced_total";
/// SPEC §4.1: per partition, high watermark − the group's committed offset.
pub const CONSUMER_LAG: &str = "kafka_consumer_lag";
/// SPEC §4.1: messages waiting in the topic for the group (all partitions); HighKafkaQueueLength reads it.
pub const QUEUE_LENGTH: &str = "kafka_queue_length";
/// Receive → prediction acknowledged, per event (the Grafana "Stream processing latency" panel).
pub const PROCESSING_DURATION: &str = "stream_processing_duration_seconds";
/// Events sent to the dead-letter topic.
pub const DEAD_LETTERS: &str = "stream_dead_letters_total";
/// Scoring or delivery attempts that were retried.
pub const RETRIES: &str = "stream_retries_total";
/// The attack's current target rate (0 between phases and for `max`).
pub const ATTACK_TARGET_RATE: &str = "attack_target_rate";
/// Attack messages that could not be sent or were not acknowledged, by reason.
pub const ATTACK_ERRORS: &str = "attack_errors_total";
/// The attack's labels on `fraud-labels`, by outcome (`acknowledged`, `failed`). Their own name, not
/// `kafka_messages_produced_total`, which stays the transaction load that dashboards and the drill read.
pub const ATTACK_LABELS: &str = "attack_labels_total";
/// Labels the attack holds until its event-time clock passes their transaction's time plus the delay.
pub const ATTACK_LABELS_PENDING: &str = "attack_labels_pending";
/// Labels applied to the feature store by `fraudops labels`, by outcome (`label="fraud"|"genuine"`).
pub const LABELS_APPLIED: &str = "fraudops_labels_applied_total";
/// Label messages that could not be read as a label (skipped; their offsets are committed).
pub const LABELS_INVALID: &str = "fraudops_labels_invalid_total";
/// Failed feature-store calls of the label consumer (each retried until it succeeds).
pub const LABELS_STORE_ERRORS: &str = "fraudops_labels_store_errors_total";

/// Online evaluation of `fraudops labels` over its sliding event-time window (see `labels::evaluation`).
pub const ONLINE_ROC_AUC: &str = "ml_model_online_roc_auc";
/// See [`ONLINE_ROC_AUC`].
pub const ONLINE_AVERAGE_PRECISION: &str = "ml_model_online_average_precision";
/// See [`ONLINE_ROC_AUC`].
pub const ONLINE_CARD_PRECISION: &str = "ml_model_online_card_precision_at_100";
/// See [`ONLINE_ROC_AUC`].
pub const ONLINE_PRECISION: &str = "ml_model_online_precision";
/// See [`ONLINE_ROC_AUC`].
pub const ONLINE_RECALL: &str = "ml_model_online_recall";
/// Labels joined with the score of their transaction (a redelivered label counts again).
pub const ONLINE_LABELLED: &str = "ml_model_online_labelled_total";
/// Labels for which no score was recorded (scored without a store, its entry lost or expired).
pub const ONLINE_UNSCORED: &str = "ml_model_online_unscored_total";
/// Joined samples the store did not keep (its write failed): the window has them, a restart's would not.
pub const ONLINE_NOT_SAVED: &str = "ml_model_online_samples_not_saved_total";
/// Labelled samples in the window now, and the frauds among them (the alert's "enough samples").
pub const ONLINE_WINDOW_SAMPLES: &str = "ml_model_online_window_samples";
/// See [`ONLINE_WINDOW_SAMPLES`].
pub const ONLINE_WINDOW_FRAUDS: &str = "ml_model_online_window_frauds";

/// Feature-store calls of the worker that gave no answer (those events were scored without history).
/// The lake archive: rows, files and bytes committed to the lake, per table.
pub const LAKE_ROWS: &str = "lake_rows_written_total";
/// Files committed (flushes and compactions' merged files).
pub const LAKE_FILES: &str = "lake_files_written_total";
/// Bytes of the files committed.
pub const LAKE_BYTES: &str = "lake_bytes_written_total";
/// Small files merged away by compaction.
pub const LAKE_COMPACTED: &str = "lake_files_compacted_total";
/// Records that cannot be archived, sent to the dead-letter topic.
pub const LAKE_DEAD_LETTERS: &str = "lake_dead_letters_total";
/// Failed flush or compaction attempts (nothing is committed meanwhile; retried).
pub const LAKE_WRITE_ERRORS: &str = "lake_write_errors_total";
/// Rows read and not yet in a committed file.
pub const LAKE_BUFFERED_ROWS: &str = "lake_buffered_rows";
/// Seconds since the last ledger commit (since start before the first); LakeArchiveStalled reads it.
pub const LAKE_SINCE_COMMIT: &str = "lake_seconds_since_last_commit";
pub const STREAM_STORE_ERRORS: &str = "stream_feature_store_errors_total";
/// Scores the worker could not record in the feature store for the label consumer (queue full or the
/// store failed); their labels count as unscored in the online evaluation.
pub const STREAM_SCORES_NOT_RECORDED: &str = "stream_scores_not_recorded_total";
/// Events the worker scored from the store without recording them, by reason (`future`: ahead of the
/// clock by more than MAX_CLOCK_SKEW; `too_old`: older than the store's reach for its card).
pub const STREAM_STORE_UNRECORDED: &str = "stream_feature_store_unrecorded_total";
/// Events the worker scored without history because the feature store failed for longer than
/// FEATURE_STORE_MAX_WAIT (their predictions say `feature_source: store_unavailable`).
pub const STREAM_SCORED_WITHOUT_HISTORY: &str = "stream_scored_without_history_total";
/// One feature-store round trip of the worker (a batch of events).
pub const STREAM_STORE_DURATION: &str = "stream_feature_store_duration_seconds";

/// Latency buckets from half a millisecond (in-process) to ten seconds (an overloaded API).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of a worker or an attack, registered in their own registry.
#[derive(Clone)]
pub struct KafkaMetrics {
    registry: Registry,
    consumed: IntCounterVec,
    produced: IntCounterVec,
    lag: IntGaugeVec,
    queue_length: IntGaugeVec,
    processing: Histogram,
    dead_letters: IntCounterVec,
    retries: IntCounterVec,
    target_rate: IntGauge,
    attack_errors: IntCounterVec,
    store_errors: IntCounter,
    store_unrecorded: IntCounterVec,
    without_history: IntCounter,
    store_duration: Histogram,
    scores_not_recorded: IntCounter,
    /// Second of the last `feature_store_failed` line.
    store_logged_at: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl KafkaMetrics {
    /// Registers every metric (all names are fixed, so this fails only on a programming error).
    pub fn new() -> Result<Self, StreamError> {
        let registry = Registry::new();
        let consumed = IntCounterVec::new(
            Opts::new(MESSAGES_CONSUMED, "Messages read from Kafka."),
            &["topic"],
        )?;
        let produced = IntCounterVec::new(
            Opts::new(
                MESSAGES_PRODUCED,
                "Messages written to Kafka and acknowledged by the broker.",
            ),
            &["topic"],
        )?;
        let lag = IntGaugeVec::new(
            Opts::new(
                CONSUMER_LAG,
                "Per partition: high watermark minus the group's committed offset.",
            ),
            &["group", "topic", "partition"],
        )?;
        let queue_length = IntGaugeVec::new(
            Opts::new(
                QUEUE_LENGTH,
                "Messages waiting in the topic for the group, all partitions.",
            ),
            &["group", "topic"],
        )?;
        let processing = Histogram::with_opts(
            HistogramOpts::new(
                PROCESSING_DURATION,
                "Seconds from receiving an event to the broker acknowledging its prediction.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        let dead_letters = IntCounterVec::new(
            Opts::new(DEAD_LETTERS, "Events sent to the dead-letter topic."),
            &["field"],
        )?;
        let retries = IntCounterVec::new(
            Opts::new(RETRIES, "Scoring or delivery attempts that were retried."),
            &["stage"],
        )?;
        let target_rate = IntGauge::new(ATTACK_TARGET_RATE, "Current target rate, messages/s.")?;
        let attack_errors = IntCounterVec::new(
            Opts::new(
                ATTACK_ERRORS,
                "Attack messages not sent or not acknowledged.",
            ),
            &["reason"],
        )?;
        let store_errors = IntCounter::new(
            STREAM_STORE_ERRORS,
            "Feature store calls that failed or timed out; those events were scored without history.",
        )?;
        let scores_not_recorded = IntCounter::new(
            STREAM_SCORES_NOT_RECORDED,
            "Scores not recorded in the feature store for the label consumer (queue full or store failed).",
        )?;
        let store_unrecorded = IntCounterVec::new(
            Opts::new(
                STREAM_STORE_UNRECORDED,
                "Events scored with the store's windows but not recorded there, by reason (future, too_old).",
            ),
            &["reason"],
        )?;
        for reason in [Recorded::Future, Recorded::TooOld] {
            store_unrecorded.with_label_values(&[reason.as_str()]);
        }
        let without_history = IntCounter::new(
            STREAM_SCORED_WITHOUT_HISTORY,
            "Events scored without history after the feature store failed for longer than FEATURE_STORE_MAX_WAIT.",
        )?;
        let store_duration = Histogram::with_opts(
            HistogramOpts::new(
                STREAM_STORE_DURATION,
                "One feature store round trip for a batch of events.",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )?;
        for c in [
            Box::new(consumed.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(store_errors.clone()),
            Box::new(store_unrecorded.clone()),
            Box::new(without_history.clone()),
            Box::new(store_duration.clone()),
            Box::new(scores_not_recorded.clone()),
            Box::new(produced.clone()),
            Box::new(lag.clone()),
            Box::new(queue_length.clone()),
            Box::new(processing.clone()),
            Box::new(dead_letters.clone()),
            Box::new(retries.clone()),
            Box::new(target_rate.clone()),
            Box::new(attack_errors.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Self {
            registry,
            consumed,
            produced,
            lag,
            queue_length,
            processing,
            dead_letters,
            retries,
            target_rate,
            attack_errors,
            store_errors,
            store_unrecorded,
            without_history,
            store_duration,
            scores_not_recorded,
            store_logged_at: Default::default(),
        })
    }

    /// One message read from `topic`.
    pub fn consumed(&self, topic: &str) {
        self.consumed.with_label_values(&[topic]).inc();
    }

    /// One message acknowledged on `topic`.
    pub fn produced(&self, topic: &str) {
        self.produced.with_label_values(&[topic]).inc();
    }

    /// Sets the lag of one partition.
    pub fn set_lag(&self, group: &str, topic: &str, partition: i32, lag: i64) {
        self.lag
            .with_label_values(&[group, topic, &partition.to_string()])
            .set(lag);
    }

    /// Drops the lag series of a partition this process no longer owns.
    pub fn forget_lag(&self, group: &str, topic: &str, partition: i32) {
        let _ = self
            .lag
            .remove_label_values(&[group, topic, &partition.to_string()]);
    }

    /// Sets the queue length of the group on the topic.
    pub fn set_queue_length(&self, group: &str, topic: &str, length: i64) {
        self.queue_length
            .with_label_values(&[group, topic])
            .set(length);
    }

    /// One event fully processed, `seconds` after it was received.
    pub fn processed(&self, seconds: f64) {
        self.processing.observe(seconds);
    }

    /// One event dead-lettered, blaming `field` (`none` when no field is to blame).
    pub fn dead_lettered(&self, field: Option<&str>) {
        // Field names come from the schema, so the label stays bounded; anything else is `other`.
        let label = match field {
            None => "none",
            Some(f)
                if f.len() <= 48
                    && f.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
            {
                f
            }
            Some(_) => "other",
        };
        self.dead_letters.with_label_values(&[label]).inc();
    }

    /// One retry at `stage` (`scoring` or `delivery`).
    pub fn retried(&self, stage: &'static str) {
        self.retries.with_label_values(&[stage]).inc();
    }

    /// The attack's current target (0 for none or `max`).
    pub fn set_target_rate(&self, rate: f64) {
        self.target_rate.set(rate.round() as i64);
    }

    /// `n` attack messages lost for `reason`.
    pub fn attack_errors(&self, reason: &str, n: u64) {
        self.attack_errors.with_label_values(&[reason]).inc_by(n);
    }

    /// One feature store round trip took `seconds`.
    pub fn feature_store_call(&self, seconds: f64) {
        self.store_duration.observe(seconds);
    }

    /// Events not recorded for the label consumer (queue full or store failed).
    pub fn scores_not_recorded(&self, n: usize) {
        self.scores_not_recorded.inc_by(n as u64);
    }

    /// The store scored an event without recording it (`recorded` is never [`Recorded::Yes`] here).
    pub fn store_unrecorded(&self, recorded: Recorded) {
        self.store_unrecorded
            .with_label_values(&[recorded.as_str()])
            .inc();
    }

    /// `n` events scored without history: the store failed for longer than the worker waits.
    pub fn scored_without_history(&self, n: usize) {
        self.without_history.inc_by(n as u64);
    }

    /// A feature store call failed for a batch of `events`: counted, and logged at most once a second.
    pub fn feature_store_failed(&self, error: &fraudops_store::StoreError, events: usize) {
        self.store_errors.inc();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if self
            .store_logged_at
            .swap(now, std::sync::atomic::Ordering::Relaxed)
            != now
        {
            tracing::warn!(event = "feature_store_failed", error = %error, events,
                "the batch waits for the store (FEATURE_STORE_MAX_WAIT)");
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

/// The attack's label counters, registered beside the Kafka ones only when the attack sends labels.
#[derive(Clone)]
pub struct AttackLabelMetrics {
    outcomes: IntCounterVec,
    pending: IntGauge,
}

impl AttackLabelMetrics {
    /// Registers the counters in `kafka`'s registry.
    pub fn register(kafka: &KafkaMetrics) -> Result<Self, StreamError> {
        let outcomes = IntCounterVec::new(
            Opts::new(
                ATTACK_LABELS,
                "Labels produced by the attack, by outcome (acknowledged, failed).",
            ),
            &["outcome"],
        )?;
        let pending = IntGauge::new(
            ATTACK_LABELS_PENDING,
            "Labels waiting for the attack's event-time clock to pass their due time.",
        )?;
        kafka.registry.register(Box::new(outcomes.clone()))?;
        kafka.registry.register(Box::new(pending.clone()))?;
        for outcome in ["acknowledged", "failed"] {
            outcomes.with_label_values(&[outcome]);
        }
        Ok(Self { outcomes, pending })
    }

    /// One label acknowledged by the broker.
    pub fn acknowledged(&self) {
        self.outcomes.with_label_values(&["acknowledged"]).inc();
    }

    /// One label lost (not handed over, or not acknowledged).
    pub fn failed(&self) {
        self.outcomes.with_label_values(&["failed"]).inc();
    }

    /// Labels not yet due.
    pub fn set_pending(&self, n: usize) {
        self.pending.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// The label consumer's own counters, registered beside the Kafka ones in the same registry (one
/// `/metrics`); only `fraudops labels` registers them, so the worker and the attack do not export them.
#[derive(Clone)]
pub struct LabelMetrics {
    applied: IntCounterVec,
    invalid: IntCounter,
    store_errors: IntCounter,
}

impl LabelMetrics {
    /// Registers the counters in `kafka`'s registry; both outcomes start at 0, so a rate is defined
    /// before the first label.
    pub fn register(kafka: &KafkaMetrics) -> Result<Self, StreamError> {
        let applied = IntCounterVec::new(
            Opts::new(
                LABELS_APPLIED,
                "Labels applied to the feature store's terminal risk, by outcome.",
            ),
            &["label"],
        )?;
        let invalid = IntCounter::new(
            LABELS_INVALID,
            "Label messages that are not a label (skipped, offset committed).",
        )?;
        let store_errors = IntCounter::new(
            LABELS_STORE_ERRORS,
            "Failed feature-store calls of the label consumer (retried).",
        )?;
        kafka.registry.register(Box::new(applied.clone()))?;
        kafka.registry.register(Box::new(invalid.clone()))?;
        kafka.registry.register(Box::new(store_errors.clone()))?;
        for label in ["fraud", "genuine"] {
            applied.with_label_values(&[label]);
        }
        Ok(Self {
            applied,
            invalid,
            store_errors,
        })
    }

    /// `n` labels with outcome `fraud` applied.
    pub fn applied(&self, fraud: bool, n: u64) {
        let label = if fraud { "fraud" } else { "genuine" };
        self.applied.with_label_values(&[label]).inc_by(n);
    }

    /// One message skipped as not a label.
    pub fn invalid(&self) {
        self.invalid.inc();
    }

    /// One failed store call.
    pub fn store_error(&self) {
        self.store_errors.inc();
    }
}

/// The online evaluation's gauges and counters (`fraudops labels`), the gauges per model version (the
/// version that scored each sample), so a version is only ever compared with its own offline metrics. A
/// metric that is undefined over a version's samples (one class only) reads NaN, which no alert threshold
/// compares true with; a version with no sample left in the window has no series.
pub struct EvaluationMetrics {
    gauges: [GaugeVec; 5],
    samples: IntGaugeVec,
    frauds: IntGaugeVec,
    labelled: IntCounter,
    unscored: IntCounter,
    not_saved: IntCounter,
    /// The versions whose series are exported now (removed when they leave the window).
    exported: Vec<String>,
}

impl EvaluationMetrics {
    /// Registers them in `kafka`'s registry.
    pub fn register(kafka: &KafkaMetrics) -> Result<Self, StreamError> {
        let by_version = ["model_version"];
        let gauge = |name: &str, help: &str| -> Result<GaugeVec, StreamError> {
            let g = GaugeVec::new(Opts::new(name, help), &by_version)?;
            kafka.registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let window = "of one model version's scores over the labelled transactions of the sliding event-time window";
        let gauges = [
            gauge(ONLINE_ROC_AUC, &format!("ROC AUC {window}."))?,
            gauge(
                ONLINE_AVERAGE_PRECISION,
                &format!("Average precision {window}."),
            )?,
            gauge(
                ONLINE_CARD_PRECISION,
                &format!("Card Precision@100, mean over days, {window}."),
            )?,
            gauge(
                ONLINE_PRECISION,
                &format!("Precision at the serving threshold {window}."),
            )?,
            gauge(
                ONLINE_RECALL,
                &format!("Recall at the serving threshold {window}."),
            )?,
        ];
        let samples = IntGaugeVec::new(
            Opts::new(
                ONLINE_WINDOW_SAMPLES,
                "Labelled samples in the window, by the model version that scored them.",
            ),
            &by_version,
        )?;
        let frauds = IntGaugeVec::new(
            Opts::new(
                ONLINE_WINDOW_FRAUDS,
                "Fraud labels in the window, by the model version that scored them.",
            ),
            &by_version,
        )?;
        let labelled = IntCounter::new(
            ONLINE_LABELLED,
            "Labels joined with the score their transaction was given.",
        )?;
        let unscored = IntCounter::new(
            ONLINE_UNSCORED,
            "Labels whose transaction has no recorded score (not joined).",
        )?;
        let not_saved = IntCounter::new(
            ONLINE_NOT_SAVED,
            "Joined samples the feature store did not keep (a restarted consumer's window lacks them).",
        )?;
        for c in [
            Box::new(samples.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(frauds.clone()),
            Box::new(labelled.clone()),
            Box::new(unscored.clone()),
            Box::new(not_saved.clone()),
        ] {
            kafka.registry.register(c)?;
        }
        Ok(Self {
            gauges,
            samples,
            frauds,
            labelled,
            unscored,
            not_saved,
            exported: Vec::new(),
        })
    }

    /// Joined samples whose write to the store failed.
    pub fn not_saved(&self, samples: usize) {
        self.not_saved.inc_by(samples as u64);
    }

    /// Labels joined (`labelled`) and not (`unscored`) in one batch.
    pub fn joined(&self, labelled: u64, unscored: u64) {
        self.labelled.inc_by(labelled);
        self.unscored.inc_by(unscored);
    }

    /// The window's metrics now, per model version; the series of versions no longer in the window go.
    pub fn set(&mut self, summaries: &[(std::sync::Arc<str>, crate::labels::evaluation::Summary)]) {
        for (version, s) in summaries {
            let labels = [&**version];
            let values = [
                s.roc_auc,
                s.average_precision,
                Some(s.card_precision_at_100).filter(|_| s.samples > 0),
                s.precision,
                s.recall,
            ];
            for (g, v) in self.gauges.iter().zip(values) {
                g.with_label_values(&labels).set(v.unwrap_or(f64::NAN));
            }
            self.samples
                .with_label_values(&labels)
                .set(i64::try_from(s.samples).unwrap_or(i64::MAX));
            self.frauds
                .with_label_values(&labels)
                .set(i64::try_from(s.frauds).unwrap_or(i64::MAX));
        }
        for gone in self
            .exported
            .iter()
            .filter(|&v| !summaries.iter().any(|(now, _)| **now == **v))
        {
            let labels = [gone.as_str()];
            for g in &self.gauges {
                let _ = g.remove_label_values(&labels);
            }
            let _ = self.samples.remove_label_values(&labels);
            let _ = self.frauds.remove_label_values(&labels);
        }
        self.exported = summaries.iter().map(|(v, _)| v.to_string()).collect();
    }
}

/// Binds the metrics listener on all interfaces (the pod's metrics port); port 0 picks a free one.
pub async fn bind_metrics(port: u16) -> Result<TcpListener, StreamError> {
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    TcpListener::bind(addr)
        .await
        .map_err(|e| StreamError::io(format!("binding the metrics port {port}"), e))
}

/// Serves `GET /metrics` (and `GET /` for a liveness probe) until the task is dropped.
pub async fn serve_metrics(listener: TcpListener, metrics: KafkaMetrics) {
    let app = Router::new()
        .route(
            "/metrics",
            get(move || {
                let metrics = metrics.clone();
                async move { metrics.render() }
            }),
        )
        .route("/", get(|| async { "ok\n" }));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(event = "metrics_server_failed", error = %e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_names_are_exposed() {
        let m = KafkaMetrics::new().unwrap();
        m.consumed("transactions-input");
        m.produced("fraud-predictions");
        m.set_lag("g", "transactions-input", 3, 17);
        m.set_queue_length("g", "transactions-input", 17);
        m.processed(0.002);
        let text = m.render();
        for name in [
            "kafka_messages_consumed_total{topic=\"transactions-input\"} 1",
            "kafka_messages_produced_total{topic=\"fraud-predictions\"} 1",
            "kafka_consumer_lag{group=\"g\",partition=\"3\",topic=\"transactions-input\"} 17",
            "kafka_queue_length{group=\"g\",topic=\"transactions-input\"} 17",
            "stream_processing_duration_seconds_count 1",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        m.forget_lag("g", "transactions-input", 3);
        assert!(!m.render().contains("partition=\"3\""));
    }

    #[test]
    fn label_counters_are_exported_only_where_registered() {
        let m = KafkaMetrics::new().unwrap();
        assert!(!m.render().contains(LABELS_APPLIED));
        let labels = LabelMetrics::register(&m).unwrap();
        let text = m.render();
        assert!(
            text.contains("fraudops_labels_applied_total{label=\"fraud\"} 0"),
            "{text}"
        );
        labels.applied(true, 2);
        labels.applied(false, 3);
        labels.invalid();
        labels.store_error();
        let text = m.render();
        for line in [
            "fraudops_labels_applied_total{label=\"fraud\"} 2",
            "fraudops_labels_applied_total{label=\"genuine\"} 3",
            "fraudops_labels_invalid_total 1",
            "fraudops_labels_store_errors_total 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }

    #[test]
    fn dead_letter_labels_stay_bounded() {
        let m = KafkaMetrics::new().unwrap();
        m.dead_lettered(Some("amount"));
        m.dead_lettered(Some("a field \"with\" junk"));
        m.dead_lettered(None);
        let text = m.render();
        assert!(text.contains("field=\"amount\""));
        assert!(text.contains("field=\"other\""));
        assert!(text.contains("field=\"none\""));
    }
}

/// The archive's metrics, registered beside the Kafka ones.
#[derive(Clone)]
pub struct LakeMetrics {
    rows: IntCounterVec,
    files: IntCounterVec,
    bytes: IntCounterVec,
    compacted: IntCounterVec,
    dead_letters: IntCounterVec,
    write_errors: IntCounter,
    buffered: IntGauge,
    /// Unix seconds (f64 bits) of the last commit, or of the start.
    last_commit: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl LakeMetrics {
    /// Registers the lake's series in `kafka`'s registry, every table's at 0, so rates are defined
    /// before the first file.
    pub fn register(kafka: &KafkaMetrics) -> Result<Self, StreamError> {
        let per_table = |name: &str, help: &str| -> Result<IntCounterVec, StreamError> {
            let vec = IntCounterVec::new(Opts::new(name, help), &["table"])?;
            kafka.registry.register(Box::new(vec.clone()))?;
            for table in fraudops_lake::Table::ALL {
                vec.with_label_values(&[table.name()]);
            }
            Ok(vec)
        };
        let rows = per_table(LAKE_ROWS, "Rows committed to the lake.")?;
        let files = per_table(LAKE_FILES, "Parquet files committed to the lake.")?;
        let bytes = per_table(
            LAKE_BYTES,
            "Bytes of the Parquet files committed to the lake.",
        )?;
        let compacted = per_table(
            LAKE_COMPACTED,
            "Small files merged into larger ones and deleted.",
        )?;
        let dead_letters = per_table(
            LAKE_DEAD_LETTERS,
            "Records that cannot be archived (sent to the dead-letter topic).",
        )?;
        let write_errors = IntCounter::new(
            LAKE_WRITE_ERRORS,
            "Failed flush or compaction attempts; nothing is committed until one succeeds.",
        )?;
        let buffered = IntGauge::new(
            LAKE_BUFFERED_ROWS,
            "Rows read and not yet committed to the lake.",
        )?;
        kafka.registry.register(Box::new(write_errors.clone()))?;
        kafka.registry.register(Box::new(buffered.clone()))?;
        let last_commit =
            std::sync::Arc::new(std::sync::atomic::AtomicU64::new(unix_now().to_bits()));
        let since = prometheus::Gauge::new(
            LAKE_SINCE_COMMIT,
            "Seconds since the archive last committed to the lake (since it started, before the first).",
        )?;
        let collector = SinceCollector {
            gauge: since,
            last: last_commit.clone(),
        };
        kafka.registry.register(Box::new(collector))?;
        Ok(Self {
            rows,
            files,
            bytes,
            compacted,
            dead_letters,
            write_errors,
            buffered,
            last_commit,
        })
    }

    /// One committed file of `table`.
    pub fn file_written(&self, table: fraudops_lake::Table, rows: usize, bytes: u64) {
        let t = [table.name()];
        self.rows.with_label_values(&t).inc_by(rows as u64);
        self.files.with_label_values(&t).inc();
        self.bytes.with_label_values(&t).inc_by(bytes);
    }

    /// `n` files of `table` merged away.
    pub fn compacted(&self, table: fraudops_lake::Table, n: usize) {
        self.compacted
            .with_label_values(&[table.name()])
            .inc_by(n as u64);
    }

    /// A ledger commit, now.
    pub fn committed(&self) {
        self.last_commit
            .store(unix_now().to_bits(), std::sync::atomic::Ordering::Relaxed);
    }

    /// A record of `table` dead-lettered.
    pub fn dead_lettered(&self, table: fraudops_lake::Table) {
        self.dead_letters.with_label_values(&[table.name()]).inc();
    }

    /// A failed write attempt.
    pub fn write_failed(&self) {
        self.write_errors.inc();
    }

    /// Rows buffered now.
    pub fn set_buffered(&self, rows: usize) {
        self.buffered.set(rows as i64);
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// `lake_seconds_since_last_commit`, computed when scraped (a gauge set at commit time would freeze
/// exactly when the archive stalls).
struct SinceCollector {
    gauge: prometheus::Gauge,
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl prometheus::core::Collector for SinceCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        self.gauge.desc()
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let last = f64::from_bits(self.last.load(std::sync::atomic::Ordering::Relaxed));
        self.gauge.set((unix_now() - last).max(0.0));
        self.gauge.collect()
    }
}

#[cfg(test)]
mod lake_tests {
    use super::*;

    /// Every name deploy/monitoring/metrics-lake.txt promises (what LakeArchiveStalled, LakeArchiveDown and
    /// the dashboard's lake row read) is exported, with every table's series present before the first file.
    #[test]
    fn the_archive_exports_every_name_of_its_contract() {
        let kafka = KafkaMetrics::new().unwrap();
        let lake = LakeMetrics::register(&kafka).unwrap();
        lake.file_written(fraudops_lake::Table::Labels, 10, 2048);
        lake.write_failed();
        let text = kafka.render();
        let names: Vec<&str> = include_str!("../../../deploy/monitoring/metrics-lake.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        assert_eq!(names.len(), 8, "{names:?}");
        for name in names {
            assert!(
                text.contains(&format!("\n{name}")),
                "{name} missing in\n{text}"
            );
        }
        for expected in [
            "lake_rows_written_total{table=\"labels\"} 10",
            "lake_rows_written_total{table=\"transactions\"} 0",
            "lake_bytes_written_total{table=\"labels\"} 2048",
            "lake_write_errors_total 1",
        ] {
            assert!(text.contains(expected), "{expected} missing in\n{text}");
        }
        let since = text
            .lines()
            .find_map(|l| l.strip_prefix("lake_seconds_since_last_commit "))
            .and_then(|v| v.parse::<f64>().ok())
            .expect("the gauge");
        assert!((0.0..5.0).contains(&since), "{since}");
    }
}
