//! The attack's labels: each transaction's outcome, produced to `fraud-labels` once the attack's
//! event-time clock has passed the transaction's time plus the label delay, the way chargebacks arrive.
//!
//! The clock is the `tx_datetime` of the latest transaction handed over (Kafka or HTTP), so the delay is
//! in event time: a replay of a month at 1,000 msg/s releases its labels as quickly as the month passes
//! in the data, not after three real days. Every outcome is a label, genuine ones too (`tx_fraud:
//! false`): they count as labelled transactions at their terminal, and a consumer applying a second label
//! for the same transaction replaces the first.
//!
//! Pending labels wait in a min-heap by due time (transactions usually come in time order, but a replayed
//! file need not be sorted). A label the producer's buffer cannot take now stays due and is tried again.
//!
//! At the end (phases done, alert fired or interrupted) the labels that are due are sent and the others
//! are **not**: the clock never passed them, and in real life those chargebacks would come later. The
//! report counts them (`not_due`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fraudops_data::{EpochSeconds, Transaction};
use fraudops_features::definition::{DAY, TERMINAL_DELAY_DAYS};
use fraudops_wire::{LabelEvent, TransactionId};
use rdkafka::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::attack::report::LabelReport;
use crate::attack::sink::SendError;
use crate::config::KafkaArgs;
use crate::error::StreamError;
use crate::telemetry::{AttackLabelMetrics, KafkaMetrics};

/// The longest label delay: the terminal-risk features read labels of transactions at least
/// `TERMINAL_DELAY_DAYS` old, so a label that arrives later than that misses windows it belongs to.
pub const MAX_LABEL_DELAY: EpochSeconds = TERMINAL_DELAY_DAYS * DAY;

/// Whether the attack produces labels (`--labels`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LabelMode {
    /// To Kafka in Kafka mode; none with `--http`.
    Auto,
    /// Always to Kafka, also with `--http` (the broker must be reachable).
    On,
    /// Never.
    Off,
}

impl LabelMode {
    /// Whether labels are produced when the transactions go to the API (`http`) or to Kafka.
    pub fn enabled(self, http: bool) -> bool {
        match self {
            Self::Auto => !http,
            Self::On => true,
            Self::Off => false,
        }
    }
}

/// `3d`, `12h`, `30m`, `90s` → seconds of event time; at most [`MAX_LABEL_DELAY`].
pub fn parse_label_delay(text: &str) -> Result<EpochSeconds, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("label delay {text:?}: give a unit, e.g. 3d, 12h, 90s"))?;
    let (number, unit) = text.split_at(split);
    let n: EpochSeconds = number.parse().map_err(|_| {
        format!("label delay {text:?}: expected a whole number and a unit (d, h, m, s)")
    })?;
    let unit_seconds = match unit {
        "d" => DAY,
        "h" => 3600,
        "m" => 60,
        "s" => 1,
        other => {
            return Err(format!(
                "label delay {text:?}: unknown unit {other:?} (d, h, m, s)"
            ));
        }
    };
    let seconds = n
        .checked_mul(unit_seconds)
        .filter(|&s| s <= MAX_LABEL_DELAY)
        .ok_or_else(|| {
            format!(
                "label delay {text:?} is longer than the {TERMINAL_DELAY_DAYS} days the terminal-risk \
                 features wait for labels (TERMINAL_DELAY_DAYS): their windows would miss labels that \
                 arrive later; use at most {TERMINAL_DELAY_DAYS}d"
            )
        })?;
    Ok(seconds)
}

