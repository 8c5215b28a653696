//! [`FeatureStore`]: one multiplexed connection per process, one script call per batch of events, a
//! deadline on every call and a breaker that stops asking a store that just failed.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fraudops_data::EpochSeconds;
use fraudops_features::definition::{CustomerWindows, MicroAmount, TerminalWindows, to_micro};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::error::StoreError;
use crate::keys;
use crate::scripts::{LABEL, OBSERVE, OBSERVE_WIDTH, TERMINAL_TTL_SECONDS, observe_header};

/// After a failed call the store is not asked for this long: a store that is down costs each request
/// nothing, and one that is back is used again within this pause.
const BREAKER_PAUSE: Duration = Duration::from_millis(250);

/// One transaction to record, as a scorer sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// The transaction id (a number in decimal, or the caller's text): recording the same id twice
    /// changes nothing, so a retried request or a redelivered event is not counted twice.
    pub transaction_id: String,
    /// The card.
    pub customer_id: u64,
    /// The terminal.
    pub terminal_id: u64,
    /// Event time.
    pub time: EpochSeconds,
    /// Amount.
    pub amount: f64,
}

/// A confirmed outcome (`fraud-labels`).
#[derive(Debug, Clone, PartialEq)]
pub struct Label {
    /// The labelled transaction's id, as it was scored.
    pub transaction_id: String,
    /// Where it happened.
    pub terminal_id: u64,
    /// When it happened (event time).
    pub time: EpochSeconds,
    /// Fraud or not.
    pub fraud: bool,
}

/// The windows of one transaction, its own amount included in the customer's.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Windows {
    /// Customer spending windows.
    pub customer: CustomerWindows,
    /// Terminal risk windows.
    pub terminal: TerminalWindows,
}

/// The shared online feature state. Cheap to clone (one connection, reconnected on its own).
#[derive(Clone)]
pub struct FeatureStore {
    conn: ConnectionManager,
    deadline: Duration,
    /// Milliseconds since `epoch` before which the store is not asked (the breaker).
    paused_until: std::sync::Arc<AtomicU64>,
    epoch: Instant,
}

impl FeatureStore {
    /// Connects lazily (the first call connects; a store that is down at start-up is not an error, the
    /// calls fail and are counted until it is up). `deadline` bounds every call.
    pub fn connect(url: &str, deadline: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url).map_err(|source| StoreError::Url {
            url: url.to_owned(),
            source,
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(deadline.max(Duration::from_millis(100))))
            .set_response_timeout(Some(deadline))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|source| {
            StoreError::Url {
                url: url.to_owned(),
                source,
            }
        })?;
        Ok(Self {
            conn,
            deadline,
            paused_until: std::sync::Arc::new(AtomicU64::new(0)),
            epoch: Instant::now(),
        })
    }

    /// The deadline of every call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Records `events` in order and returns each one's windows (its own amount included), in one round
    /// trip. Events of one card must be given in event-time order for the windows to equal training's.
    pub async fn observe(&self, events: &[Observation]) -> Result<Vec<Windows>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = OBSERVE.prepare_invoke();
        call.arg(events.len());
        for n in observe_header() {
            call.arg(n);
        }
        for e in events {
            call.key(keys::customer(e.customer_id))
                .key(keys::terminal(e.terminal_id))
                .key(keys::terminal_fraud(e.terminal_id));
            let micro = to_micro(e.amount);
            call.arg(e.time)
                .arg(i64::try_from(micro / 1_000_000).unwrap_or(i64::MAX))
                .arg(i64::try_from(micro % 1_000_000).unwrap_or(0))
                .arg(e.transaction_id.as_str());
        }
        let mut conn = self.conn.clone();
        let values: Vec<i64> = self.guard(call.invoke_async(&mut conn)).await?;
        if values.len() != events.len() * OBSERVE_WIDTH {
            return Err(StoreError::Protocol {
                expected: events.len() * OBSERVE_WIDTH,
                got: values.len(),
            });
        }
        Ok(values.chunks_exact(OBSERVE_WIDTH).map(windows).collect())
    }

    /// Applies confirmed outcomes to terminal risk in one round trip; idempotent, so a label delivered
    /// twice (at-least-once) counts once.
    pub async fn apply_labels(&self, labels: &[Label]) -> Result<(), StoreError> {
        if labels.is_empty() {
            return Ok(());
        }
        let mut call = LABEL.prepare_invoke();
        call.arg(labels.len()).arg(TERMINAL_TTL_SECONDS);
        for l in labels {
            call.key(keys::terminal(l.terminal_id))
                .key(keys::terminal_fraud(l.terminal_id));
            call.arg(l.time)
                .arg(l.transaction_id.as_str())
                .arg(u8::from(l.fraud));
        }
        let mut conn = self.conn.clone();
        let _: i64 = self.guard(call.invoke_async(&mut conn)).await?;
        Ok(())
    }

    /// Asks the store whether it answers (start-up logs, readiness of the label consumer).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = self
            .guard(redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Runs one call under the deadline and the breaker.
    async fn guard<T>(
        &self,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let now = self.now_ms();
        let until = self.paused_until.load(Ordering::Relaxed);
        if now < until {
            return Err(StoreError::Unavailable(Duration::from_millis(until - now)));
        }
        let result = match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => StoreError::Redis(e),
            Err(_) => StoreError::Timeout(self.deadline),
        };
        let pause = u64::try_from(BREAKER_PAUSE.as_millis()).unwrap_or(u64::MAX);
        self.paused_until
            .fetch_max(self.now_ms() + pause, Ordering::Relaxed);
        Err(result)
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// One event's 15 integers as windows, through the definition's own arithmetic.
fn windows(v: &[i64]) -> Windows {
    let count = |i: usize| u32::try_from(v[i]).unwrap_or(u32::MAX);
    let sum = |w: usize| MicroAmount::from(v[3 + w]) * 1_000_000 + MicroAmount::from(v[6 + w]);
    Windows {
        customer: CustomerWindows::from_sums(
            [count(0), count(1), count(2)],
            [sum(0), sum(1), sum(2)],
        ),
        terminal: TerminalWindows::from_counts(
            [count(9), count(10), count(11)],
            [count(12), count(13), count(14)],
        ),
    }
}
