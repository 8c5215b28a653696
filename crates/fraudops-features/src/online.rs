//! Features for one event at a time (the stream worker): bounded per-key histories in event time.

use std::collections::{HashMap, VecDeque};

use fraudops_data::{EpochSeconds, Transaction};

use crate::definition::{
    CUSTOMER_RETENTION, CUSTOMER_WINDOW_DAYS, CustomerWindows, FeatureRow, FeatureVector,
    MicroAmount, TERMINAL_RETENTION, TERMINAL_WINDOW_DAYS, TerminalWindows, customer_window_start,
    terminal_window_bounds, to_micro,
};

/// Events between two sweeps of idle keys; bounds memory without a per-event cost.
const SWEEP_EVERY: u64 = 1 << 16;

/// Live feature state: the recent events of every customer and terminal, pruned by event time.
///
/// Feed events in [`crate::batch::processing_order`] and the vectors equal the batch ones bit for bit.
/// Late events are accepted (inserted at their time) and only evicted history is lost.
#[derive(Debug, Default)]
pub struct OnlineFeatures {
    customers: HashMap<u64, VecDeque<(EpochSeconds, MicroAmount)>>,
    terminals: HashMap<u64, VecDeque<(EpochSeconds, bool)>>,
    watermark: EpochSeconds,
    since_sweep: u64,
}

impl OnlineFeatures {
    /// An empty state: every key starts with no history.
    pub fn new() -> Self {
        Self::default()
    }

    /// The feature vector of `tx` given everything seen so far; then `tx` joins the history.
    pub fn process(&mut self, tx: &Transaction) -> FeatureVector {
        self.process_row(tx).to_vector()
    }

    /// [`Self::process`] as a named row: the stream worker sends its windows to the API as precomputed
    /// history, so the API scores exactly what an in-process worker would.
    pub fn process_row(&mut self, tx: &Transaction) -> FeatureRow {
        let customer = self.observe_customer(tx.customer_id, tx.tx_datetime, tx.tx_amount);
        let terminal = self.terminal_windows(tx.terminal_id, tx.tx_datetime);
        self.observe_terminal(tx.terminal_id, tx.tx_datetime, tx.tx_fraud);
        self.advance(tx.tx_datetime);
        FeatureRow::for_transaction(tx, customer, terminal)
    }

    /// Number of customers and terminals currently holding history (for memory metrics).
    pub fn tracked_keys(&self) -> (usize, usize) {
        (self.customers.len(), self.terminals.len())
    }

    /// Latest event time seen.
    pub fn watermark(&self) -> EpochSeconds {
        self.watermark
    }

    fn observe_customer(&mut self, customer: u64, t: EpochSeconds, amount: f64) -> CustomerWindows {
        let events = self.customers.entry(customer).or_default();
        // After every event already at `t`, as the batch's stable order places it.
        let at = events.partition_point(|&(time, _)| time <= t);
        events.insert(at, (t, to_micro(amount)));
        let mut count = [0u32; 3];
        let mut sum: [MicroAmount; 3] = [0; 3];
        for w in 0..3 {
            let start = customer_window_start(t, CUSTOMER_WINDOW_DAYS[w]);
            let lo = events.partition_point(|&(time, _)| time <= start);
            for &(_, a) in events.range(lo..=at) {
                count[w] += 1;
                sum[w] += a;
            }
        }
        CustomerWindows::from_sums(count, sum)
    }

    fn terminal_windows(&self, terminal: u64, t: EpochSeconds) -> TerminalWindows {
        let Some(events) = self.terminals.get(&terminal) else {
            return TerminalWindows::default();
        };
        let (_, upper) = terminal_window_bounds(t, 0);
        let hi = events.partition_point(|&(time, _)| time <= upper);
        let mut count = [0u32; 3];
        let mut fraud = [0u32; 3];
        for w in 0..3 {
            let (lower, _) = terminal_window_bounds(t, TERMINAL_WINDOW_DAYS[w]);
            let lo = events.partition_point(|&(time, _)| time <= lower);
            for &(_, label) in events.range(lo..hi.max(lo)) {
                count[w] += 1;
                fraud[w] += u32::from(label);
            }
        }
        TerminalWindows::from_counts(count, fraud)
    }

    fn observe_terminal(&mut self, terminal: u64, t: EpochSeconds, fraud: bool) {
        let events = self.terminals.entry(terminal).or_default();
        let at = events.partition_point(|&(time, _)| time <= t);
        events.insert(at, (t, fraud));
    }

    /// Moves event time forward and drops history no window can reach any more.
    fn advance(&mut self, t: EpochSeconds) {
        if t <= self.watermark {
            return;
        }
        self.watermark = t;
        self.since_sweep += 1;
        if self.since_sweep < SWEEP_EVERY {
            return;
        }
        self.since_sweep = 0;
        let (c_cut, t_cut) = (t - CUSTOMER_RETENTION, t - TERMINAL_RETENTION);
        self.customers.retain(|_, events| prune(events, c_cut));
        self.terminals.retain(|_, events| prune(events, t_cut));
    }
}

/// Drops events at or before `cutoff`; returns whether any remain.
fn prune<T>(events: &mut VecDeque<(EpochSeconds, T)>, cutoff: EpochSeconds) -> bool {
    while events.front().is_some_and(|&(time, _)| time <= cutoff) {
        events.pop_front();
    }
    !events.is_empty()
}
