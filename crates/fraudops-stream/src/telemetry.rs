//! The Kafka metrics of SPEC §4.1 and the worker's own, each name written once here, plus the `/metrics`
//! listener. Code elsewhere calls the methods of [`KafkaMetrics`]; it never spells a metric name.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use prometheus::{
    Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};
use tokio::net::TcpListener;

use crate::error::StreamError;

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
        for c in [
            Box::new(consumed.clone()) as Box<dyn prometheus::core::Collector>,
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

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
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
