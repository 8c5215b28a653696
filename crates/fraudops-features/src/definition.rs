//! What each feature means: names, order, window bounds and how a row is assembled.
//!
//! Everything that decides a feature's *value* lives here so that the batch and the online path cannot
//! drift apart: they only differ in how they find the events inside a window.

use fraudops_data::{EpochSeconds, MerchantCategory, Transaction};

/// Seconds in a day; window lengths are whole days.
pub const DAY: i64 = 86_400;

/// Customer window lengths in days; each window ends at and includes the current transaction.
pub const CUSTOMER_WINDOW_DAYS: [i64; 3] = [1, 7, 30];

/// Terminal window lengths in days, measured before the label delay.
pub const TERMINAL_WINDOW_DAYS: [i64; 3] = [1, 7, 30];

/// Days before a transaction's fraud label is known; terminal risk only uses labels at least this old.
pub const TERMINAL_DELAY_DAYS: i64 = 7;

/// How long a customer's events matter to any window.
pub const CUSTOMER_RETENTION: i64 = 30 * DAY;

/// How long a terminal's events matter to any window (delay plus the longest window).
pub const TERMINAL_RETENTION: i64 = (TERMINAL_DELAY_DAYS + 30) * DAY;

/// Number of features the model sees.
pub const N_FEATURES: usize = 20;

/// Feature names in model input order; stored in every model artifact and checked when one is loaded.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "TX_AMOUNT",
    "TX_DURING_WEEKEND",
    "TX_DURING_NIGHT",
    "CUSTOMER_ID_NB_TX_1DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_1DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_7DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_7DAY_WINDOW",
    "CUSTOMER_ID_NB_TX_30DAY_WINDOW",
    "CUSTOMER_ID_AVG_AMOUNT_30DAY_WINDOW",
    "TERMINAL_ID_NB_TX_1DAY_WINDOW",
    "TERMINAL_ID_RISK_1DAY_WINDOW",
    "TERMINAL_ID_NB_TX_7DAY_WINDOW",
    "TERMINAL_ID_RISK_7DAY_WINDOW",
    "TERMINAL_ID_NB_TX_30DAY_WINDOW",
    "TERMINAL_ID_RISK_30DAY_WINDOW",
    "MERCHANT_CATEGORY",
    "USER_AGE",
    "ACCOUNT_BALANCE",
    "AMOUNT_OVER_CUSTOMER_AVG_7DAY",
    "AMOUNT_OVER_CUSTOMER_AVG_30DAY",
];

/// One model input row, in [`FEATURE_NAMES`] order. `NaN` marks a missing value (the model routes it).
pub type FeatureVector = [f64; N_FEATURES];

/// Amounts are summed as integer micro-units so a window sum is exact whatever order events are added
/// and removed in: this is what makes the batch and online paths bit-identical.
pub type MicroAmount = i128;

/// Converts an amount to exact micro-units for window sums.
pub fn to_micro(amount: f64) -> MicroAmount {
    // Amounts are validated finite and non-negative at the edges; `as` saturates anything else.
    (amount * 1_000_000.0).round() as MicroAmount
}

/// The customer's spending in each window of [`CUSTOMER_WINDOW_DAYS`], the current transaction included.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct CustomerWindows {
    /// Number of transactions in the window.
    pub nb_tx: [u32; 3],
    /// Mean amount in the window (0 when empty).
    pub avg_amount: [f64; 3],
}

impl CustomerWindows {
    /// The windows of a customer seen for the first time: only the current transaction.
    pub fn first_transaction(amount: f64) -> Self {
        Self::from_sums([1; 3], [to_micro(amount); 3])
    }

    /// Builds the windows from exact counts and micro-unit sums (the shared arithmetic of both paths).
    pub fn from_sums(nb_tx: [u32; 3], sums: [MicroAmount; 3]) -> Self {
        let mut avg_amount = [0.0; 3];
        for i in 0..3 {
            if nb_tx[i] > 0 {
                avg_amount[i] = (sums[i] as f64 / 1_000_000.0) / f64::from(nb_tx[i]);
            }
        }
        Self { nb_tx, avg_amount }
    }
}

/// The terminal's fraud history in each window of [`TERMINAL_WINDOW_DAYS`], shifted back by the delay.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TerminalWindows {
    /// Number of labelled transactions in the window.
    pub nb_tx: [u32; 3],
    /// Share of them that were fraud (0 when the window is empty).
    pub risk: [f64; 3],
}

impl TerminalWindows {
    /// Builds the windows from exact counts (the shared arithmetic of both paths).
    pub fn from_counts(nb_tx: [u32; 3], nb_fraud: [u32; 3]) -> Self {
        let mut risk = [0.0; 3];
        for i in 0..3 {
            if nb_tx[i] > 0 {
                risk[i] = f64::from(nb_fraud[i]) / f64::from(nb_tx[i]);
            }
        }
        Self { nb_tx, risk }
    }
}

/// Start (exclusive) of customer window `w` for an event at `t`; the window is `(start, t]`.
pub const fn customer_window_start(t: EpochSeconds, window_days: i64) -> EpochSeconds {
    t - window_days * DAY
}

/// Bounds `(lo, hi]` of terminal window `w` for an event at `t`: the `w` days before the delay period.
pub const fn terminal_window_bounds(
    t: EpochSeconds,
    window_days: i64,
) -> (EpochSeconds, EpochSeconds) {
    (
        t - (TERMINAL_DELAY_DAYS + window_days) * DAY,
        t - TERMINAL_DELAY_DAYS * DAY,
    )
}

