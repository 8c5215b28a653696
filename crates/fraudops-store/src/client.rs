//! [`FeatureStore`]: one multiplexed connection per `connect` (or a cluster connection, `connection.rs`),
//! one script call per batch of events (per slot in a cluster), a deadline on every call and, per
//! operation, breakers that stop asking a store that is failing (`breaker.rs`).

use std::sync::Arc;
use std::time::Duration;

use fraudops_data::{EpochSeconds, Transaction};
use fraudops_features::definition::{CustomerWindows, DAY, MicroAmount, TerminalWindows, to_micro};

use crate::breaker::{Admit, Breaker};
use crate::connection::{Backend, Conn, Credentials};
use crate::error::StoreError;
use crate::keys::{self, Namespace};
use crate::scripts::{
    CARD_WIDTH, LABEL, OBSERVE, SCORE_TTL_SECONDS, TERMINAL_TTL_SECONDS, TERMINAL_WIDTH,
    observe_header,
};

/// The operations, each with its own breakers: failing label writes must not stop lookups.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Observe = 0,
    Label = 1,
    RecordScores = 2,
    Ping = 3,
    /// The label consumer's evaluation samples (`evaluation.rs`).
    Evaluation = 4,
}

/// Breakers per operation: one per sixteenth of the slots in a cluster (shards own contiguous slot
/// ranges, so a shard that is down opens the breakers of its keys only), the first one in one Redis.
const BREAKER_BUCKETS: usize = 16;

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
    /// Real traffic, or the synthetic traffic of an attack or a drill (kept in keys of its own).
    pub namespace: Namespace,
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
            namespace: Namespace::Real,
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
            namespace: Namespace::Real,
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
    /// Real traffic, or the synthetic traffic of an attack or a drill.
    pub namespace: Namespace,
}

/// A scored transaction, recorded so that its label can be joined with its score when it arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreRecord {
    /// The transaction id, as the label will name it.
    pub transaction_id: String,
    /// Event time (the day of the hash it goes to; the label carries the same time).
    pub time: EpochSeconds,
    /// Real traffic, or synthetic: a synthetic transaction's id is kept apart (`syn:` before it), so it
    /// never replaces a real transaction's score.
    pub namespace: Namespace,
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
    pub(crate) backend: Backend,
    deadline: Duration,
    /// How far ahead of this process's clock an event may be and still be recorded.
    max_clock_skew: Duration,
    /// Drain older layouts' keys on every touch (`FEATURE_STORE_DRAIN`; [`Drain`]).
    drain: bool,
    /// Per [`Op`], per slot bucket; shared by the clones of this store (not by another `connect`).
    breakers: Arc<[[Breaker; BREAKER_BUCKETS]; 5]>,
    /// Where it is and who it is, for [`Self::own_connection`].
    url: Arc<str>,
    credentials: Arc<Credentials>,
}

/// Which older layouts' keys a script call drains (`observe.lua`'s `ARGV[3]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drain {
    Nothing = 0,
    /// v2's card keys (same slot as v3's: a cluster too).
    CardsV2 = 1,
    /// v2's card keys and every v1 key (one Redis: v1's keys have no hash tags).
    CardsV2AndV1 = 2,
}

/// The card and terminal parts (indices of events) of a batch that share one script call.
#[derive(Default)]
struct ObserveGroup {
    cards: Vec<usize>,
    terminals: Vec<usize>,
}

impl FeatureStore {
    /// Connects lazily (the first call connects; a store that is down at start-up is not an error, the
    /// calls fail and are counted until it is up). `deadline` bounds every call. Several comma-separated
    /// URLs name a Redis Cluster (`connection.rs`).
    pub fn connect(url: &str, deadline: Duration) -> Result<Self, StoreError> {
        Self::connect_as(url, deadline, Credentials::default())
    }

