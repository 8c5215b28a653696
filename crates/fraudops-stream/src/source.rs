//! Where an attack's transactions come from: the simulator's endless stream (default) or a file replayed
//! in a loop. Either way the supply never ends, so a phase's length is decided by its duration alone.

use std::path::Path;

use fraudops_data::simulator::{SimulatorConfig, TransactionStream};
use fraudops_data::{EpochSeconds, Transaction};

use crate::error::StreamError;

/// A week in seconds: replay loops are shifted by whole weeks so weekday and night flags do not change.
const WEEK: EpochSeconds = 7 * 86_400;

/// An endless supply of transactions.
pub enum EventSource {
    /// The handbook simulator, day after day (SPEC §3.1).
    Simulated(Box<TransactionStream>),
    /// A file, looped.
    Replay(Replay),
}

impl EventSource {
    /// The simulator with the given seed and population.
    pub fn simulated(seed: u64, customers: usize, terminals: usize) -> Result<Self, StreamError> {
        let config = SimulatorConfig {
            n_customers: customers,
            n_terminals: terminals,
            seed,
            ..SimulatorConfig::default()
        };
        let stream = TransactionStream::new(&config)?;
        Ok(Self::Simulated(Box::new(stream)))
    }

    /// A transactions file (any format the readers accept), replayed in a loop.
    pub fn replay(path: &Path) -> Result<Self, StreamError> {
        let outcome = fraudops_data::reader::read_transactions(path)?;
        let skipped = outcome.report.total_skipped();
        if skipped > 0 {
            tracing::warn!(event = "replay_rows_skipped", skipped, path = %path.display());
        }
        Ok(Self::Replay(Replay::new(outcome.transactions).ok_or_else(
            || StreamError::Config(format!("{} holds no usable transactions", path.display())),
        )?))
    }

    /// The next transaction; `None` only if the simulator's population can never transact.
    pub fn next_transaction(&mut self) -> Option<Transaction> {
        match self {
            Self::Simulated(stream) => stream.next(),
            Self::Replay(replay) => Some(replay.next_transaction()),
        }
    }
}

/// A file's transactions in a loop. Each loop gets fresh ids (`id + loop × (max id + 1)`) and times shifted
/// by whole weeks past the file's span, so every message is a distinct transaction and event time keeps
/// moving forward for the online features.
pub struct Replay {
    rows: Vec<Transaction>,
    position: usize,
    round: u64,
    id_stride: u64,
    time_stride: EpochSeconds,
}

impl Replay {
    /// A replay of `rows` in file order; `None` when there are none.
    pub fn new(rows: Vec<Transaction>) -> Option<Self> {
        let max_id = rows.iter().map(|t| t.transaction_id).max()?;
        let first = rows.iter().map(|t| t.tx_datetime).min()?;
        let last = rows.iter().map(|t| t.tx_datetime).max()?;
        let span_weeks = (last - first) / WEEK + 1;
        Some(Self {
            rows,
            position: 0,
            round: 0,
            id_stride: max_id.saturating_add(1),
            time_stride: span_weeks * WEEK,
        })
    }

    /// The next row, renumbered and time-shifted for the current loop.
    pub fn next_transaction(&mut self) -> Transaction {
        if self.position == self.rows.len() {
            self.position = 0;
            self.round += 1;
        }
        let mut tx = self.rows[self.position].clone();
        self.position += 1;
        if self.round > 0 {
            tx.transaction_id = tx
                .transaction_id
                .wrapping_add(self.round.wrapping_mul(self.id_stride));
            let shift = self.time_stride.saturating_mul(self.round as EpochSeconds);
            tx.tx_datetime = tx.tx_datetime.saturating_add(shift);
            tx.tx_time_seconds = tx.tx_time_seconds.saturating_add(shift);
            tx.tx_time_days = tx.tx_time_days.saturating_add(shift / 86_400);
        }
        tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn row(id: u64, t: EpochSeconds) -> Transaction {
        Transaction {
            transaction_id: id,
            tx_datetime: t,
            customer_id: 1,
            terminal_id: 2,
            tx_amount: 10.0,
            tx_time_seconds: t,
            tx_time_days: t / 86_400,
            tx_fraud: false,
            tx_fraud_scenario: 0,
            merchant_category: None,
            user_age: None,
            account_balance: None,
        }
    }

    #[test]
    fn replay_loops_with_fresh_ids_and_later_times() {
        let mut replay = Replay::new(vec![row(0, 100), row(5, 200), row(9, 86_400 * 3)]).unwrap();
        let txs: Vec<_> = (0..9).map(|_| replay.next_transaction()).collect();
        let ids: HashSet<u64> = txs.iter().map(|t| t.transaction_id).collect();
        assert_eq!(ids.len(), 9, "every message is a distinct transaction");
        assert!(
            txs.windows(2)
                .skip(2)
                .step_by(3)
                .all(|w| w[1].tx_datetime > w[0].tx_datetime)
        );
        assert_eq!(txs[3].tx_datetime - txs[0].tx_datetime, WEEK);
        assert_eq!(txs[3].transaction_id, 10);
    }

    #[test]
    fn an_empty_replay_is_refused() {
        assert!(Replay::new(Vec::new()).is_none());
    }

    #[test]
    fn the_simulator_never_runs_dry() {
        let mut source = EventSource::simulated(7, 50, 100).unwrap();
        let n = (0..5000).filter_map(|_| source.next_transaction()).count();
        assert_eq!(n, 5000);
    }
}
