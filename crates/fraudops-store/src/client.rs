//! [`FeatureStore`]: one multiplexed connection per `connect`, one script call per batch of events, a
//! deadline on every call and, per operation, a breaker that stops asking a store that is failing
//! (`breaker.rs`).

use std::sync::Arc;
use std::time::Duration;

use fraudops_data::{EpochSeconds, Transaction};
use fraudops_features::definition::{CustomerWindows, DAY, MicroAmount, TerminalWindows, to_micro};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::breaker::{Admit, Breaker};
use crate::error::StoreError;
use crate::keys;
use crate::scripts::{
    LABEL, OBSERVE, OBSERVE_WIDTH, SCORE_TTL_SECONDS, TERMINAL_TTL_SECONDS, observe_header,
};

/// The operations, each with its own breaker: failing label writes must not stop lookups.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Observe = 0,
    Label = 1,
    RecordScores = 2,
    Ping = 3,
    /// The label consumer's evaluation samples (`evaluation.rs`).
    Evaluation = 4,
}

/// How far ahead of the clock an event's time may be and still be recorded, unless configured
/// (`MAX_CLOCK_SKEW`): payment terminals' clocks drift by seconds, not hours.
pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

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
    /// Whether the caller may write history: `true` records the transaction (a trusted scorer: the
    /// payment flow, the stream worker); `false` returns its windows as if it were recorded and writes
    /// nothing (a caller that may only score).
    pub record: bool,
}

impl From<&Transaction> for Observation {
    /// A simulated or file transaction as a trusted scorer records it (its numeric id as the id).
    fn from(t: &Transaction) -> Self {
        Self {
            transaction_id: t.transaction_id.to_string(),
            customer_id: t.customer_id,
            terminal_id: t.terminal_id,
            time: t.tx_datetime,
            amount: t.tx_amount,
            record: true,
        }
    }
}

impl From<&Transaction> for Label {
    /// A simulated or file transaction's outcome, as `fraud-labels` would bring it.
    fn from(t: &Transaction) -> Self {
        Self {
            transaction_id: t.transaction_id.to_string(),
            terminal_id: t.terminal_id,
            time: t.tx_datetime,
            fraud: t.tx_fraud,
        }
    }
}

/// What the store did with one observation; anything but [`Recorded::Yes`] left the store unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded: later transactions of its card and terminal count it.
    Yes,
    /// Not recorded because the caller asked for a read ([`Observation::record`] false).
    ReadOnly,
    /// Not recorded: its time is further ahead of this process's clock than the allowed skew, and a
    /// future time would make the store forget history it still needs.
    Future,
    /// Not recorded: older than what the store still holds for its card, so its windows may
    /// miss pruned transactions and recording it would change no later window.
    TooOld,
}

impl Recorded {
    /// The label value metrics and logs use.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Yes => "recorded",
            Self::ReadOnly => "read_only",
            Self::Future => "future",
            Self::TooOld => "too_old",
        }
    }
}

/// One observation's answer: its windows and whether it was recorded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Observed {
    /// The windows, this transaction included (recorded or not).
    pub windows: Windows,
    /// What the store did with it.
    pub recorded: Recorded,
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

/// A scored transaction, recorded so that its label can be joined with its score when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    /// The transaction id, as the label will name it.
    pub transaction_id: String,
    /// Event time (the day of the hash it goes to; the label carries the same time).
    pub time: EpochSeconds,
    /// What the model said.
    pub score: StoredScore,
}

/// A prediction as the store keeps it for the label consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredScore {
    /// The fraud probability.
    pub fraud_probability: f64,
    /// The decision at the model's threshold.
    pub is_fraud: bool,
    /// The model that scored.
    pub model_version: String,
}