    /// [`Self::connect`] as an ACL user (`FEATURE_STORE_USERNAME`, `FEATURE_STORE_PASSWORD_FILE`).
    pub fn connect_as(
        url: &str,
        deadline: Duration,
        credentials: Credentials,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            backend: Backend::open(url, deadline, &credentials)?,
            deadline,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            drain: true,
            breakers: Arc::new(Default::default()),
            url: Arc::from(url),
            credentials: Arc::new(credentials),
        })
    }

    /// The same store on a connection and breakers of its own: the score recorder's batched writes then
    /// never queue behind, nor trip the breaker of, the lookups answers wait for.
    pub fn own_connection(&self) -> Result<Self, StoreError> {
        Ok(
            Self::connect_as(&self.url, self.deadline, (*self.credentials).clone())?
                .with_max_clock_skew(self.max_clock_skew)
                .with_drain(self.drain),
        )
    }

    /// Events more than `skew` ahead of this process's clock are not recorded ([`Recorded::Future`]).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> Self {
        self.max_clock_skew = skew;
        self
    }

    /// Whether the scripts drain older layouts' keys (on by default): v2's card keys everywhere, v1's keys
    /// in one Redis (a cluster never had them).
    pub fn with_drain(mut self, drain: bool) -> Self {
        self.drain = drain;
        self
    }

    /// What the scripts drain on this store.
    fn drain_mode(&self) -> Drain {
        match (self.drain, self.backend.is_cluster()) {
            (false, _) => Drain::Nothing,
            (true, true) => Drain::CardsV2,
            (true, false) => Drain::CardsV2AndV1,
        }
    }

    /// The allowed skew, whole seconds (for messages).
    pub fn max_clock_skew_seconds(&self) -> i64 {
        i64::try_from(self.max_clock_skew.as_secs()).unwrap_or(i64::MAX)
    }

    /// The deadline of every call.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Whether the store is a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.backend.is_cluster()
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
    /// trip (one call per slot in a cluster, concurrently). Events of one card must be given in
    /// event-time order for the windows to equal training's. An event is recorded only when its caller
    /// may ([`Observation::record`]), its time is not ahead of the clock by more than the skew, and it is
    /// not older than the store's reach ([`Recorded`]).
    pub async fn observe(&self, events: &[Observation]) -> Result<Vec<Observed>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let latest = self.latest_recordable_time();
        let future: Vec<bool> = events.iter().map(|e| e.record && e.time > latest).collect();
        let grouping = self.backend.grouping();
        let recordable = |i: usize| u8::from(events[i].record && !future[i]).to_string();
        let mut card = vec![[0i64; CARD_WIDTH]; events.len()];
        let mut terminal = vec![[0i64; TERMINAL_WIDTH]; events.len()];
        if self.backend.is_cluster() {
            // The card decides whether a transaction is recorded, and a card and its terminal live in
            // different slots: the cards first (concurrently), then the terminals with what they decided.
            let by_slot = |key: fn(&Observation) -> String| {
                let mut slots: std::collections::BTreeMap<u16, Vec<usize>> = Default::default();
                for (i, e) in events.iter().enumerate() {
                    slots.entry(grouping.of(&key(e))).or_default().push(i);
                }
                slots
            };
            let cards = by_slot(|e| keys::customer(e.namespace, e.customer_id))
                .into_iter()
                .map(|(slot, cards)| {
                    let group = ObserveGroup {
                        cards,
                        terminals: Vec::new(),
                    };
                    (slot, group)
                });
            self.observe_groups(
                events,
                cards,
                &recordable,
                &recordable,
                &mut card,
                &mut terminal,
            )
            .await?;
            let recorded: Vec<bool> = card.iter().map(|c| c[9] == 0).collect();
            let follow = |i: usize| u8::from(recorded[i]).to_string();
            let terminals = by_slot(|e| keys::terminal(e.namespace, e.terminal_id))
                .into_iter()
                .map(|(slot, terminals)| {
                    let group = ObserveGroup {
                        cards: Vec::new(),
                        terminals,
                    };
                    (slot, group)
                });
            self.observe_groups(
                events,
                terminals,
                &follow,
                &follow,
                &mut card,
                &mut terminal,
            )
            .await?;
        } else {
            // One call: each terminal part follows its card part (card part i is event i's, computed
            // first in the same script).
            let group = ObserveGroup {
                cards: (0..events.len()).collect(),
                terminals: (0..events.len()).collect(),
            };
            let follow = |i: usize| format!("={}", i + 1);
            self.observe_groups(
                events,
                [(0, group)],
                &recordable,
                &follow,
                &mut card,
                &mut terminal,
            )
            .await?;
        }
        card.iter()
            .zip(&terminal)
            .zip(future)
            .map(|((c, t), future)| {
                let recorded = match (c[9], future) {
                    (_, true) => Recorded::Future,
                    (0, _) => Recorded::Yes,
                    (1, _) => Recorded::ReadOnly,
                    (2, _) => Recorded::TooOld,
                    _ => {
                        return Err(StoreError::Protocol {
                            expected: CARD_WIDTH,
                            got: c.len(),
                        });
                    }
                };
                Ok(Observed {
                    windows: windows(c, t),
                    recorded,
                })
            })
            .collect()
    }

    /// Runs `groups` (one script call each, concurrently; the slot picks the breaker) with each part's
    /// record flag (`1`, `0`, or for a terminal part `=k`: follow card part k of the same call), and writes
    /// each part's answer into `card`/`terminal`.
    async fn observe_groups(
        &self,
        events: &[Observation],
        groups: impl IntoIterator<Item = (u16, ObserveGroup)>,
        card_flags: &(dyn Fn(usize) -> String + Sync),
        terminal_flags: &(dyn Fn(usize) -> String + Sync),
        card: &mut [[i64; CARD_WIDTH]],
        terminal: &mut [[i64; TERMINAL_WIDTH]],
    ) -> Result<(), StoreError> {
        let drain = self.drain_mode();
        let drain_v1 = drain == Drain::CardsV2AndV1;
        let calls = groups.into_iter().map(|(slot, group)| {
            let mut call = OBSERVE.prepare_invoke();
            call.arg(group.cards.len())
                .arg(group.terminals.len())
                .arg(drain as u8);
            for n in observe_header() {
                call.arg(n);
            }
            for &i in &group.cards {
                let e = &events[i];
                let key = keys::customer(e.namespace, e.customer_id);
                call.key(&key);
                if drain != Drain::Nothing {
                    call.key(keys::v2_customer_of(e.namespace, e.customer_id));
                }
                if drain_v1 {
                    call.key(keys::v1_customer_of(e.namespace, e.customer_id));
                }
                let micro = to_micro(e.amount);
                call.arg(e.time)
                    .arg(i64::try_from(micro / 1_000_000).unwrap_or(i64::MAX))
                    .arg(i64::try_from(micro % 1_000_000).unwrap_or(0))
                    .arg(e.transaction_id.as_str())
                    .arg(card_flags(i));
            }
            for &i in &group.terminals {
                let e = &events[i];
                call.key(keys::terminal(e.namespace, e.terminal_id))
                    .key(keys::terminal_fraud(e.namespace, e.terminal_id));
                if drain_v1 {
                    let [t, f] = keys::v1_terminal_of(e.namespace, e.terminal_id);
                    call.key(t).key(f);
                }
                call.arg(e.time)
                    .arg(e.transaction_id.as_str())
                    .arg(terminal_flags(i));
            }
            async move {
                let values: Vec<i64> = self
                    .guard(Op::Observe, slot, |mut conn| async move {
                        call.invoke_async(&mut conn).await
                    })
                    .await?;
                let expected =
                    group.cards.len() * CARD_WIDTH + group.terminals.len() * TERMINAL_WIDTH;
                if values.len() != expected {
                    return Err(StoreError::Protocol {
                        expected,
                        got: values.len(),
                    });
                }
                Ok::<_, StoreError>((group, values))
            }
        });
        for (group, values) in futures::future::try_join_all(calls).await? {
            let (card_values, terminal_values) = values.split_at(group.cards.len() * CARD_WIDTH);
            for (&i, v) in group.cards.iter().zip(card_values.chunks_exact(CARD_WIDTH)) {
                card[i].copy_from_slice(v);
            }
            for (&i, v) in group
                .terminals
                .iter()
                .zip(terminal_values.chunks_exact(TERMINAL_WIDTH))
            {
                terminal[i].copy_from_slice(v);
            }
        }
        Ok(())
    }

    /// Applies confirmed outcomes to terminal risk; idempotent, so a label delivered twice
    /// (at-least-once) counts once. Returns, per label, the score recorded for its transaction
    /// ([`Self::record_scores`]; `None` if no scorer recorded one or it expired). One round trip in one
    /// Redis (the script and the score reads pipelined on the connection); per slot in a cluster.
    pub async fn apply_labels(
        &self,
        labels: &[Label],
    ) -> Result<Vec<Option<StoredScore>>, StoreError> {
        if labels.is_empty() {
            return Ok(Vec::new());
        }
        let grouping = self.backend.grouping();
        let drain_v1 = self.drain_mode() == Drain::CardsV2AndV1;
        let mut terminals: std::collections::BTreeMap<u16, Vec<&Label>> = Default::default();
        let mut days: std::collections::BTreeMap<i64, Vec<usize>> = Default::default();
        for (i, l) in labels.iter().enumerate() {
            terminals
                .entry(grouping.of(&keys::terminal(l.namespace, l.terminal_id)))
                .or_default()
                .push(l);
            days.entry(l.time.div_euclid(DAY)).or_default().push(i);
        }
        let applies = terminals.into_iter().map(|(slot, group)| {
            let mut call = LABEL.prepare_invoke();
            call.arg(group.len())
                .arg(TERMINAL_TTL_SECONDS)
                .arg(u8::from(drain_v1));
            for l in &group {
                call.key(keys::terminal(l.namespace, l.terminal_id))
                    .key(keys::terminal_fraud(l.namespace, l.terminal_id));
                if drain_v1 {
                    let [t, f] = keys::v1_terminal_of(l.namespace, l.terminal_id);
                    call.key(t).key(f);
                }
                call.arg(l.time)
                    .arg(l.transaction_id.as_str())
                    .arg(u8::from(l.fraud));
            }
            async move {
                let applied: usize = self
                    .guard(Op::Label, slot, |mut conn| async move {
                        call.invoke_async(&mut conn).await
                    })
                    .await?;
                if applied != group.len() {
                    return Err(StoreError::Protocol {
                        expected: group.len(),
                        got: applied,
                    });
                }
                Ok::<_, StoreError>(())
            }
        });
        // The scores, one HMGET per day (and its v1 hash, while scores written before the upgrade live).
        let reads = days.into_iter().map(|(day, rows)| {
            let key = keys::scores(day);
            let slot = grouping.of(&key);
            let ids: Vec<String> = rows
                .iter()
                .map(|&i| score_field(labels[i].namespace, &labels[i].transaction_id))
                .collect();
            let mut pipe = redis::pipe();
            pipe.cmd("HMGET").arg(&key).arg(&ids);
            if drain_v1 {
                pipe.cmd("HMGET").arg(keys::v1::scores(day)).arg(&ids);
            }
            async move {
                let found: Vec<Vec<Option<String>>> = self
                    .guard(Op::Label, slot, |mut conn| async move {
                        pipe.query_async(&mut conn).await
                    })
                    .await?;
                let merged: Vec<Option<String>> = match &found[..] {
                    [v2] => v2.clone(),
                    [v2, v1] => v2
                        .iter()
                        .zip(v1)
                        .map(|(a, b)| a.clone().or_else(|| b.clone()))
                        .collect(),
                    _ => {
                        return Err(StoreError::Protocol {
                            expected: 1 + usize::from(drain_v1),
                            got: found.len(),
                        });
                    }
                };
                Ok::<_, StoreError>((rows, merged))
            }
        });
        let (_, read) = futures::future::try_join(
            futures::future::try_join_all(applies),
            futures::future::try_join_all(reads),
        )
        .await?;
        let mut out = vec![None; labels.len()];
        for (rows, values) in read {
            if values.len() != rows.len() {
                return Err(StoreError::Protocol {
                    expected: rows.len(),
                    got: values.len(),
                });
            }
            for (i, v) in rows.into_iter().zip(values) {
                out[i] = v.as_deref().and_then(StoredScore::decode);
            }
        }
        Ok(out)
    }

    /// Records scored transactions for the label consumer: one `HSET` per event-time day into that day's
    /// hash, which expires [`SCORE_TTL_SECONDS`] after its last write (longer than any label delay),
    /// pipelined (per day's slot in a cluster). Scoring the same transaction again overwrites its entry.
    pub async fn record_scores(&self, records: &[ScoreRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let mut by_day: std::collections::BTreeMap<i64, Vec<(String, String)>> =
            std::collections::BTreeMap::new();
        for r in records {
            by_day.entry(r.time.div_euclid(DAY)).or_default().push((
                score_field(r.namespace, &r.transaction_id),
                r.score.encode(),
            ));
        }
        let writes = by_day.iter().map(|(day, fields)| {
            (
                keys::scores(*day),
                |key: &str, pipe: &mut redis::Pipeline| {
                    pipe.hset_multiple(key, fields)
                        .ignore()
                        .expire(key, SCORE_TTL_SECONDS)
                        .ignore();
                },
            )
        });
        self.write_per_key(Op::RecordScores, writes).await
    }

    /// Runs one small pipeline per key (`build(key, pipe)`): all in one pipeline in one Redis, one per
    /// slot in a cluster, concurrently. Writes of different shapes use [`KeyWrite`].
    pub(crate) async fn write_per_key<F>(
        &self,
        op: Op,
        writes: impl Iterator<Item = (String, F)>,
    ) -> Result<(), StoreError>
    where
        F: FnOnce(&str, &mut redis::Pipeline),
    {
        let grouping = self.backend.grouping();
        let mut pipes: std::collections::BTreeMap<u16, redis::Pipeline> = Default::default();
        for (key, build) in writes {
            build(
                &key,
                pipes.entry(grouping.of(&key)).or_insert_with(redis::pipe),
            );
        }
        futures::future::try_join_all(pipes.into_iter().map(|(slot, pipe)| {
            self.guard(op, slot, |mut conn| async move {
                pipe.query_async::<()>(&mut conn).await
            })
        }))
        .await?;
        Ok(())
    }

    /// Asks the store whether it answers (start-up logs, readiness of the label consumer).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: String = self
            .guard(Op::Ping, 0, |mut conn| async move {
                redis::cmd("PING").query_async(&mut conn).await
            })
            .await?;
        Ok(())
    }

    /// Runs one call (on a connection `call` is given) under the deadline and the breaker of its
    /// operation and slot bucket.
    pub(crate) async fn guard<T, F, Fut>(&self, op: Op, slot: u16, call: F) -> Result<T, StoreError>
    where
        F: FnOnce(Conn) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let bucket = usize::from(slot) * BREAKER_BUCKETS / 16_384;
        let breaker = &self.breakers[op as usize][bucket.min(BREAKER_BUCKETS - 1)];
        let probe = match breaker.admit() {
            Admit::Refused(wait) => return Err(StoreError::Unavailable(wait)),
            Admit::Call => false,
            Admit::Probe => true,
        };
        let attempt = async {
            let conn = self.backend.conn().await?;
            call(conn).await
        };
        let result = match tokio::time::timeout(self.deadline, attempt).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(StoreError::Redis(e)),
            Err(_) => Err(StoreError::Timeout(self.deadline)),
        };
        breaker.record(result.is_ok(), probe);
        result
    }
}

