//! A transaction file produced once to the topics the archive reads: every transaction to
//! `transactions-input` (keyed by card, as the attack does) and every label to `fraud-labels` (keyed by
//! terminal), each label known `label_delay` after its transaction. No pacing, no loop: what
//! `scripts/eval-lake.sh` archives and compares with training on the file itself.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fraudops_data::{EpochSeconds, Transaction};
use fraudops_wire::{LabelEvent, TransactionEvent};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};

use crate::config::KafkaArgs;
use crate::error::StreamError;

/// What a replay wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplaySummary {
    /// Transactions acknowledged by the broker.
    pub transactions: u64,
    /// Labels acknowledged by the broker.
    pub labels: u64,
    /// Messages the broker did not acknowledge.
    pub failed: u64,
    /// Seconds the replay took.
    pub seconds: u64,
}

/// Counts acknowledgements; the opaque is 0 for a transaction, 1 for a label.
#[derive(Default)]
struct Acks {
    transactions: AtomicU64,
    labels: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = Box<u8>;

    fn delivery(&self, result: &DeliveryResult<'_>, kind: Self::DeliveryOpaque) {
        match (result, *kind) {
            (Ok(_), 0) => self.transactions.fetch_add(1, Ordering::Relaxed),
            (Ok(_), _) => self.labels.fetch_add(1, Ordering::Relaxed),
            (Err(_), _) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

/// Produces every transaction and its label (known at transaction time + `label_delay`) to
/// `kafka.topic` and `labels_topic`, at most `max_batch` records per producer batch; `progress` is told the messages acknowledged so far. Blocks until
/// the broker acknowledged everything (or `timeout` passed).
pub fn replay_file(
    kafka: &KafkaArgs,
    labels_topic: &str,
    transactions: &[Transaction],
    label_delay: EpochSeconds,
    max_batch: usize,
    timeout: Duration,
    mut progress: impl FnMut(u64),
) -> Result<ReplaySummary, StreamError> {
    let started = Instant::now();
    let producer: BaseProducer<Acks> = kafka
        .client_config("fraudops-lake-replay")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set(
            "batch.num.messages",
            max_batch.clamp(1, 1_000_000).to_string(),
        )
        .set("queue.buffering.max.messages", "500000")
        .create_with_context(Acks::default())?;
    let mut buffer = Vec::with_capacity(256);
    let send = |topic: &str, key: String, payload: &[u8], kind: u8| -> Result<(), StreamError> {
        let mut opaque = Box::new(kind);
        loop {
            let record = BaseRecord::with_opaque_to(topic, opaque)
                .key(&key)
                .payload(payload);
            match producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record)) => {
                    opaque = record.delivery_opaque;
                    producer.poll(Duration::from_millis(5));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    };
    for (i, tx) in transactions.iter().enumerate() {
        buffer.clear();
        serde_json::to_writer(&mut buffer, &TransactionEvent::from(tx)).map_err(json_error)?;
        send(&kafka.topic, tx.customer_id.to_string(), &buffer, 0)?;
        buffer.clear();
        let label = LabelEvent::known_at(tx, tx.tx_datetime + label_delay);
        serde_json::to_writer(&mut buffer, &label).map_err(json_error)?;
        send(labels_topic, tx.terminal_id.to_string(), &buffer, 1)?;
        if i % 4096 == 0 {
            producer.poll(Duration::ZERO);
            let acks = producer.context();
            progress(
                acks.transactions.load(Ordering::Relaxed) + acks.labels.load(Ordering::Relaxed),
            );
        }
    }
    producer.flush(timeout)?;
    let acks = producer.context();
    progress(acks.transactions.load(Ordering::Relaxed) + acks.labels.load(Ordering::Relaxed));
    Ok(ReplaySummary {
        transactions: acks.transactions.load(Ordering::Relaxed),
        labels: acks.labels.load(Ordering::Relaxed),
        failed: acks.failed.load(Ordering::Relaxed),
        seconds: started.elapsed().as_secs(),
    })
}

fn json_error(e: serde_json::Error) -> StreamError {
    StreamError::Config(format!("encoding an event: {e}"))
}
