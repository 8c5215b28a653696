//! The JSON on the topics, and the one parse of an incoming event.
//!
//! * `transactions-input` carries [`TransactionEvent`]s: the API's request fields (SPEC §4) plus the label
//!   `tx_fraud`, keyed by customer id so one card's events stay in order on one partition;
//! * `fraud-predictions` carries [`PredictionEvent`]s: the API's response plus where the event came from;
//! * the dead-letter topic carries [`DeadLetter`]s: the raw event and why it was refused.
//!
//! An event is parsed by the API's own validation ([`fraudops_serve::validation::parse_single`]), so a
//! dead-letter reason is word for word the 4xx body the API would give for the same JSON.

use fraudops_data::writer::{format_datetime, parse_datetime};
use fraudops_data::{MerchantCategory, Transaction};
use fraudops_features::FeatureRow;
use fraudops_serve::error::ApiError;
use fraudops_serve::schema::{
    CustomerHistory, History, PredictRequest, PredictResponse, TerminalHistory, TransactionId,
};
use serde::{Deserialize, Serialize};

/// Longest raw payload copied into a dead letter; the rest is cut (a huge poison message must not make
/// a huge dead letter, which the broker might refuse and block the partition).
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 64 * 1024;

/// One transaction as the attack writes it to `transactions-input`.
///
/// It is a valid `POST /predict` body as it stands (so `attack --http` sends the same bytes), plus the
/// label: the online terminal-risk features only use labels older than the 7-day delay, as training does.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransactionEvent {
    /// Simulator or file id (made unique across replay loops).
    pub transaction_id: u64,
    /// Amount.
    pub amount: f64,
    /// Card; also the message key.
    pub customer_id: u64,
    /// Terminal.
    pub terminal_id: u64,
    /// Event time, `YYYY-MM-DD HH:MM:SS`.
    pub tx_datetime: String,
    /// Extension field, when the source has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_category: Option<&'static str>,
    /// Extension field, when the source has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_age: Option<f32>,
    /// Extension field, when the source has it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account_balance: Option<f64>,
    /// The label, for the delayed terminal-risk features; absent in real traffic (counts as genuine).
    pub tx_fraud: bool,
}

impl From<&Transaction> for TransactionEvent {
    fn from(tx: &Transaction) -> Self {
        Self {
            transaction_id: tx.transaction_id,
            amount: tx.tx_amount,
            customer_id: tx.customer_id,
            terminal_id: tx.terminal_id,
            tx_datetime: format_datetime(tx.tx_datetime),
            merchant_category: tx.merchant_category.map(MerchantCategory::as_str),
            user_age: tx.user_age,
            account_balance: tx.account_balance,
            tx_fraud: tx.tx_fraud,
        }
    }
}

/// The message key of a transaction: its customer id in decimal, so a card's events share a partition
/// (and a worker) and its online features see them in order.
pub fn key_of(tx: &Transaction) -> String {
    tx.customer_id.to_string()
}

/// A parsed, validated event: what the worker computes features for.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The id as sent (string or integer), echoed in the prediction.
    pub id: TransactionId,
    /// The transaction; `transaction_id` is 0 for string ids (features never read it).
    pub tx: Transaction,
}

/// Why an event was refused: the same message and field the API would answer with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// What is wrong.
    pub reason: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

impl From<ApiError> for Rejection {
    fn from(e: ApiError) -> Self {
        let field = match &e {
            ApiError::Invalid { field, .. } | ApiError::MalformedJson { field, .. } => {
                field.clone()
            }
            _ => None,
        };
        Self {
            reason: e.to_string(),
            field,
        }
    }
}

impl Rejection {
    fn missing(field: &str) -> Self {
        Self {
            reason: format!(
                "{field} is required on {}: the online features are keyed by it",
                crate::config::DEFAULT_INPUT_TOPIC
            ),
            field: Some(field.to_owned()),
        }
    }
}

/// The fields the worker needs beyond the API's: the keys of the online state and the label.
#[derive(Deserialize)]
struct StreamFields {
    customer_id: Option<u64>,
    terminal_id: Option<u64>,
    tx_datetime: Option<String>,
    #[serde(default)]
    tx_fraud: Option<bool>,
}