/// Day of week, Monday = 0 … Sunday = 6 (pandas' convention, which the handbook uses).
pub const fn day_of_week(t: EpochSeconds) -> u8 {
    // 1970-01-01 was a Thursday (3).
    ((t.div_euclid(DAY) + 3).rem_euclid(7)) as u8
}

/// Hour of day, 0–23.
pub const fn hour_of_day(t: EpochSeconds) -> u8 {
    (t.rem_euclid(DAY) / 3600) as u8
}

/// Weekend in the handbook's sense: day of week ≥ 5.
pub const fn is_weekend_day(day_of_week: u8) -> bool {
    day_of_week >= 5
}

/// Night in the handbook's sense: hour ≤ 6.
pub const fn is_night_hour(hour: u8) -> bool {
    hour <= 6
}

/// `amount / average`, or 1 when the average is 0 (no history: the amount is all the card has spent).
fn ratio(amount: f64, average: f64) -> f64 {
    if average > 0.0 { amount / average } else { 1.0 }
}

/// Everything one row is made of, named; the single place a [`FeatureVector`] is assembled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureRow {
    /// Transaction amount.
    pub amount: f64,
    /// Weekend flag, unknown when neither a timestamp nor a day of week was given.
    pub during_weekend: Option<bool>,
    /// Night flag, unknown when neither a timestamp nor an hour was given.
    pub during_night: Option<bool>,
    /// Customer spending windows.
    pub customer: CustomerWindows,
    /// Terminal risk windows.
    pub terminal: TerminalWindows,
    /// Extension: merchant category of the terminal.
    pub merchant_category: Option<MerchantCategory>,
    /// Extension: customer age.
    pub user_age: Option<f32>,
    /// Extension: account balance.
    pub account_balance: Option<f64>,
}

impl FeatureRow {
    /// A row for a transaction whose windows are known (the batch and online paths).
    pub fn for_transaction(
        tx: &Transaction,
        customer: CustomerWindows,
        terminal: TerminalWindows,
    ) -> Self {
        Self {
            amount: tx.tx_amount,
            during_weekend: Some(is_weekend_day(day_of_week(tx.tx_datetime))),
            during_night: Some(is_night_hour(hour_of_day(tx.tx_datetime))),
            customer,
            terminal,
            merchant_category: tx.merchant_category,
            user_age: tx.user_age,
            account_balance: tx.account_balance,
        }
    }

    /// Writes the row into `out` in [`FEATURE_NAMES`] order without allocating.
    pub fn write_into(&self, out: &mut FeatureVector) {
        let flag = |b: Option<bool>| b.map_or(f64::NAN, |b| if b { 1.0 } else { 0.0 });
        out[0] = self.amount;
        out[1] = flag(self.during_weekend);
        out[2] = flag(self.during_night);
        for i in 0..3 {
            out[3 + 2 * i] = f64::from(self.customer.nb_tx[i]);
            out[4 + 2 * i] = self.customer.avg_amount[i];
            out[9 + 2 * i] = f64::from(self.terminal.nb_tx[i]);
            out[10 + 2 * i] = self.terminal.risk[i];
        }
        out[15] = self
            .merchant_category
            .map_or(f64::NAN, |c| f64::from(c.code()));
        out[16] = self.user_age.map_or(f64::NAN, f64::from);
        out[17] = self.account_balance.unwrap_or(f64::NAN);
        // Scenario-3 fraud multiplies a card's usual amount: the ratio says so directly, which trees
        // trained on a week of data cannot learn from the two columns separately.
        out[18] = ratio(self.amount, self.customer.avg_amount[1]);
        out[19] = ratio(self.amount, self.customer.avg_amount[2]);
    }

    /// The row as a fresh vector.
    pub fn to_vector(&self) -> FeatureVector {
        let mut out = [0.0; N_FEATURES];
        self.write_into(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_matches_known_dates() {
        // 2018-04-01 00:00:00 was a Sunday.
        let t = 1_522_540_800;
        assert_eq!(day_of_week(t), 6);
        assert!(is_weekend_day(day_of_week(t)));
        // 2018-04-02 06:59:59 is a Monday, still night; 07:00:00 is not.
        let monday = t + DAY;
        assert_eq!(day_of_week(monday), 0);
        assert!(is_night_hour(hour_of_day(monday + 6 * 3600 + 3599)));
        assert!(!is_night_hour(hour_of_day(monday + 7 * 3600)));
    }

    #[test]
    fn averages_are_exact_for_cent_amounts() {
        let w = CustomerWindows::from_sums(
            [1, 2, 3],
            [to_micro(52.3), to_micro(0.1) + to_micro(0.2), 0],
        );
        assert_eq!(w.avg_amount[0], 52.3);
        assert_eq!(w.avg_amount[1], 0.15);
        assert_eq!(w.avg_amount[2], 0.0);
        assert_eq!(
            CustomerWindows::first_transaction(10.0).avg_amount,
            [10.0; 3]
        );
    }

    #[test]
    fn empty_terminal_windows_have_zero_risk() {
        let w = TerminalWindows::from_counts([0, 4, 10], [0, 1, 5]);
        assert_eq!(w.risk, [0.0, 0.25, 0.5]);
    }

    #[test]
    fn missing_extension_fields_become_nan() {
        let row = FeatureRow {
            amount: 5.0,
            during_weekend: None,
            during_night: Some(true),
            customer: CustomerWindows::first_transaction(5.0),
            terminal: TerminalWindows::default(),
            merchant_category: None,
            user_age: None,
            account_balance: None,
        };
        let v = row.to_vector();
        assert!(v[1].is_nan());
        assert_eq!(v[2], 1.0);
        assert!(v[15].is_nan() && v[16].is_nan() && v[17].is_nan());
    }
}