/// `259200` → `3d`: the shortest exact spelling of a delay.
pub fn format_label_delay(seconds: EpochSeconds) -> String {
    match seconds {
        0 => "0s".into(),
        s if s % DAY == 0 => format!("{}d", s / DAY),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// What a label needs from its transaction (smaller than the transaction; the JSON is built when sent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    due: EpochSeconds,
    /// Order of arrival, so labels due at the same second leave in the order their transactions came.
    seq: u64,
    transaction_id: u64,
    customer_id: u64,
    terminal_id: u64,
    time: EpochSeconds,
    fraud: bool,
}

impl Pending {
    fn event(&self, synthetic: bool) -> LabelEvent {
        LabelEvent {
            transaction_id: TransactionId::Number(self.transaction_id),
            customer_id: self.customer_id,
            terminal_id: self.terminal_id,
            tx_datetime: fraudops_data::writer::format_datetime(self.time),
            tx_fraud: self.fraud,
            // Known once the event-time clock reached its due time: what the lake's training cutoff reads.
            labelled_at: Some(fraudops_data::writer::format_datetime(self.due)),
            synthetic,
        }
    }
}

impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Labels waiting for the event-time clock.
#[derive(Debug)]
pub struct LabelSchedule {
    delay: EpochSeconds,
    clock: Option<EpochSeconds>,
    heap: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    /// The labels are of synthetic transactions (the attack's): marked so, they are applied to the store's
    /// synthetic namespace and kept out of the online evaluation.
    synthetic: bool,
}

impl LabelSchedule {
    /// An empty schedule releasing each label `delay` seconds of event time after its transaction.
    pub fn new(delay: EpochSeconds) -> Self {
        Self {
            delay,
            clock: None,
            heap: BinaryHeap::new(),
            seq: 0,
            synthetic: false,
        }
    }

    /// The same schedule marking its labels synthetic (the attack's).
    pub fn synthetic(mut self) -> Self {
        self.synthetic = true;
        self
    }

    /// `tx` was handed over: its label is scheduled, and the clock moves to its time if that is later.
    pub fn record(&mut self, tx: &Transaction) {
        self.clock = Some(self.clock.map_or(tx.tx_datetime, |c| c.max(tx.tx_datetime)));
        self.heap.push(Reverse(Pending {
            due: tx.tx_datetime.saturating_add(self.delay),
            seq: self.seq,
            transaction_id: tx.transaction_id,
            customer_id: tx.customer_id,
            terminal_id: tx.terminal_id,
            time: tx.tx_datetime,
            fraud: tx.tx_fraud,
        }));
        self.seq += 1;
    }

    /// The next label whose due time the clock has reached, left in place until [`Self::take`].
    fn next_due(&self) -> Option<&Pending> {
        let clock = self.clock?;
        self.heap.peek().map(|r| &r.0).filter(|p| p.due <= clock)
    }

    /// Removes the label [`Self::next_due`] returned.
    fn take(&mut self) {
        self.heap.pop();
    }

    /// The labels due now, in due order (removing them).
    pub fn drain_due(&mut self) -> Vec<LabelEvent> {
        let mut out = Vec::new();
        while let Some(p) = self.next_due() {
            out.push(p.event(self.synthetic));
            self.take();
        }
        out
    }

    /// Labels not yet due (or due but not yet handed over).
    pub fn pending(&self) -> usize {
        self.heap.len()
    }
}

/// Counts acknowledgements of labels.
struct LabelDelivery {
    metrics: AttackLabelMetrics,
    delivered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl ClientContext for LabelDelivery {}

impl ProducerContext for LabelDelivery {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                self.metrics.acknowledged();
            }
            Err((e, _)) => {
                tracing::warn!(event = "label_delivery_failed", error = %e);
                self.failed.fetch_add(1, Ordering::Relaxed);
                self.metrics.failed();
            }
        }
    }
}

/// The schedule and a producer for `fraud-labels` (keyed by terminal id).
pub struct Labels {
    schedule: LabelSchedule,
    producer: ThreadedProducer<LabelDelivery>,
    topic: String,
    metrics: AttackLabelMetrics,
    buf: Vec<u8>,
    key: String,
    sent: u64,
    delivered: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Labels {
    /// A producer for `topic` on `kafka`'s broker, releasing labels `delay` seconds of event time late;
    /// `synthetic` for the attack's (its transactions are synthetic, and so are their outcomes), not for a
    /// replay of real transactions (`eval-online`).
    pub fn new(
        kafka: &KafkaArgs,
        topic: &str,
        delay: EpochSeconds,
        metrics: &KafkaMetrics,
        synthetic: bool,
    ) -> Result<Self, StreamError> {
        let metrics = AttackLabelMetrics::register(metrics)?;
        let delivered = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let producer = kafka
            .client_config("fraudops-attack-labels")
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000")
            .set("queue.buffering.max.messages", "100000")
            .set("message.timeout.ms", "30000")
            .create_with_context(LabelDelivery {
                metrics: metrics.clone(),
                delivered: delivered.clone(),
                failed: failed.clone(),
            })?;
        Ok(Self {
            schedule: if synthetic {
                LabelSchedule::new(delay).synthetic()
            } else {
                LabelSchedule::new(delay)
            },
            producer,
            topic: topic.to_owned(),
            metrics,
            buf: Vec::with_capacity(192),
            key: String::with_capacity(20),
            sent: 0,
            delivered,
            failed,
        })
    }

    /// `tx` was handed over: schedule its label and send every label now due.
    pub fn record(&mut self, tx: &Transaction) {
        self.schedule.record(tx);
        self.send_due();
    }

    /// Hands every due label to the producer; stops (returning false) when its buffer is full, leaving
    /// the rest due for the next call.
    fn send_due(&mut self) -> bool {
        let mut complete = true;
        while let Some(p) = self.schedule.next_due().copied() {
            match self.send(&p) {
                Ok(()) => self.sent += 1,
                Err(SendError::Backlogged) => {
                    complete = false;
                    break;
                }
                Err(SendError::Failed(reason)) => {
                    tracing::warn!(event = "label_not_sent", reason);
                    self.failed.fetch_add(1, Ordering::Relaxed);
                    self.metrics.failed();
                }
            }
            self.schedule.take();
        }
        self.metrics.set_pending(self.schedule.pending());
        complete
    }

    fn send(&mut self, p: &Pending) -> Result<(), SendError> {
        use std::fmt::Write as _;
        self.buf.clear();
        serde_json::to_writer(&mut self.buf, &p.event(self.schedule.synthetic))
            .map_err(|_| SendError::Failed("serialize"))?;
        self.key.clear();
        let _ = write!(self.key, "{}", p.terminal_id);
        let record = BaseRecord::to(&self.topic)
            .key(self.key.as_bytes())
            .payload(&self.buf);
        self.producer.send(record).map_err(|(e, _)| match e {
            KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull) => SendError::Backlogged,
            _ => SendError::Failed("produce_failed"),
        })
    }

