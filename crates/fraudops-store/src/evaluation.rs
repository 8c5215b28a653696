//! The online evaluation's samples, kept in the store so the label consumer's window survives a restart.
//!
//! Why here and not only in the consumer's memory: the window is 7 event-time days of labelled
//! transactions; a consumer that starts empty reports nothing (or a few hours' noise) for a week after
//! every restart or rollout, and `ModelQualityDegraded` is blind meanwhile. The scores the labels were
//! joined with expire with their day's hash ([`crate::scripts::SCORE_TTL_SECONDS`] after the last score),
//! which does not cover a window that trails the newest label by up to 7 days, so the joined samples are
//! written apart: one hash per event-time day (tx id → `fraud|customer|score`), a redelivered label
//! overwriting its entry, and a sorted set of the days that have one. The consumer drops the days that
//! left its window; a TTL bounds what a consumer that stops for good leaves behind.

use fraudops_data::EpochSeconds;
use fraudops_features::definition::DAY;

use crate::client::{FeatureStore, KeyWrite, Op, StoredScore};
use crate::error::StoreError;
use crate::keys;

/// A day's samples expire this long after their last write (wall clock) if no consumer drops them: a
/// window of 7 days plus the 7 days labels may trail their transactions, and a day of slack.
pub const EVALUATION_TTL_SECONDS: i64 = 15 * DAY;

/// Entries read per `HSCAN` step when a window is loaded: each step is a short call under the deadline,
/// so loading a large day never blocks Redis.
const SCAN_COUNT: usize = 2_000;

/// A label joined with the score its transaction was given: one sample of the online evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatedLabel {
    /// The transaction id.
    pub transaction_id: String,
    /// Its event time (the day it is kept under).
    pub time: EpochSeconds,
    /// The card (Card Precision@k ranks cards).
    pub customer_id: u64,
    /// The label.
    pub fraud: bool,
    /// The score, with the model version that gave it.
    pub score: StoredScore,
}

impl EvaluatedLabel {
    /// `fraud|customer|probability|decision|version`.
    fn encode(&self) -> String {
        format!(
            "{}|{}|{}",
            u8::from(self.fraud),
            self.customer_id,
            self.score.encode()
        )
    }

    fn decode(transaction_id: String, day: i64, text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '|');
        let fraud = match parts.next()? {
            "1" => true,
            "0" => false,
            _ => return None,
        };
        let customer_id = parts.next()?.parse().ok()?;
        let score = StoredScore::decode(parts.next()?)?;
        Some(Self {
            transaction_id,
            // The day is what the window needs; the time of day is not kept.
            time: day * DAY,
            customer_id,
            fraud,
            score,
        })
    }
}