/// Parses one message payload: the API's validation first, then the stream's own requirements (customer,
/// terminal and time, which the API may do without but the online features cannot).
pub fn parse_event(payload: &[u8]) -> Result<Event, Rejection> {
    let valid = fraudops_serve::validation::parse_single(payload)?;
    let fields: StreamFields = serde_json::from_slice(payload).map_err(|e| Rejection {
        reason: e.to_string(),
        field: Some("tx_fraud".into()),
    })?;
    let customer_id = fields
        .customer_id
        .ok_or_else(|| Rejection::missing("customer_id"))?;
    let terminal_id = fields
        .terminal_id
        .ok_or_else(|| Rejection::missing("terminal_id"))?;
    let tx_datetime = fields
        .tx_datetime
        .as_deref()
        .ok_or_else(|| Rejection::missing("tx_datetime"))?;
    // Already validated by the API's parse; the fallback only guards against the two ever disagreeing.
    let tx_datetime = parse_datetime(tx_datetime).ok_or_else(|| Rejection {
        reason: format!("expected YYYY-MM-DD HH:MM:SS, got {tx_datetime:?}"),
        field: Some("tx_datetime".into()),
    })?;
    let transaction_id = match valid.id {
        TransactionId::Number(n) => n,
        TransactionId::Text(_) => 0,
    };
    Ok(Event {
        id: valid.id,
        tx: Transaction {
            transaction_id,
            tx_datetime,
            customer_id,
            terminal_id,
            tx_amount: valid.row.amount,
            tx_time_seconds: 0,
            tx_time_days: 0,
            tx_fraud: fields.tx_fraud.unwrap_or(false),
            tx_fraud_scenario: 0,
            merchant_category: valid.row.merchant_category,
            user_age: valid.row.user_age,
            account_balance: valid.row.account_balance,
        },
    })
}

/// The `POST /predict` body for an event whose online features are `row`: the windows travel as
/// precomputed history, so the API scores the very vector the in-process path would.
pub fn predict_request(event: &Event, row: &FeatureRow) -> PredictRequest {
    let c = &row.customer;
    let t = &row.terminal;
    PredictRequest {
        transaction_id: event.id.clone(),
        amount: event.tx.tx_amount,
        customer_id: Some(event.tx.customer_id),
        terminal_id: Some(event.tx.terminal_id),
        tx_datetime: Some(format_datetime(event.tx.tx_datetime)),
        merchant_category: event.tx.merchant_category.map(|m| m.as_str().to_owned()),
        hour: None,
        day_of_week: None,
        user_age: event.tx.user_age,
        account_balance: event.tx.account_balance,
        history: Some(History {
            customer: Some(CustomerHistory {
                nb_tx_1day: c.nb_tx[0],
                avg_amount_1day: c.avg_amount[0],
                nb_tx_7day: c.nb_tx[1],
                avg_amount_7day: c.avg_amount[1],
                nb_tx_30day: c.nb_tx[2],
                avg_amount_30day: c.avg_amount[2],
            }),
            terminal: Some(TerminalHistory {
                nb_tx_1day: t.nb_tx[0],
                risk_1day: t.risk[0],
                nb_tx_7day: t.nb_tx[1],
                risk_7day: t.risk[1],
                nb_tx_30day: t.nb_tx[2],
                risk_30day: t.risk[2],
            }),
        }),
    }
}

/// How a prediction was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoredBy {
    /// By the scoring API over HTTP (the load that drives its autoscaling).
    Api,
    /// By the model inside the worker (`--in-process`).
    InProcess,
}

/// One message on `fraud-predictions`: the API's response plus the event's coordinates, so a consumer can
/// join predictions to inputs and count duplicates after a crash (at-least-once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictionEvent {
    /// The prediction, exactly as the API answers it.
    #[serde(flatten)]
    pub prediction: PredictResponse,
    /// The card, also the message key.
    pub customer_id: u64,
    /// API or in-process.
    pub scored_by: ScoredBy,
    /// Partition of the input event.
    pub source_partition: i32,
    /// Offset of the input event.
    pub source_offset: i64,
}

