//! The JSON on the Kafka topics (SPEC §5):
//!
//! * `transactions-input` carries [`TransactionEvent`]s: an API request (SPEC §4) and nothing else (no
//!   label: a scorer never sees the outcome of what it scores), keyed by customer id so one card's events
//!   stay in order on one partition;
//! * `fraud-labels` carries [`LabelEvent`]s: a confirmed outcome (a chargeback, or a confirmation that the
//!   transaction was genuine), produced after the label delay and keyed by terminal id, so a terminal's
//!   labels, and a reversed label after the one it reverses, stay in order on one partition;
//! * `fraud-predictions` carries [`PredictionEvent`]s: the API's response plus where the event came from;
//! * the dead-letter topic carries [`DeadLetter`]s: the raw event and why it was refused.
//!
//! Why here: the attack writes these, the stream worker reads and writes them, and consumers outside the
//! worker (tests, a team's own consumer) read them back. Where an event is an API body, it is the API's
//! type, flattened, not a second spelling of the same fields.

use fraudops_data::writer::{format_datetime, parse_datetime};
use fraudops_data::{EpochSeconds, MerchantCategory, Transaction};
use serde::{Deserialize, Serialize};

use crate::schema::{PredictRequest, PredictResponse, TransactionId};

/// Longest raw payload copied into a dead letter; the rest is cut (a huge poison message must not make
/// a huge dead letter, which the broker might refuse and block the partition).
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 64 * 1024;

/// One transaction as the attack writes it to `transactions-input`.
///
/// It is a valid `POST /predict` body as it stands (so `attack --http` sends the same bytes and the
/// worker validates it with the API's own parse), and carries no label: outcomes travel on their own
/// topic ([`LabelEvent`]), later, as chargebacks do. Reading is tolerant: an event written before labels
/// moved out (with a `tx_fraud` field) still parses, the field ignored (no `deny_unknown_fields`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionEvent {
    /// The API request; an attack event always has an integer id (simulator or file id, made unique
    /// across replay loops), the customer, the terminal and the time, which the online features key on.
    #[serde(flatten)]
    pub request: PredictRequest,
}

impl From<&Transaction> for TransactionEvent {
    fn from(tx: &Transaction) -> Self {
        Self {
            request: PredictRequest {
                transaction_id: TransactionId::Number(tx.transaction_id),
                amount: tx.tx_amount,
                customer_id: Some(tx.customer_id),
                terminal_id: Some(tx.terminal_id),
                tx_datetime: Some(format_datetime(tx.tx_datetime)),
                merchant_category: tx
                    .merchant_category
                    .map(|m| MerchantCategory::as_str(m).to_owned()),
                hour: None,
                day_of_week: None,
                user_age: tx.user_age,
                account_balance: tx.account_balance,
                history: None,
                synthetic: false,
            },
        }
    }
}

/// One message on `fraud-labels`: the confirmed outcome of a transaction, keyed by terminal id.
///
/// The coordinates are the scored transaction's own (`transaction_id` as the API saw it, `tx_datetime` as
/// in the request), so the label lands on the very transaction the store recorded when it was scored.
/// Genuine outcomes are labels too (`tx_fraud: false`): they count in a terminal's labelled transactions,
/// and a second label for the same transaction replaces the first (a reversed chargeback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelEvent {
    /// The labelled transaction, as it was scored.
    pub transaction_id: TransactionId,
    /// The card.
    pub customer_id: u64,
    /// The terminal, also the message key.
    pub terminal_id: u64,
    /// The transaction's event time, `YYYY-MM-DD HH:MM:SS` (as in the request).
    pub tx_datetime: String,
    /// The outcome: fraud or genuine.
    pub tx_fraud: bool,
    /// When the outcome became known, on the transactions' clock (`YYYY-MM-DD HH:MM:SS`): what lets a
    /// retraining as of a day ignore labels that arrived later. Producers replaying history set it (the
    /// attack: the transaction's time plus the label delay); without it the lake takes the record's
    /// Kafka timestamp. Omitted from the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labelled_at: Option<String>,
    /// The label of a synthetic transaction (the attack's): applied to the store's synthetic namespace and
    /// kept out of the online evaluation of the model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub synthetic: bool,
}

impl LabelEvent {
    /// The transaction's event time; `None` when `tx_datetime` is not a date-time.
    pub fn time(&self) -> Option<EpochSeconds> {
        parse_datetime(&self.tx_datetime)
    }
}

impl From<&Transaction> for LabelEvent {
    fn from(tx: &Transaction) -> Self {
        Self {
            transaction_id: TransactionId::Number(tx.transaction_id),
            customer_id: tx.customer_id,
            terminal_id: tx.terminal_id,
            tx_datetime: format_datetime(tx.tx_datetime),
            tx_fraud: tx.tx_fraud,
            labelled_at: None,
            synthetic: false,
        }
    }
}

impl LabelEvent {
    /// The label of `tx` as known at event time `known_at` (the attack's and the lake replay's labels).
    pub fn known_at(tx: &Transaction, known_at: EpochSeconds) -> Self {
        Self {
            labelled_at: Some(format_datetime(known_at)),
            ..Self::from(tx)
        }
    }
}