impl StoredScore {
    /// `probability|0 or 1|version`; the probability in Rust's shortest round-trip form, so it reads back
    /// bit for bit.
    pub(crate) fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            self.fraud_probability,
            u8::from(self.is_fraud),
            self.model_version
        )
    }

    pub(crate) fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '|');
        let fraud_probability = parts.next()?.parse().ok()?;
        let is_fraud = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        Some(Self {
            fraud_probability,
            is_fraud,
            model_version: parts.next()?.to_owned(),
        })
    }
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
    pub(crate) conn: ConnectionManager,
    deadline: Duration,
    /// How far ahead of this process's clock an event may be and still be recorded.
    max_clock_skew: Duration,
    /// One breaker per [`Op`], shared by the clones of this store (not by another `connect`).
    breakers: Arc<[Breaker; 5]>,
    /// Where it is, for [`Self::own_connection`].
    url: Arc<str>,
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
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            breakers: Arc::new(Default::default()),
            url: Arc::from(url),
        })
    }

    /// The same store on a connection and breakers of its own: the score recorder's batched writes then
    /// never queue behind, nor trip the breaker of, the lookups answers wait for.
    pub fn own_connection(&self) -> Result<Self, StoreError> {
        Ok(Self::connect(&self.url, self.deadline)?.with_max_clock_skew(self.max_clock_skew))
    }

    /// Events more than `skew` ahead of this process's clock are not recorded ([`Recorded::Future`]).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// The allowed skew, whole seconds (for messages).
    pub fn max_clock_skew_seconds(&self) -> i64 {
        i64::try_from(self.max_clock_skew.as_secs()).unwrap_or(i64::MAX)
    }

    /// The deadline of every call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The latest event time this store records now: the clock plus the allowed skew. Callers that can
    /// refuse such an event (the API, with a 422 naming the field) ask before they call.
    pub fn latest_recordable_time(&self) -> EpochSeconds {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        now.saturating_add(self.max_clock_skew_seconds())
    }

    /// Records `events` in order and returns each one's windows (its own amount included), in one round
    /// trip. Events of one card must be given in event-time order for the windows to equal training's.
    /// An event is recorded only when its caller may ([`Observation::record`]), its time is not ahead of
    /// the clock by more than the skew, and it is not older than the store's reach ([`Recorded`]).
    pub async fn observe(&self, events: &[Observation]) -> Result<Vec<Observed>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let latest = self.latest_recordable_time();
        let future: Vec<bool> = events.iter().map(|e| e.record && e.time > latest).collect();
        let mut call = OBSERVE.prepare_invoke();
        call.arg(events.len());
        for n in observe_header() {
            call.arg(n);
        }
        for (e, &future) in events.iter().zip(&future) {
            call.key(keys::customer(e.customer_id))
                .key(keys::terminal(e.terminal_id))
                .key(keys::terminal_fraud(e.terminal_id));
            let micro = to_micro(e.amount);
            call.arg(e.time)
                .arg(i64::try_from(micro / 1_000_000).unwrap_or(i64::MAX))
                .arg(i64::try_from(micro % 1_000_000).unwrap_or(0))
                .arg(e.transaction_id.as_str())
                .arg(u8::from(e.record && !future));
        }
        let mut conn = self.conn.clone();
        let values: Vec<i64> = self
            .guard(Op::Observe, call.invoke_async(&mut conn))
            .await?;
        if values.len() != events.len() * OBSERVE_WIDTH {
            return Err(StoreError::Protocol {
                expected: events.len() * OBSERVE_WIDTH,
                got: values.len(),
            });
        }
        values
            .chunks_exact(OBSERVE_WIDTH)
            .zip(future)
            .map(|(v, future)| {
                let recorded = match (v[15], future) {
                    (_, true) => Recorded::Future,
                    (0, _) => Recorded::Yes,
                    (1, _) => Recorded::ReadOnly,
                    (2, _) => Recorded::TooOld,
                    _ => {
                        return Err(StoreError::Protocol {
                            expected: OBSERVE_WIDTH,
                            got: v.len(),
                        });
                    }
                };
                Ok(Observed {
                    windows: windows(v),
                    recorded,
                })
            })
            .collect()
    }

    /// Applies confirmed outcomes to terminal risk in one round trip; idempotent, so a label delivered
    /// twice (at-least-once) counts once. Returns, per label, the score recorded for its transaction
    /// ([`Self::record_scores`]; `None` if no scorer recorded one or it expired).
    pub async fn apply_labels(
        &self,
        labels: &[Label],
    ) -> Result<Vec<Option<StoredScore>>, StoreError> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let mut call = LABEL.prepare_invoke();
        call.arg(labels.len()).arg(TERMINAL_TTL_SECONDS);
        for l in labels {
            call.key(keys::terminal(l.terminal_id))
                .key(keys::terminal_fraud(l.terminal_id))
                .key(keys::scores(l.time.div_euclid(DAY)));
            call.arg(l.time)
                .arg(l.transaction_id.as_str())
                .arg(u8::from(l.fraud));
        }
        let mut conn = self.conn.clone();
        let stored: Vec<Option<String>> =
            self.guard(Op::Label, call.invoke_async(&mut conn)).await?;
        if stored.len() != labels.len() {
            return Err(StoreError::Protocol {
                expected: labels.len(),
                got: stored.len(),
            });
        }
        Ok(stored
            .iter()
            .map(|s| s.as_deref().and_then(StoredScore::decode))
            .collect())
    }

    /// Records scored transactions for the label consumer in one pipelined round trip: one `HSET` per
    /// event-time day into that day's hash, which expires [`SCORE_TTL_SECONDS`] after its last write
    /// (longer than any label delay). Scoring the same transaction again overwrites its entry.
    pub async fn record_scores(&self, records: &[ScoreRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut by_day: std::collections::BTreeMap<i64, Vec<&ScoreRecord>> =
            std::collections::BTreeMap::new();
        for r in records {
            by_day.entry(r.time.div_euclid(DAY)).or_default().push(r);
        }
        let mut pipe = redis::pipe();
        for (day, rows) in &by_day {
            let key = keys::scores(*day);
            let fields: Vec<(&str, String)> = rows
                .iter()
                .map(|r| (r.transaction_id.as_str(), r.score.encode()))
                .collect();
            pipe.hset_multiple(&key, &fields)
                .ignore()
                .expire(&key, SCORE_TTL_SECONDS)
                .ignore();
        }
        let mut conn = self.conn.clone();
        let () = self
            .guard(Op::RecordScores, pipe.query_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Asks the store whether it answers (start-up logs, readiness of the label consumer).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let _: String = self
            .guard(Op::Ping, redis::cmd("PING").query_async(&mut conn))
            .await?;
        Ok(())
    }

    /// Runs one call under the deadline and its operation's breaker.
    pub(crate) async fn guard<T>(
        &self,
        op: Op,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StoreError> {
        let breaker = &self.breakers[op as usize];
        let probe = match breaker.admit() {
            Admit::Refused(wait) => return Err(StoreError::Unavailable(wait)),
            Admit::Call => false,
            Admit::Probe => true,
        };
        let result = match tokio::time::timeout(self.deadline, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Redis(e)),
            Err(_) => Err(StoreError::Timeout(self.deadline)),
        };
        breaker.record(result.is_ok(), probe);
        result
    }
}

/// One event's first 15 integers as windows, through the definition's own arithmetic.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_score_reads_back_bit_for_bit() {
        for p in [
            0.0,
            1.0,
            0.123_456_789_012_345_67,
            1e-17,
            0.999_999_999_999_999_9,
        ] {
            let s = StoredScore {
                fraud_probability: p,
                is_fraud: p > 0.5,
                model_version: "gbdt-0123456789ab".into(),
            };
            let back = StoredScore::decode(&s.encode()).unwrap();
            assert_eq!(back.fraud_probability.to_bits(), p.to_bits());
            assert_eq!(back, s);
        }
        assert_eq!(StoredScore::decode("x|1|v"), None);
        assert_eq!(StoredScore::decode("0.5|2|v"), None);
        assert_eq!(StoredScore::decode("0.5|1"), None);
    }
}
