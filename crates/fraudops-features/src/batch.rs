//! Features for a whole transaction set at once (training): sort once, group by key, slide two pointers.

use fraudops_data::Transaction;

use crate::definition::{
    CUSTOMER_WINDOW_DAYS, CustomerWindows, FeatureRow, FeatureVector, MicroAmount, N_FEATURES,
    TERMINAL_WINDOW_DAYS, TerminalWindows, customer_window_start, terminal_window_bounds, to_micro,
};

/// Row-major feature values; row `i` belongs to the `i`-th input transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMatrix {
    values: Vec<f64>,
}

impl FeatureMatrix {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.values.len() / N_FEATURES
    }

    /// One row, in feature order.
    pub fn row(&self, i: usize) -> &FeatureVector {
        let start = i * N_FEATURES;
        self.values[start..start + N_FEATURES]
            .try_into()
            .expect("rows are N_FEATURES wide by construction")
    }

    /// All values, row-major (what a model trainer wants as one contiguous buffer).
    pub fn as_slice(&self) -> &[f64] {
        &self.values
    }

    /// Iterates over rows in input order.
    pub fn iter_rows(&self) -> impl Iterator<Item = &FeatureVector> {
        (0..self.rows()).map(|i| self.row(i))
    }
}

/// The order both paths process events in: event time, then position in the input.
///
/// The online path must be fed in this order to reproduce the batch values exactly.
pub fn processing_order(transactions: &[Transaction]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..transactions.len() as u32).collect();
    order.sort_by_key(|&i| (transactions[i as usize].tx_datetime, i));
    order
}

/// Computes every transaction's feature row; the result is aligned with the input.
///
/// Terminal risk uses each transaction's own label (`tx_fraud`), only once it is older than the delay.
pub fn compute(transactions: &[Transaction]) -> FeatureMatrix {
    let n = transactions.len();
    let order = processing_order(transactions);
    let mut customer = vec![CustomerWindows::default(); n];
    let mut terminal = vec![TerminalWindows::default(); n];

    // Stable sorts keep the processing order inside each key's group.
    let mut by_customer = order.clone();
    by_customer.sort_by_key(|&i| transactions[i as usize].customer_id);
    for group in by_customer.chunk_by(|&a, &b| {
        transactions[a as usize].customer_id == transactions[b as usize].customer_id
    }) {
        customer_group(transactions, group, &mut customer);
    }

    let mut by_terminal = order;
    by_terminal.sort_by_key(|&i| transactions[i as usize].terminal_id);
    for group in by_terminal.chunk_by(|&a, &b| {
        transactions[a as usize].terminal_id == transactions[b as usize].terminal_id
    }) {
        terminal_group(transactions, group, &mut terminal);
    }

    let mut values = vec![0.0; n * N_FEATURES];
    for (i, (tx, out)) in transactions
        .iter()
        .zip(values.chunks_exact_mut(N_FEATURES))
        .enumerate()
    {
        let out: &mut FeatureVector = out.try_into().expect("chunks are N_FEATURES wide");
        FeatureRow::for_transaction(tx, customer[i], terminal[i]).write_into(out);
    }
    FeatureMatrix { values }
}

/// Customer windows for one customer's events (in processing order): `(t - w, t]`, current included.
fn customer_group(txs: &[Transaction], group: &[u32], out: &mut [CustomerWindows]) {
    let mut lo = [0usize; 3];
    let mut count = [0u32; 3];
    let mut sum: [MicroAmount; 3] = [0; 3];
    for &i in group {
        let tx = &txs[i as usize];
        let amount = to_micro(tx.tx_amount);
        for w in 0..3 {
            count[w] += 1;
            sum[w] += amount;
            let start = customer_window_start(tx.tx_datetime, CUSTOMER_WINDOW_DAYS[w]);
            while txs[group[lo[w]] as usize].tx_datetime <= start {
                count[w] -= 1;
                sum[w] -= to_micro(txs[group[lo[w]] as usize].tx_amount);
                lo[w] += 1;
            }
        }
        out[i as usize] = CustomerWindows::from_sums(count, sum);
    }
}

/// Terminal windows for one terminal's events (in processing order): labels in `(t - d - w, t - d]`.
fn terminal_group(txs: &[Transaction], group: &[u32], out: &mut [TerminalWindows]) {
    let mut hi = 0usize; // first event not yet old enough to count
    let mut lo = [0usize; 3];
    let mut count = [0u32; 3];
    let mut fraud = [0u32; 3];
    for &i in group {
        let t = txs[i as usize].tx_datetime;
        let (_, upper) = terminal_window_bounds(t, 0);
        while hi < group.len() && txs[group[hi] as usize].tx_datetime <= upper {
            let label = u32::from(txs[group[hi] as usize].tx_fraud);
            for w in 0..3 {
                count[w] += 1;
                fraud[w] += label;
            }
            hi += 1;
        }
        for w in 0..3 {
            let (lower, _) = terminal_window_bounds(t, TERMINAL_WINDOW_DAYS[w]);
            while lo[w] < hi && txs[group[lo[w]] as usize].tx_datetime <= lower {
                count[w] -= 1;
                fraud[w] -= u32::from(txs[group[lo[w]] as usize].tx_fraud);
                lo[w] += 1;
            }
        }
        out[i as usize] = TerminalWindows::from_counts(count, fraud);
    }
}
