//! Where attack messages go: Kafka (`transactions-input`) or the scoring API. Both hand a message over
//! without waiting for its outcome; acknowledgements arrive later and land in the phase's counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fraudops_data::Transaction;
use fraudops_wire::TransactionEvent;
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::attack::report::PhaseStats;
use crate::config::KafkaArgs;
use crate::error::StreamError;
use crate::message::key_of;
use crate::telemetry::KafkaMetrics;

/// Why a message could not be handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The client's buffer is full: the destination is slower than the schedule.
    Backlogged,
    /// Anything else, with a short reason for the error table.
    Failed(&'static str),
}

impl SendError {
    /// The reason as it appears in the results.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Backlogged => "queue_full",
            Self::Failed(r) => r,
        }
    }
}

/// A message on its way, returned to the delivery callback.
struct Pending {
    stats: Arc<PhaseStats>,
    sent_at: Instant,
}

/// Counts acknowledgements into the phase that sent the message.
struct DeliveryCounter {
    metrics: KafkaMetrics,
    topic: String,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = Box<Pending>;

    fn delivery(&self, result: &DeliveryResult<'_>, pending: Box<Pending>) {
        match result {
            Ok(_) => {
                pending.stats.record_delivered(pending.sent_at.elapsed());
                self.metrics.produced(&self.topic);
            }
            Err((e, _)) => {
                let reason = match e {
                    KafkaError::MessageProduction(RDKafkaErrorCode::MessageTimedOut) => {
                        "delivery_timeout"
                    }
                    _ => "delivery_failed",
                };
                pending.stats.record_error(reason);
                self.metrics.attack_errors(reason, 1);
            }
        }
    }
}

/// Kafka: JSON events keyed by customer id, through librdkafka's batching producer.
pub struct KafkaSink {
    producer: Arc<ThreadedProducer<DeliveryCounter>>,
    topic: String,
    buf: Vec<u8>,
}

impl KafkaSink {
    /// A producer for `kafka.topic`.
    pub fn new(kafka: &KafkaArgs, metrics: KafkaMetrics) -> Result<Self, StreamError> {
        let context = DeliveryCounter {
            metrics,
            topic: kafka.topic.clone(),
        };
        let producer: ThreadedProducer<DeliveryCounter> = kafka
            .client_config("fraudops-attack")
            .set("linger.ms", "5")
            .set("batch.num.messages", "10000")
            // A bounded buffer (a few seconds at the highest paced rates): past it the broker is not
            // keeping up, which the attack reports as errors instead of hiding it in memory.
            .set("queue.buffering.max.messages", "100000")
            // Failures show up in the phase they belong to, not five minutes later.
            .set("message.timeout.ms", "30000")
            // Not idempotent (yet): against tansu, the broker every test here runs on, an idempotent producer
            // at the attack's batch sizes lost most of a burst (stream_waits_for_a_failing_store_then_scores_with_it:
            // 12 of 200 events arrived). The attack never sends a message again itself; a librdkafka retry after a
            // lost acknowledgement can still duplicate a synthetic transaction (docs/kafka.md).
            .create_with_context(context)?;
        Ok(Self {
            producer: Arc::new(producer),
            topic: kafka.topic.clone(),
            buf: Vec::with_capacity(512),
        })
    }

    /// Queues one event; never blocks.
    pub fn send(&mut self, tx: &Transaction, stats: &Arc<PhaseStats>) -> Result<(), SendError> {
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &synthetic_event(tx))
            .map_err(|_| SendError::Failed("serialize"))?;
        let key = key_of(tx);
        let pending = Box::new(Pending {
            stats: stats.clone(),
            sent_at: Instant::now(),
        });
        let record = BaseRecord::with_opaque_to(&self.topic, pending)
            .key(key.as_bytes())
            .payload(&self.buf);
        self.producer.send(record).map_err(|(e, _)| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => SendError::Backlogged,
            _ => SendError::Failed("produce_failed"),
        })
    }

    /// Waits until every queued message is acknowledged or has failed (at most `timeout`).
    pub async fn finish(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
    }
}

/// The scoring API: one `POST /predict` per event, open model (never waits for an answer to send the next).
pub struct HttpSink {
    client: reqwest::Client,
    url: String,
    in_flight: Arc<AtomicUsize>,
    max_in_flight: usize,
}

impl HttpSink {
    /// A client for the API at `base_url`.
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        max_in_flight: usize,
        timeout: Duration,
    ) -> Result<Self, StreamError> {
        let (client, url) =
            crate::api_client::predict_client(base_url, api_key, max_in_flight, timeout)?;
        Ok(Self {
            client,
            url,
            in_flight: Arc::new(AtomicUsize::new(0)),
            max_in_flight,
        })
    }

    /// Where the requests go.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Starts one request; refuses when `max_in_flight` are already waiting for the API.
    pub fn send(&mut self, tx: &Transaction, stats: &Arc<PhaseStats>) -> Result<(), SendError> {
        if self.in_flight.load(Ordering::Relaxed) >= self.max_in_flight {
            return Err(SendError::Failed("client_in_flight_limit"));
        }
        let body =
            serde_json::to_vec(&synthetic_event(tx)).map_err(|_| SendError::Failed("serialize"))?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let stats = stats.clone();
        let in_flight = self.in_flight.clone();
        tokio::spawn(async move {
            let sent_at = Instant::now();
            match request.send().await {
                Ok(response) if response.status().is_success() => {
                    // Read the body so the connection goes back to the pool.
                    let _ = response.bytes().await;
                    stats.record_delivered(sent_at.elapsed());
                }
                Ok(response) => stats.record_error(status_reason(response.status().as_u16())),
                Err(e) if e.is_timeout() => stats.record_error("timeout"),
                Err(e) if e.is_connect() => stats.record_error("connect"),
                Err(_) => stats.record_error("request_failed"),
            }
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        Ok(())
    }

    /// Waits until every request has its answer (at most `timeout`).
    pub async fn finish(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.in_flight.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A bounded set of reasons for HTTP statuses (the results table stays readable).
fn status_reason(status: u16) -> &'static str {
    match status {
        429 => "http_429",
        503 => "http_503",
        400..=499 => "http_4xx",
        500..=599 => "http_5xx",
        _ => "http_other",
    }
}

/// Kafka or HTTP.
pub enum Sink {
    /// `transactions-input`.
    Kafka(KafkaSink),
    /// The API.
    Http(HttpSink),
}

impl Sink {
    /// Hands one message over.
    pub fn send(&mut self, tx: &Transaction, stats: &Arc<PhaseStats>) -> Result<(), SendError> {
        match self {
            Self::Kafka(k) => k.send(tx, stats),
            Self::Http(h) => h.send(tx, stats),
        }
    }

    /// Waits for every outcome.
    pub async fn finish(&self, timeout: Duration) {
        match self {
            Self::Kafka(k) => k.finish(timeout).await,
            Self::Http(h) => h.finish(timeout).await,
        }
    }
}

/// An attack's event: marked synthetic, so every scorer keeps its history in the store's synthetic
/// namespace and the attack never changes a real card's windows (docs/feature-store.md).
fn synthetic_event(tx: &Transaction) -> TransactionEvent {
    let mut event = TransactionEvent::from(tx);
    event.request.synthetic = true;
    event
}