    /// Sends what is due (waiting for buffer space, at most `timeout`), leaves the rest unsent, waits for
    /// the acknowledgements, and reports.
    pub async fn finish(mut self, timeout: Duration) -> LabelReport {
        let deadline = Instant::now() + timeout;
        while !self.send_due() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let not_due = self.schedule.pending() as u64;
        let left = deadline.saturating_duration_since(Instant::now());
        let producer = self.producer;
        let _ = tokio::task::spawn_blocking(move || {
            let _ = producer.flush(left);
        })
        .await;
        LabelReport {
            topic: self.topic,
            delay: format_label_delay(self.schedule.delay),
            sent: self.sent,
            delivered: self.delivered.load(Ordering::Relaxed),
            errors: self.failed.load(Ordering::Relaxed),
            not_due,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx(id: u64, time: EpochSeconds, fraud: bool) -> Transaction {
        Transaction {
            transaction_id: id,
            tx_datetime: time,
            customer_id: id % 3,
            terminal_id: 100 + id % 2,
            tx_amount: 1.0,
            tx_time_seconds: time,
            tx_time_days: time / DAY,
            tx_fraud: fraud,
            tx_fraud_scenario: 0,
            merchant_category: None,
            user_age: None,
            account_balance: None,
        }
    }

    #[test]
    fn delays_are_event_time_and_at_most_the_features_delay() {
        assert_eq!(parse_label_delay("3d"), Ok(3 * DAY));
        assert_eq!(parse_label_delay("12h"), Ok(12 * 3600));
        assert_eq!(parse_label_delay("90s"), Ok(90));
        assert_eq!(parse_label_delay("7d"), Ok(MAX_LABEL_DELAY));
        let err = parse_label_delay("8d").unwrap_err();
        assert!(err.contains("TERMINAL_DELAY_DAYS"), "{err}");
        assert!(parse_label_delay("169h").is_err());
        assert!(parse_label_delay("3").is_err());
        assert!(parse_label_delay("3w").is_err());
        assert_eq!(format_label_delay(3 * DAY), "3d");
        assert_eq!(format_label_delay(90), "90s");
        assert_eq!(format_label_delay(7200), "2h");
    }

    #[test]
    fn a_label_leaves_once_the_clock_passes_its_time_plus_the_delay() {
        let mut s = LabelSchedule::new(DAY);
        s.record(&tx(1, 0, true));
        s.record(&tx(2, 3600, false));
        assert!(s.drain_due().is_empty(), "the clock is at 1 h");
        s.record(&tx(3, DAY - 1, false));
        assert!(
            s.drain_due().is_empty(),
            "one second short of the first label"
        );
        s.record(&tx(4, DAY, false));
        let due = s.drain_due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].transaction_id, TransactionId::Number(1));
        assert!(due[0].tx_fraud);
        assert_eq!(due[0].tx_datetime, "1970-01-01 00:00:00");
        s.record(&tx(5, 2 * DAY + 10, false));
        let ids: Vec<_> = s
            .drain_due()
            .into_iter()
            .map(|l| l.transaction_id)
            .collect();
        assert_eq!(
            ids,
            [2, 3, 4].map(TransactionId::Number),
            "in due order, genuine labels included"
        );
        assert_eq!(s.pending(), 1, "the last one is not due: it is never sent");
    }

    #[test]
    fn an_unsorted_replay_still_releases_labels_by_due_time() {
        let mut s = LabelSchedule::new(10);
        s.record(&tx(1, 100, false));
        s.record(&tx(2, 50, true)); // older than the clock: due at 60, already passed
        let due = s.drain_due();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].transaction_id, TransactionId::Number(2));
        s.record(&tx(3, 110, false));
        assert_eq!(s.drain_due().len(), 1);
    }

    #[test]
    fn the_mode_follows_the_destination() {
        assert!(LabelMode::Auto.enabled(false));
        assert!(!LabelMode::Auto.enabled(true));
        assert!(LabelMode::On.enabled(true));
        assert!(!LabelMode::Off.enabled(false));
    }
}
