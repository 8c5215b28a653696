//! Card transactions: the one in-memory [`Transaction`] type every other crate uses, the handbook's
//! transaction simulator ([`simulator`]), tolerant readers for real-world files ([`reader`]) and the CSV
//! writer ([`writer`]).
//!
//! Architecture invariant: this crate knows nothing about features, models, HTTP or Kafka.

pub mod category;
pub mod reader;
pub mod simulator;
pub mod writer;

pub use category::MerchantCategory;

/// Seconds since 1970-01-01T00:00:00 of a naive (zone-less) timestamp, as the handbook's data uses.
///
/// Kept as a plain integer so the feature windows are integer arithmetic on the hot path.
pub type EpochSeconds = i64;

/// One card transaction as the handbook's simulator defines it, plus the §4 extension fields.
///
/// The extension fields are `Option` because real files (the handbook's, the course's) do not carry them.
#[derive(Debug, Clone, PartialEq)]
pub struct Transaction {
    /// Unique, non-negative id; readers drop duplicates.
    pub transaction_id: u64,
    /// Event time, seconds since the epoch (naive, the data has no time zone).
    pub tx_datetime: EpochSeconds,
    /// Card holder; the key of the customer feature windows.
    pub customer_id: u64,
    /// Point of sale; the key of the terminal risk windows.
    pub terminal_id: u64,
    /// Amount in currency units, rounded to cents by the simulator.
    pub tx_amount: f64,
    /// Seconds since the start of the simulation (handbook column `TX_TIME_SECONDS`).
    pub tx_time_seconds: i64,
    /// Whole days since the start of the simulation (handbook column `TX_TIME_DAYS`).
    pub tx_time_days: i64,
    /// Label: true if the transaction is fraudulent.
    pub tx_fraud: bool,
    /// 0 for genuine, else the fraud scenario (1, 2 or 3) that made it fraudulent.
    pub tx_fraud_scenario: u8,
    /// Extension: the terminal's merchant category.
    pub merchant_category: Option<MerchantCategory>,
    /// Extension: the customer's age in years.
    pub user_age: Option<f32>,
    /// Extension: the customer's account balance.
    pub account_balance: Option<f64>,
}

impl Transaction {
    /// One fully populated transaction (every extension field set; a fraud of scenario 1, 2018-04-02
    /// 03:04:05): the fixture the wire format's tests in several crates round-trip, so each of them
    /// checks the same fields.
    pub fn example() -> Self {
        Self {
            transaction_id: 17,
            tx_datetime: 1_522_638_245,
            customer_id: 42,
            terminal_id: 3107,
            tx_amount: 129.9,
            tx_time_seconds: 0,
            tx_time_days: 0,
            tx_fraud: true,
            tx_fraud_scenario: 1,
            merchant_category: Some(MerchantCategory::Travel),
            user_age: Some(37.0),
            account_balance: Some(2400.5),
        }
    }
}