impl FeatureStore {
    /// Writes joined samples (one `HSET` per event-time day, the day added to the index), replacing the
    /// entries of transactions already there (a redelivered or reversed label); pipelined, per slot in a
    /// cluster.
    pub async fn record_evaluations(&self, rows: &[EvaluatedLabel]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut by_day: std::collections::BTreeMap<i64, Vec<(&str, String)>> =
            std::collections::BTreeMap::new();
        for r in rows {
            by_day
                .entry(r.time.div_euclid(DAY))
                .or_default()
                .push((r.transaction_id.as_str(), r.encode()));
        }
        let days: Vec<i64> = by_day.keys().copied().collect();
        let writes = by_day.iter().map(|(day, fields)| {
            let write: KeyWrite<'_> = Box::new(move |key: &str, pipe: &mut redis::Pipeline| {
                pipe.hset_multiple(key, fields)
                    .ignore()
                    .expire(key, EVALUATION_TTL_SECONDS)
                    .ignore();
            });
            (keys::evaluation_day(*day), write)
        });
        let index: KeyWrite<'_> = Box::new(|key: &str, pipe: &mut redis::Pipeline| {
            for d in &days {
                pipe.zadd(key, *d, *d).ignore();
            }
            pipe.expire(key, EVALUATION_TTL_SECONDS).ignore();
        });
        self.write_per_key(
            Op::Evaluation,
            writes.chain(std::iter::once((keys::evaluation_days(), index))),
        )
        .await
    }

    /// The newest `n` days that have samples, newest first.
    pub async fn evaluation_days(&self, n: usize) -> Result<Vec<i64>, StoreError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let key = keys::evaluation_days();
        let stop = isize::try_from(n - 1).unwrap_or(isize::MAX);
        self.guard(Op::Evaluation, slot(&key), |mut conn| async move {
            redis::cmd("ZREVRANGE")
                .arg(&key)
                .arg(0)
                .arg(stop)
                .query_async(&mut conn)
                .await
        })
        .await
    }

    /// Every sample of one event-time day, read in short `HSCAN` steps. Entries this build cannot read
    /// are skipped and counted in the second value.
    pub async fn load_evaluations(
        &self,
        day: i64,
    ) -> Result<(Vec<EvaluatedLabel>, usize), StoreError> {
        let key = keys::evaluation_day(day);
        let (mut rows, mut unreadable) = (Vec::new(), 0);
        let mut cursor: u64 = 0;
        loop {
            let (next, fields): (u64, Vec<(String, String)>) = self
                .guard(Op::Evaluation, slot(&key), |mut conn| {
                    let key = &key;
                    async move {
                        redis::cmd("HSCAN")
                            .arg(key)
                            .arg(cursor)
                            .arg("COUNT")
                            .arg(SCAN_COUNT)
                            .query_async(&mut conn)
                            .await
                    }
                })
                .await?;
            for (id, value) in fields {
                match EvaluatedLabel::decode(id, day, &value) {
                    Some(row) => rows.push(row),
                    None => unreadable += 1,
                }
            }
            if next == 0 {
                return Ok((rows, unreadable));
            }
            cursor = next;
        }
    }

    /// Deletes the samples of every day before `day` (they left the window).
    pub async fn drop_evaluations_before(&self, day: i64) -> Result<(), StoreError> {
        let index = keys::evaluation_days();
        let old: Vec<i64> = self
            .guard(Op::Evaluation, slot(&index), |mut conn| {
                let index = &index;
                async move {
                    redis::cmd("ZRANGEBYSCORE")
                        .arg(index)
                        .arg("-inf")
                        .arg(format!("({day}"))
                        .query_async(&mut conn)
                        .await
                }
            })
            .await?;
        if old.is_empty() {
            return Ok(());
        }
        // The days' hashes first, then the index: a failure in between leaves the index naming days that
        // are gone (read as empty), never a hash the index forgot.
        let deletes = old.iter().map(|d| {
            let delete: KeyWrite<'static> = Box::new(|key: &str, pipe: &mut redis::Pipeline| {
                pipe.del(key).ignore();
            });
            (keys::evaluation_day(*d), delete)
        });
        self.write_per_key(Op::Evaluation, deletes).await?;
        let forget = |key: &str, pipe: &mut redis::Pipeline| {
            for d in &old {
                pipe.zrem(key, *d).ignore();
            }
        };
        self.write_per_key(Op::Evaluation, std::iter::once((index, forget)))
            .await
    }
}

/// The group of a single-key call: its slot in a cluster (any value in one Redis: it picks a breaker).
fn slot(key: &str) -> u16 {
    crate::connection::slot(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_reads_back_with_its_day() {
        let row = EvaluatedLabel {
            transaction_id: "tx-9".into(),
            time: 17_000 * DAY + 3_600,
            customer_id: 42,
            fraud: true,
            score: StoredScore {
                fraud_probability: 0.123_456_789_012_345_67,
                is_fraud: false,
                model_version: "gbdt-0123456789ab".into(),
            },
        };
        let back = EvaluatedLabel::decode("tx-9".into(), 17_000, &row.encode()).unwrap();
        assert_eq!(
            back,
            EvaluatedLabel {
                time: 17_000 * DAY,
                ..row
            }
        );
        for bad in ["2|1|0.5|1|v", "1|x|0.5|1|v", "1|1|0.5|1", "1|1"] {
            assert_eq!(EvaluatedLabel::decode("t".into(), 1, bad), None, "{bad}");
        }
    }
}
