//! The JSON the API speaks (SPEC §4): request, response and error bodies.
//!
//! Why they live in the wire crate: the API answers with them, the stream worker sends and reads them
//! (its predictions are the API's response, its events are the API's request), and the CLI's tests read
//! them back; one definition keeps the three from drifting. Their `ToSchema` derives give the API's
//! OpenAPI document its schemas, and the doc comments below are the descriptions in that document:
//! change one and `/openapi.json` changes.
//!
//! The request's optional fields are left out when absent (`skip_serializing_if`), so a request or a
//! `transactions-input` event carries only what its sender knows; the API reads an absent field and a
//! `null` alike.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A transaction id as clients send it: a string or a non-negative integer; echoed back unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TransactionId {
    /// Integer ids (the handbook's data).
    Number(u64),
    /// String ids (most payment systems), 1–128 characters.
    Text(String),
}

/// Read directly by JSON type: `#[serde(untagged)]` would buffer the value and build an error for
/// every string id before trying the second variant.
impl<'de> Deserialize<'de> for TransactionId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct IdVisitor;
        impl serde::de::Visitor<'_> for IdVisitor {
            type Value = TransactionId;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string or a non-negative integer")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<TransactionId, E> {
                Ok(TransactionId::Number(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<TransactionId, E> {
                u64::try_from(v)
                    .map(TransactionId::Number)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TransactionId, E> {
                Ok(TransactionId::Text(v.to_owned()))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<TransactionId, E> {
                Ok(TransactionId::Text(v))
            }
        }
        deserializer.deserialize_any(IdVisitor)
    }
}

/// The id as text: a number in decimal, a string as it is. The feature store and the labels name a
/// transaction by this, so a label finds the transaction its scoring recorded.
impl std::fmt::Display for TransactionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// Customer spending windows precomputed by the caller (the stream worker computes them online).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomerHistory {
    /// Transactions of the card in the last day, this one included.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_1day: u32,
    /// Mean amount of those transactions.
    #[schema(minimum = 0.0, maximum = 1e9)]
    pub avg_amount_1day: f64,
    /// Transactions in the last 7 days, this one included.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_7day: u32,
    /// Mean amount over 7 days.
    #[schema(minimum = 0.0, maximum = 1e9)]
    pub avg_amount_7day: f64,
    /// Transactions in the last 30 days, this one included.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_30day: u32,
    /// Mean amount over 30 days.
    #[schema(minimum = 0.0, maximum = 1e9)]
    pub avg_amount_30day: f64,
}

/// Terminal risk windows precomputed by the caller: the windows end 7 days ago (label delay).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TerminalHistory {
    /// Labelled transactions at the terminal in the 1-day window.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_1day: u32,
    /// Share of them that were fraud, 0–1.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub risk_1day: f64,
    /// Labelled transactions in the 7-day window.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_7day: u32,
    /// Fraud share in the 7-day window.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub risk_7day: f64,
    /// Labelled transactions in the 30-day window.
    #[schema(maximum = 1_000_000)]
    pub nb_tx_30day: u32,
    /// Fraud share in the 30-day window.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub risk_30day: f64,
}

/// Optional precomputed history features; without them the transaction is scored as the first one
/// seen for its card and terminal.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct History {
    /// The card's spending windows.
    pub customer: Option<CustomerHistory>,
    /// The terminal's risk windows.
    pub terminal: Option<TerminalHistory>,
}

/// One transaction to score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[schema(example = json!({"transaction_id": "tx-1001", "amount": 129.9, "customer_id": 42, "terminal_id": 3107,
    "tx_datetime": "2018-08-15 02:13:00", "merchant_category": "electronics", "user_age": 37, "account_balance": 2400.5}))]