/// How a prediction was made: a consumer comparing predictions must know whether the API (and its
/// autoscaling) saw the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoredBy {
    /// By the scoring API over HTTP (the load that drives its autoscaling).
    Api,
    /// By the model inside the worker (`--in-process`).
    InProcess,
}

impl ScoredBy {
    /// The JSON spelling (`api`, `in-process`), also the lake's column value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::InProcess => "in-process",
        }
    }
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
    /// The scored transaction's event time (`YYYY-MM-DD HH:MM:SS`), when the event had one: joins a
    /// prediction to its event day without reading the input topic. Omitted when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_datetime: Option<String>,
    /// API or in-process.
    pub scored_by: ScoredBy,
    /// Partition of the input event.
    pub source_partition: i32,
    /// Offset of the input event.
    pub source_offset: i64,
}

/// One message on the dead-letter topic: enough to find, understand and replay the refused event
/// without stopping the partition behind it.
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
    /// A dead letter, stamped now, for `payload` read at `topic/partition/offset` and refused by `worker`
    /// because of `reason` (naming `field`); the payload is cut at [`MAX_DEAD_LETTER_PAYLOAD`].
    pub fn new(
        reason: String,
        field: Option<String>,
        topic: &str,
        partition: i32,
        offset: i64,
        payload: &[u8],
        worker: &str,
    ) -> Self {
        let truncated = payload.len() > MAX_DEAD_LETTER_PAYLOAD;
        let cut = &payload[..payload.len().min(MAX_DEAD_LETTER_PAYLOAD)];
        Self {
            reason,
            field,
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
    use crate::validation::parse_single;

    fn tx() -> Transaction {
        Transaction::example()
    }

    #[test]
    fn a_transaction_event_is_written_field_for_field_without_a_label() {
        // The bytes on `transactions-input` are a contract with every consumer: the request's absent
        // fields stay absent, and no label rides along (the transaction is a fraud here).
        let json = serde_json::to_string(&TransactionEvent::from(&tx())).unwrap();
        assert_eq!(
            json,
            r#"{"transaction_id":17,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","merchant_category":"travel","user_age":37.0,"account_balance":2400.5}"#
        );
        let mut bare = tx();
        (bare.merchant_category, bare.user_age, bare.account_balance) = (None, None, None);
        let json = serde_json::to_string(&TransactionEvent::from(&bare)).unwrap();
        assert_eq!(
            json,
            r#"{"transaction_id":17,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05"}"#
        );
    }

    #[test]
    fn an_event_written_with_the_old_label_still_reads() {
        let old = br#"{"transaction_id":17,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#;
        let event: TransactionEvent = serde_json::from_slice(old).unwrap();
        assert_eq!(event.request.customer_id, Some(42));
        assert!(parse_single(old).is_ok(), "the API's parse ignores it too");
    }

    #[test]
    fn a_label_event_carries_the_outcome_and_the_coordinates() {
        let label = LabelEvent::from(&tx());
        let json = serde_json::to_string(&label).unwrap();
        assert_eq!(
            json,
            r#"{"transaction_id":17,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#
        );
        let back: LabelEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, label);
        assert_eq!(back.time(), Some(tx().tx_datetime));
        let text: LabelEvent = serde_json::from_str(
            r#"{"transaction_id":"tx-9","customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02T03:04:05Z","tx_fraud":false}"#,
        )
        .unwrap();
        assert_eq!(text.transaction_id, TransactionId::Text("tx-9".into()));
        assert_eq!(text.time(), Some(tx().tx_datetime));
        let bad: LabelEvent = serde_json::from_str(
            r#"{"transaction_id":1,"customer_id":1,"terminal_id":2,"tx_datetime":"yesterday","tx_fraud":true}"#,
        )
        .unwrap();
        assert_eq!(bad.time(), None);
        assert!(
            serde_json::from_str::<LabelEvent>(r#"{"transaction_id":1,"terminal_id":2}"#).is_err(),
            "a label needs every field"
        );
    }

    #[test]
    fn a_transaction_event_is_a_valid_api_request_and_reads_back() {
        let event = TransactionEvent::from(&tx());
        let json = serde_json::to_vec(&event).unwrap();
        let valid = parse_single(&json).unwrap();
        assert_eq!(valid.row.amount, 129.9);
        assert_eq!(valid.id, TransactionId::Number(17));
        let back: TransactionEvent = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, event);
        let minimal: TransactionEvent =
            serde_json::from_slice(br#"{"transaction_id": "a", "amount": 1}"#).unwrap();
        assert_eq!(
            minimal.request.transaction_id,
            TransactionId::Text("a".into())
        );
    }

    #[test]
    fn dead_letters_cut_huge_payloads() {
        let payload = vec![b'x'; MAX_DEAD_LETTER_PAYLOAD + 10];
        let d = DeadLetter::new("r".into(), None, "t", 1, 2, &payload, "w");
        assert!(d.truncated);
        assert_eq!(d.payload.len(), MAX_DEAD_LETTER_PAYLOAD);
    }
}