/// One key's commands for [`FeatureStore::write_per_key`], when one call writes keys of different shapes.
pub(crate) type KeyWrite<'a> = Box<dyn FnOnce(&str, &mut redis::Pipeline) + 'a>;

/// The field of a transaction in its day's score hash: its id, after `syn:` when synthetic.
fn score_field(namespace: Namespace, transaction_id: &str) -> String {
    match namespace {
        Namespace::Real => transaction_id.to_owned(),
        Namespace::Synthetic => format!("syn:{transaction_id}"),
    }
}

/// A card part's 9 integers and a terminal part's 6 as windows, through the definition's own arithmetic.
fn windows(card: &[i64], terminal: &[i64]) -> Windows {
    let count = |v: &[i64], i: usize| u32::try_from(v[i]).unwrap_or(u32::MAX);
    let sum =
        |w: usize| MicroAmount::from(card[3 + w]) * 1_000_000 + MicroAmount::from(card[6 + w]);
    Windows {
        customer: CustomerWindows::from_sums(
            [count(card, 0), count(card, 1), count(card, 2)],
            [sum(0), sum(1), sum(2)],
        ),
        terminal: TerminalWindows::from_counts(
            [count(terminal, 0), count(terminal, 1), count(terminal, 2)],
            [count(terminal, 3), count(terminal, 4), count(terminal, 5)],
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