/// One message on the dead-letter topic: enough to find, understand and replay the refused event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Why it was refused (the API's words).
    pub reason: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
    /// Topic the event was read from.
    pub source_topic: String,
    /// Its partition.
    pub source_partition: i32,
    /// Its offset.
    pub source_offset: i64,
    /// The event bytes as text (invalid UTF-8 replaced), cut at [`MAX_DEAD_LETTER_PAYLOAD`].
    pub payload: String,
    /// True when the payload was cut.
    pub truncated: bool,
    /// Worker that refused it.
    pub worker: String,
    /// When (RFC 3339, UTC).
    pub at: String,
}

impl DeadLetter {
    /// A dead letter for `payload` read at `topic/partition/offset`.
    pub fn new(
        rejection: Rejection,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        worker: &str,
    ) -> Self {
        let truncated = payload.len() > MAX_DEAD_LETTER_PAYLOAD;
        let cut = &payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)];
        Self {
            reason: rejection.reason,
            field: rejection.field,
            source_topic: topic.to_owned(),
            source_partition: partition,
            source_offset: offset,
            payload: String::from_utf8_lossy(cut).into_owned(),
            truncated,
            worker: worker.to_owned(),
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tx() -> Transaction {
        Transaction {
            transaction_id: 17,
            tx_datetime: parse_datetime("2018-04-02 03:04:05").unwrap_or_default(),
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

    #[test]
    fn an_attack_event_parses_back_to_the_same_transaction() {
        let json = serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap();
        let event = parse_event(&json).unwrap();
        let mut expected = tx();
        expected.tx_fraud_scenario = 0;
        assert_eq!(event.tx, expected);
        assert_eq!(event.id, TransactionId::Number(17));
        assert_eq!(key_of(&tx()), "42");
    }

    #[test]
    fn an_attack_event_is_a_valid_api_request() {
        let json = serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap();
        let valid = fraudops_serve::validation::parse_single(&json).unwrap();
        assert_eq!(valid.row.amount, 129.9);
    }

    #[test]
    fn rejections_name_the_field_like_the_api_does() {
        let cases: [(&[u8], Option<&str>); 6] = [
            (b"not json", None),
            (br#"{"transaction_id": 1}"#, Some("amount")),
            (
                br#"{"transaction_id": 1, "amount": -5, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00"}"#,
                Some("amount"),
            ),
            (
                br#"{"transaction_id": 1, "amount": 5, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00"}"#,
                Some("customer_id"),
            ),
            (
                br#"{"transaction_id": 1, "amount": 5, "customer_id": 1, "terminal_id": 1}"#,
                Some("tx_datetime"),
            ),
            (
                br#"{"transaction_id": 1, "amount": 5, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00", "tx_fraud": "yes"}"#,
                Some("tx_fraud"),
            ),
        ];
        for (payload, field) in cases {
            let r = parse_event(payload).unwrap_err();
            assert_eq!(
                r.field.as_deref(),
                field,
                "{}: {r:?}",
                String::from_utf8_lossy(payload)
            );
            assert!(!r.reason.is_empty());
        }
        // Same words as the API's 4xx body.
        let body = br#"{"transaction_id": 1, "amount": -5}"#;
        let api = fraudops_serve::validation::parse_single(body).unwrap_err();
        assert_eq!(parse_event(body).unwrap_err().reason, api.to_string());
    }

    #[test]
    fn the_api_request_carries_the_online_windows() {
        let event =
            parse_event(&serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap()).unwrap();
        let mut online = fraudops_features::OnlineFeatures::new();
        let row = online.process_row(&event.tx);
        let body = serde_json::to_vec(&predict_request(&event, &row)).unwrap();
        let valid = fraudops_serve::validation::parse_single(&body).unwrap();
        assert_eq!(
            valid.row.to_vector().map(f64::to_bits),
            row.to_vector().map(f64::to_bits)
        );
    }

    #[test]
    fn dead_letters_cut_huge_payloads() {
        let payload = vec![b'x'; MAX_DEAD_LETTER_PAYLOAD + 10];
        let r = Rejection {
            reason: "r".into(),
            field: None,
        };
        let d = DeadLetter::new(r, "t", 1, 2, &payload, "w");
        assert!(d.truncated);
        assert_eq!(d.payload.len(), MAX_DEAD_LETTER_PAYLOAD);
    }
}