pub struct PredictRequest {
    /// Caller's id of the transaction, echoed in the response.
    pub transaction_id: TransactionId,
    /// Amount, 0 ≤ amount ≤ 1,000,000,000.
    #[schema(minimum = 0.0, maximum = 1e9)]
    pub amount: f64,
    /// Card holder id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_id: Option<u64>,
    /// Terminal id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminal_id: Option<u64>,
    /// Event time, `YYYY-MM-DD HH:MM:SS` (or ISO 8601 with `T`/`Z`); gives the weekend and night flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_datetime: Option<String>,
    /// Merchant category: grocery, restaurant, gas_station, online_retail, electronics, travel,
    /// entertainment, health, clothing, utilities. Any other name (a new kind of merchant) is scored as an
    /// unknown category and counted (`ml_model_unknown_category_total`), never refused: a fraud API that
    /// refuses an unfamiliar merchant fails open. Empty, longer than 64 characters or with control
    /// characters is malformed (422).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub merchant_category: Option<String>,
    /// Hour of day 0–23; used when `tx_datetime` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 23)]
    pub hour: Option<u8>,
    /// Day of week 0 (Monday) – 6 (Sunday); used when `tx_datetime` is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 6)]
    pub day_of_week: Option<u8>,
    /// Card holder age in years, 0–150.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0.0, maximum = 150.0)]
    pub user_age: Option<f32>,
    /// Account balance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = -1e12, maximum = 1e12)]
    pub account_balance: Option<f64>,
    /// Precomputed history features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<History>,
    /// A synthetic transaction (an attack, a drill, a test): scored as any other, but its history lives in
    /// the feature store's synthetic namespace, so it never changes a real card's or terminal's windows.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

/// The model's answer for one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PredictResponse {
    /// The request's id, unchanged.
    pub transaction_id: TransactionId,
    /// `fraud_probability` ≥ the model's decision threshold.
    pub is_fraud: bool,
    /// Probability of fraud, 0–1.
    pub fraud_probability: f64,
    /// Probability of the predicted class, 0.5–1.
    pub confidence: f64,
    /// Version of the model that answered.
    pub model_version: String,
    /// When the prediction was made (RFC 3339, UTC).
    pub prediction_time: String,
    /// Time spent in the server for this request, milliseconds.
    pub processing_time_ms: f64,
    /// Replica (pod) that answered.
    pub replica_id: String,
    /// Where the transaction's history windows came from: `store` (the online feature store), `request`
    /// (the caller's `history`), `none` (no card, terminal and time, or no store: scored as a first
    /// transaction), `store_unavailable` (the store was needed and not reached: scored without history,
    /// a weaker score). Absent in events written before the field existed (read as `none`).
    #[serde(default)]
    pub feature_source: FeatureSource,
}

/// How a prediction's history windows were obtained: a score made without them (`store_unavailable`) is
/// much weaker (AP 0.064 against 0.654 on the simulator's test week), and says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FeatureSource {
    /// The online feature store's windows.
    Store,
    /// The caller's `history`.
    Request,
    /// No history to look up (no card, terminal and time; or the server has no store).
    #[default]
    None,
    /// The store was needed and did not answer in time: scored without history.
    StoreUnavailable,
}

impl FeatureSource {
    /// Every value, in the order of [`Self::index`].
    pub const ALL: [Self; 4] = [
        Self::Store,
        Self::Request,
        Self::None,
        Self::StoreUnavailable,
    ];

    /// The JSON and metric label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Store => "store",
            Self::Request => "request",
            Self::None => "none",
            Self::StoreUnavailable => "store_unavailable",
        }
    }

    /// Position in [`Self::ALL`] (pre-resolved counters).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// Many transactions in one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchRequest {
    /// Transactions to score, at most MAX_BATCH_SIZE (1000 by default).
    #[schema(min_items = 1, max_items = 1000)]
    pub transactions: Vec<PredictRequest>,
}

/// Predictions in request order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// One prediction per transaction, same order.
    pub predictions: Vec<PredictResponse>,
    /// Number of predictions.
    pub count: usize,
    /// Version of the model that answered (one model answers a whole batch).
    pub model_version: String,
    /// Time spent in the server for the whole batch, milliseconds.
    pub processing_time_ms: f64,
}

/// Every error the API returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What is wrong, in words.
    pub error: String,
    /// The offending field (a path such as `transactions[3].amount`), when one is to blame.
    pub field: Option<String>,
}

/// Liveness and readiness answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HealthStatus {
    /// `ok`, `not_ready` or `draining`.
    pub status: String,
    /// Version of the served model, if one is loaded.
    pub model_version: Option<String>,
}

/// What `GET /` says about this service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ServiceInfo {
    /// `fraudops`.
    pub service: String,
    /// Build version.
    pub version: String,
    /// Version of the served model, if one is loaded.
    pub model_version: Option<String>,
    /// Where the model came from (`embedded`, a file path, or a registry URI and version).
    pub model_source: Option<String>,
    /// This replica.
    pub replica_id: String,
}
