//! The one parse of an incoming event, and the API request the worker builds from it.
//!
//! The JSON on the topics (transaction events, predictions, dead letters) is `fraudops-wire`'s: this
//! module reads a `transactions-input` event ([`fraudops_wire::TransactionEvent`]) with the API's own
//! validation ([`fraudops_wire::parse_single`]), so a dead-letter reason is word for word the 4xx body
//! the API would give for the same JSON, then checks what the online features need beyond the API.

use fraudops_data::Transaction;
use fraudops_data::writer::{format_datetime, parse_datetime};
use fraudops_features::{CustomerWindows, FeatureRow, TerminalWindows};
use fraudops_store::{Observation, Windows};
use fraudops_wire::{
    CustomerHistory, History, PredictRequest, TerminalHistory, TransactionId, ValidationError,
};
use serde::{Deserialize, Serialize};

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
    /// A synthetic event (the attack's): recorded in the store's synthetic namespace.
    pub synthetic: bool,
}

/// Why an event was refused: the same message and field the API would answer with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejection {
    /// What is wrong.
    pub reason: String,
    /// The offending field, when one is to blame.
    pub field: Option<String>,
}

impl From<ValidationError> for Rejection {
    fn from(e: ValidationError) -> Self {
        Self {
            field: e.field().map(str::to_owned),
            reason: e.to_string(),
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

/// The fields of a [`fraudops_wire::TransactionEvent`] the worker needs beyond the API's: the keys of the
/// online state. Read apart from the API's parse, which stays the one that names a bad request field,
/// and only after it has passed. A label in the event (older attacks wrote `tx_fraud`) is never read:
/// labels reach the features only through `fraud-labels`.
#[derive(Deserialize)]
struct StreamFields {
    customer_id: Option<u64>,
    terminal_id: Option<u64>,
    tx_datetime: Option<String>,
}

/// Parses one message payload: the API's validation first, then the stream's own requirements (customer,
/// terminal and time, which the API may do without but the online features cannot).
pub fn parse_event(payload: &[u8]) -> Result<Event, Rejection> {
    let valid = fraudops_wire::parse_single(payload)?;
    let fields: StreamFields = serde_json::from_slice(payload).map_err(|e| Rejection {
        reason: e.to_string(),
        field: None,
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
        synthetic: valid.synthetic,
        id: valid.id,
        tx: Transaction {
            transaction_id,
            tx_datetime,
            customer_id,
            terminal_id,
            tx_amount: valid.row.amount,
            tx_time_seconds: 0,
            tx_time_days: 0,
            tx_fraud: false,
            tx_fraud_scenario: 0,
            merchant_category: valid.row.merchant_category,
            user_age: valid.row.user_age,
            account_balance: valid.row.account_balance,
        },
    })
}

impl Event {
    /// The event as the feature store records it.
    pub fn observation(&self) -> Observation {
        Observation {
            transaction_id: self.id.to_string(),
            customer_id: self.tx.customer_id,
            terminal_id: self.tx.terminal_id,
            time: self.tx.tx_datetime,
            amount: self.tx.tx_amount,
            record: true,
            namespace: self.namespace(),
        }
    }

    /// The store namespace of its history.
    pub fn namespace(&self) -> fraudops_store::Namespace {
        if self.synthetic {
            fraudops_store::Namespace::Synthetic
        } else {
            fraudops_store::Namespace::Real
        }
    }

    /// The row with the store's windows.
    pub fn row(&self, windows: &Windows) -> FeatureRow {
        FeatureRow::for_transaction(&self.tx, windows.customer, windows.terminal)
    }

    /// The row without history (no store, or the store failed): a first transaction at an unseen
    /// terminal, exactly what the API scores for a request without history.
    pub fn row_without_history(&self) -> FeatureRow {
        FeatureRow::for_transaction(
            &self.tx,
            CustomerWindows::first_transaction(self.tx.tx_amount),
            TerminalWindows::default(),
        )
    }
}

/// The `POST /predict` body for an event: with the store's windows as precomputed history when the
/// worker has them (so the API scores the very vector the in-process path would), else without history.
pub fn predict_request(event: &Event, row: Option<&FeatureRow>) -> PredictRequest {
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
        history: row.map(history),
        synthetic: event.synthetic,
    }
}

/// A row's windows as the request's `history`.
fn history(row: &FeatureRow) -> History {
    let c = &row.customer;
    let t = &row.terminal;
    History {
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
    }
}

#[cfg(test)]
mod tests {
    use fraudops_wire::TransactionEvent;

    use super::*;

    fn tx() -> Transaction {
        Transaction::example()
    }

    #[test]
    fn an_attack_event_parses_back_to_the_same_transaction() {
        let json = serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap();
        let event = parse_event(&json).unwrap();
        let mut expected = tx();
        expected.tx_fraud_scenario = 0;
        // Transactions carry no label on the topic; the worker never reads one.
        expected.tx_fraud = false;
        assert_eq!(event.tx, expected);
        assert_eq!(event.id, TransactionId::Number(17));
        assert_eq!(key_of(&tx()), "42");
    }

    #[test]
    fn an_attack_event_is_a_valid_api_request() {
        let json = serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap();
        let valid = fraudops_wire::parse_single(&json).unwrap();
        assert_eq!(valid.row.amount, 129.9);
    }

    #[test]
    fn rejections_name_the_field_like_the_api_does() {
        let cases: [(&[u8], Option<&str>); 5] = [
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
        let api = fraudops_wire::parse_single(body).unwrap_err();
        assert_eq!(parse_event(body).unwrap_err().reason, api.to_string());
    }

    #[test]
    fn a_label_in_the_event_is_never_read() {
        let payload = br#"{"transaction_id": 1, "amount": 5, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00", "tx_fraud": true}"#;
        assert!(!parse_event(payload).unwrap().tx.tx_fraud);
    }

    #[test]
    fn the_api_request_carries_the_stores_windows_or_no_history() {
        let event =
            parse_event(&serde_json::to_vec(&TransactionEvent::from(&tx())).unwrap()).unwrap();
        let windows = Windows {
            customer: CustomerWindows::from_sums(
                [2, 3, 4],
                [250_000_000, 400_000_000, 500_000_000],
            ),
            terminal: TerminalWindows::from_counts([4, 8, 20], [1, 1, 2]),
        };
        let row = event.row(&windows);
        let body = serde_json::to_vec(&predict_request(&event, Some(&row))).unwrap();
        let valid = fraudops_wire::parse_single(&body).unwrap();
        assert_eq!(
            valid.row.to_vector().map(f64::to_bits),
            row.to_vector().map(f64::to_bits)
        );
        // Without windows the API gets no history and scores what the worker's fallback scores.
        let body = serde_json::to_vec(&predict_request(&event, None)).unwrap();
        let valid = fraudops_wire::parse_single(&body).unwrap();
        assert_eq!(
            valid.row.to_vector().map(f64::to_bits),
            event.row_without_history().to_vector().map(f64::to_bits)
        );
    }
}
