//! The handbook's time-based split (SPEC §3.3): train, skip the label delay, test on later days with
//! already-known compromised cards removed.

use std::collections::HashSet;

use chrono::NaiveDate;
use fraudops_data::Transaction;
use fraudops_features::definition::DAY;

/// Where the windows fall; the CLI flags `--train-start`, `--train-days`, `--delay-days`, `--test-days`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitConfig {
    /// First training day.
    pub train_start: NaiveDate,
    /// Training days.
    pub train_days: u32,
    /// Days between the training and the test window (labels are known only after this delay).
    pub delay_days: u32,
    /// Test days.
    pub test_days: u32,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            train_start: NaiveDate::from_ymd_opt(2018, 7, 25).unwrap_or_default(),
            train_days: 7,
            delay_days: 7,
            test_days: 7,
        }
    }
}

/// Row indices of each side of the split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    /// Transactions in the training window.
    pub train: Vec<usize>,
    /// Test transactions whose card was not yet known to be compromised.
    pub test: Vec<usize>,
    /// Test day (0-based) of each `test` row, for Card Precision@k.
    pub test_day: Vec<u32>,
}

/// Why a split cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SplitError {
    /// The data holds no transaction in the training window.
    #[error(
        "no transactions in the training window starting {0} (check --train-start against the data's dates)"
    )]
    EmptyTrain(NaiveDate),
    /// The data holds no usable transaction in the test window.
    #[error("no transactions in the test window starting {0} (the data may end too early)")]
    EmptyTest(NaiveDate),
    /// The training window has only one class.
    #[error("the training window has no {0} transactions; a classifier cannot be trained")]
    OneClass(&'static str),
}

/// Calendar day number of a timestamp (days since the epoch).
fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY)
}

/// Splits `transactions` by calendar day as the handbook does.
pub fn time_split(transactions: &[Transaction], config: &SplitConfig) -> Result<Split, SplitError> {
    let start = day_of(
        config
            .train_start
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp(),
    );
    let train_end = start + i64::from(config.train_days);
    let test_start = train_end + i64::from(config.delay_days);
    let test_end = test_start + i64::from(config.test_days);

    let train: Vec<usize> = (0..transactions.len())
        .filter(|&i| (start..train_end).contains(&day_of(transactions[i].tx_datetime)))
        .collect();
    if train.is_empty() {
        return Err(SplitError::EmptyTrain(config.train_start));
    }
    let frauds = train.iter().filter(|&&i| transactions[i].tx_fraud).count();
    if frauds == 0 {
        return Err(SplitError::OneClass("fraudulent"));
    }
    if frauds == train.len() {
        return Err(SplitError::OneClass("genuine"));
    }

    let mut known: HashSet<u64> = train
        .iter()
        .filter(|&&i| transactions[i].tx_fraud)
        .map(|&i| transactions[i].customer_id)
        .collect();
    let mut by_day: Vec<Vec<usize>> = vec![Vec::new(); config.test_days as usize];
    let mut fraud_customers_by_day: std::collections::HashMap<i64, Vec<u64>> = Default::default();
    for (i, tx) in transactions.iter().enumerate() {
        let day = day_of(tx.tx_datetime);
        if (test_start..test_end).contains(&day) {
            by_day[(day - test_start) as usize].push(i);
        }
        if tx.tx_fraud && (train_end - 1..test_start + i64::from(config.test_days)).contains(&day) {
            fraud_customers_by_day
                .entry(day)
                .or_default()
                .push(tx.customer_id);
        }
    }
    let (mut test, mut test_day) = (Vec::new(), Vec::new());
    for (d, rows) in by_day.into_iter().enumerate() {
        // What became known after the delay: the frauds of day train_end + d - 1.
        if let Some(customers) = fraud_customers_by_day.get(&(train_end + d as i64 - 1)) {
            known.extend(customers);
        }
        for i in rows {
            if !known.contains(&transactions[i].customer_id) {
                test.push(i);
                test_day.push(d as u32);
            }
        }
    }
    if test.is_empty() {
        return Err(SplitError::EmptyTest(
            config.train_start
                + chrono::Days::new(u64::from(config.train_days + config.delay_days)),
        ));
    }
    Ok(Split {
        train,
        test,
        test_day,
    })
}
