//! Request bytes → validated transactions. Parse, don't validate: past this module a transaction is a
//! [`ValidTransaction`] whose feature row can be scored without any further check.
//!
//! Why here and not in the API: the stream worker parses every Kafka event with [`parse_single`] too, so
//! an event the API would refuse is dead-lettered with the very words of the API's 4xx body.

use fraudops_data::writer::parse_datetime;
use fraudops_data::{EpochSeconds, MerchantCategory};
use fraudops_features::definition::{day_of_week, hour_of_day, is_night_hour, is_weekend_day};
use fraudops_features::{CustomerWindows, FeatureRow, TerminalWindows};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::ValidationError;
use crate::schema::{
    BatchRequest, CustomerHistory, PredictRequest, TerminalHistory, TransactionId,
};

/// Largest amount accepted: anything above is a client bug or an attack, not a card payment (public so
/// callers and tests can name the limit the error message quotes).
pub const MAX_AMOUNT: f64 = 1e9;
/// Largest absolute account balance accepted: beyond it a balance is a unit or encoding bug, not data.
pub const MAX_BALANCE: f64 = 1e12;
/// Longest merchant category name accepted: a name, not a document.
pub const MAX_CATEGORY_LEN: usize = 64;
/// Longest string transaction id accepted: ids are echoed in responses and logs, so they are bounded.
pub const MAX_ID_LEN: usize = 128;
/// Largest window count accepted in precomputed history: more is no card's real history, and the model
/// was never trained on it.
pub const MAX_WINDOW_COUNT: u32 = 1_000_000;

/// A transaction that passed every check: its id and the model's input row. What the parse functions
/// return, so code past them holds a row in range and scoring it cannot fail.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidTransaction {
    /// The caller's id, echoed back.
    pub id: TransactionId,
    /// Model input.
    pub row: FeatureRow,
    /// The request named a merchant category the model does not know (scored as missing, counted).
    pub unknown_merchant_category: bool,
    /// Where the online feature store keeps this transaction's windows: set when the request names the
    /// card, the terminal and the time and brings no `history` (a direct call from a payment flow), so
    /// the API reads and records the windows there. `None` when the caller supplied history (the stream
    /// worker, a caller with its own feature pipeline) or cannot have any (the seed's minimal schema).
    pub store_key: Option<StoreKey>,
    /// The request brought precomputed `history` (only callers allowed to may: the API checks the
    /// caller's scope).
    pub has_history: bool,
    /// Day of week (Monday 0) and hour of the transaction, from `tx_datetime` or the seed schema's
    /// `day_of_week` and `hour`: the part of the week the drift window compares it with.
    pub day_and_hour: Option<(u8, u8)>,
    /// `tx_datetime`, when given: the event-time clock of the drift window.
    pub time: Option<EpochSeconds>,
    /// The request says the transaction is synthetic: its history is kept apart in the store.
    pub synthetic: bool,
}

/// The coordinates of a transaction in the online feature store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreKey {
    /// The card.
    pub customer_id: u64,
    /// The terminal.
    pub terminal_id: u64,
    /// Event time.
    pub time: EpochSeconds,
}

/// Parses and validates one `POST /predict` body (or a `transactions-input` event, which is one); the
/// error names the field to fix.
pub fn parse_single(bytes: &[u8]) -> Result<ValidTransaction, ValidationError> {
    validate(decode::<PredictRequest>(bytes)?, "")
}

/// Parses and validates one `POST /predict/batch` body; the first bad transaction fails the batch and is
/// named by its index (`transactions[3].amount`). `max_batch` is the caller's limit (the API's
/// MAX_BATCH_SIZE): a longer batch is refused before any transaction is checked.
pub fn parse_batch(
    bytes: &[u8],
    max_batch: usize,
) -> Result<Vec<ValidTransaction>, ValidationError> {
    let batch = decode::<BatchRequest>(bytes)?;
    if batch.transactions.len() > max_batch {
        return Err(ValidationError::BatchTooLarge {
            size: batch.transactions.len(),
            limit: max_batch,
        });
    }
    if batch.transactions.is_empty() {
        return Err(ValidationError::invalid(
            "transactions",
            "at least one transaction is required",
        ));
    }
    batch
        .transactions
        .into_iter()
        .enumerate()
        .map(|(i, req)| validate(req, &format!("transactions[{i}].")))
        .collect()
}

/// Plain serde on the happy path; a body that fails is decoded again with its path tracked, so every
/// error names its field. (Tracking paths costs an allocation per key, most of a request's parse time.)
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        // serde would read a struct from an array too; the API takes objects only. Malformed or
        // absurdly nested input is still a syntax error (400), valid JSON of the wrong shape a 422.
        decode_tracking_path::<serde_json::Value>(bytes)?;
        return Err(ValidationError::Invalid {
            message: "the request body must be a JSON object".into(),
            field: None,
        });
    }
    serde_json::from_slice(bytes).or_else(|_| decode_tracking_path(bytes))
}

fn decode_tracking_path<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ValidationError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = bounded(e.path().to_string());
        let inner = e.into_inner();
        let field = missing_field(&inner.to_string(), &path).or(if path == "." {
            None
        } else {
            Some(path)
        });
        let message = bounded(inner.to_string());
        match inner.classify() {
            Category::Data => ValidationError::Invalid { message, field },
            Category::Syntax | Category::Eof | Category::Io => {
                ValidationError::MalformedJson { message, field }
            }
        }
    })?;
    de.end().map_err(|e| ValidationError::MalformedJson {
        message: e.to_string(),
        field: None,
    })?;
    Ok(value)
}

/// Longest error message or field path returned: errors are echoed in responses, logs and dead letters,
/// and a value of a 1 MiB body must not be echoed whole.
pub const MAX_MESSAGE_CHARS: usize = 200;
/// Characters of a caller's value an error quotes.
const QUOTED_CHARS: usize = 32;

/// A caller's text as an error quotes it: debug-quoted, at most [`QUOTED_CHARS`] characters of it.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTED_CHARS) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &text[..cut], text.len()),
        None => format!("{text:?}"),
    }
}

/// A message of at most [`MAX_MESSAGE_CHARS`]: serde quotes the offending value (`"…"` or `` `…` ``),
/// which is what is shortened, so the message keeps saying what was expected.
fn bounded(message: String) -> String {
    if message.chars().count() <= MAX_MESSAGE_CHARS {
        return message;
    }
    let quoted = message.find(['"', '`']).and_then(|open| {
        let mark = message[open..].chars().next()?;
        let close = message.rfind(mark).filter(|&c| c > open)?;
        Some((open, close))
    });
    let shortened = match quoted {
        Some((open, close)) => {
            let inner = &message[open + 1..close];
            let keep = inner
                .char_indices()
                .nth(QUOTED_CHARS)
                .map_or(inner.len(), |(i, _)| i);
            format!(
                "{}{}… ({} bytes){}",
                &message[..=open],
                &inner[..keep],
                inner.len(),
                &message[close..]
            )
        }
        None => message,
    };
    match shortened.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((cut, _)) => format!("{}…", &shortened[..cut]),
        None => shortened,
    }
}

/// serde reports a missing field at its parent's path; name the field itself.
fn missing_field(message: &str, parent: &str) -> Option<String> {
    let name = message.strip_prefix("missing field `")?.split('`').next()?;
    Some(if parent == "." {
        name.to_owned()
    } else {
        format!("{parent}.{name}")
    })
}

/// `field` spells out the field's path, only called for an error (the happy path allocates nothing).
fn check_amount(value: f64, max: f64, field: impl Fn() -> String) -> Result<f64, ValidationError> {
    if !value.is_finite() || value < 0.0 {
        return Err(ValidationError::invalid(
            field(),
            format!("must be a finite number ≥ 0, got {value}"),
        ));
    }
    if value > max {
        return Err(ValidationError::invalid(
            field(),
            format!("must be at most {max}, got {value}"),
        ));
    }
    Ok(value)
}

/// The 1/7/30-day transaction counts, shared by the customer and the terminal sections: each at most
/// MAX_WINDOW_COUNT, the error naming the section's field.
fn window_counts(
    nb_tx: [u32; 3],
    prefix: &str,
    section: &str,
) -> Result<[u32; 3], ValidationError> {
    let names = ["nb_tx_1day", "nb_tx_7day", "nb_tx_30day"];
    for (n, name) in nb_tx.iter().zip(names) {
        if *n > MAX_WINDOW_COUNT {
            return Err(ValidationError::invalid(
                format!("{prefix}{section}{name}"),
                format!("must be at most {MAX_WINDOW_COUNT}"),
            ));
        }
    }
    Ok(nb_tx)
}

/// `prefix` + `section` is the path of `h`, e.g. `transactions[3].` + `history.customer.`.
fn customer_windows(
    h: &CustomerHistory,
    prefix: &str,
    section: &str,
) -> Result<CustomerWindows, ValidationError> {
    let nb_tx = window_counts([h.nb_tx_1day, h.nb_tx_7day, h.nb_tx_30day], prefix, section)?;
    Ok(CustomerWindows {
        nb_tx,
        avg_amount: [
            check_amount(h.avg_amount_1day, MAX_AMOUNT, || {
                format!("{prefix}{section}avg_amount_1day")
            })?,
            check_amount(h.avg_amount_7day, MAX_AMOUNT, || {
                format!("{prefix}{section}avg_amount_7day")
            })?,
            check_amount(h.avg_amount_30day, MAX_AMOUNT, || {
                format!("{prefix}{section}avg_amount_30day")
            })?,
        ],
    })
}

/// `prefix` + `section` is the path of `h`, as for [`customer_windows`].
fn terminal_windows(
    h: &TerminalHistory,
    prefix: &str,
    section: &str,
) -> Result<TerminalWindows, ValidationError> {
    let nb_tx = window_counts([h.nb_tx_1day, h.nb_tx_7day, h.nb_tx_30day], prefix, section)?;
    let risk = [
        (h.risk_1day, "risk_1day"),
        (h.risk_7day, "risk_7day"),
        (h.risk_30day, "risk_30day"),
    ];
    let mut out = [0.0; 3];
    for (slot, (r, name)) in out.iter_mut().zip(risk) {
        if !(0.0..=1.0).contains(&r) {
            return Err(ValidationError::invalid(
                format!("{prefix}{section}{name}"),
                format!("must be within [0, 1], got {r}"),
            ));
        }
        *slot = r;
    }
    Ok(TerminalWindows { nb_tx, risk: out })
}

/// Range and format checks; builds the feature row.
fn validate(req: PredictRequest, prefix: &str) -> Result<ValidTransaction, ValidationError> {
    let f = |name: &str| format!("{prefix}{name}");
    if let TransactionId::Text(id) = &req.transaction_id
        && (id.trim().is_empty() || id.len() > MAX_ID_LEN)
    {
        return Err(ValidationError::invalid(
            f("transaction_id"),
            format!("must be 1–{MAX_ID_LEN} characters"),
        ));
    }
    let amount = check_amount(req.amount, MAX_AMOUNT, || f("amount"))?;
    // Checked even when tx_datetime makes them redundant: a wrong value is a client bug to report.
    if let Some(h) = req.hour.filter(|&h| h > 23) {
        return Err(ValidationError::invalid(
            f("hour"),
            format!("must be 0–23, got {h}"),
        ));
    }
    if let Some(d) = req.day_of_week.filter(|&d| d > 6) {
        return Err(ValidationError::invalid(
            f("day_of_week"),
            format!("must be 0 (Monday)–6 (Sunday), got {d}"),
        ));
    }
    let time = match &req.tx_datetime {
        Some(text) => Some(parse_datetime(text).ok_or_else(|| {
            ValidationError::invalid(
                f("tx_datetime"),
                format!("expected YYYY-MM-DD HH:MM:SS, got {}", quote(text)),
            )
        })?),
        None => None,
    };
    let day_and_hour = match time {
        Some(t) => Some((day_of_week(t), hour_of_day(t))),
        None => req.day_of_week.zip(req.hour),
    };
    let (during_weekend, during_night) = match time {
        Some(t) => (
            Some(is_weekend_day(day_of_week(t))),
            Some(is_night_hour(hour_of_day(t))),
        ),
        None => (
            req.day_of_week.map(is_weekend_day),
            req.hour.map(is_night_hour),
        ),
    };
    let (merchant_category, unknown_merchant_category) = match req.merchant_category.as_deref() {
        None => (None, false),
        Some(name)
            if name.trim().is_empty()
                || name.chars().count() > MAX_CATEGORY_LEN
                || name.chars().any(char::is_control) =>
        {
            return Err(ValidationError::invalid(
                f("merchant_category"),
                format!("must be 1–{MAX_CATEGORY_LEN} printable characters"),
            ));
        }
        // A category the model has never seen is a merchant, not an error: scored as unknown.
        Some(name) => match name.parse::<MerchantCategory>() {
            Ok(c) => (Some(c), false),
            Err(_) => (None, true),
        },
    };
    if let Some(age) = req.user_age.filter(|a| !(0.0..=150.0).contains(a)) {
        return Err(ValidationError::invalid(
            f("user_age"),
            format!("must be within [0, 150], got {age}"),
        ));
    }
    if let Some(b) = req
        .account_balance
        .filter(|b| !b.is_finite() || b.abs() > MAX_BALANCE)
    {
        return Err(ValidationError::invalid(
            f("account_balance"),
            format!("must be finite and at most {MAX_BALANCE} in magnitude, got {b}"),
        ));
    }
    let store_key = match (req.customer_id, req.terminal_id, time, &req.history) {
        (Some(customer_id), Some(terminal_id), Some(time), None) => Some(StoreKey {
            customer_id,
            terminal_id,
            time,
        }),
        _ => None,
    };
    let has_history = req.history.is_some();
    let synthetic = req.synthetic;
    let history = req.history.unwrap_or_default();
    let customer = match &history.customer {
        Some(h) => customer_windows(h, prefix, "history.customer.")?,
        None => CustomerWindows::first_transaction(amount),
    };
    let terminal = match &history.terminal {
        Some(h) => terminal_windows(h, prefix, "history.terminal.")?,
        None => TerminalWindows::default(),
    };
    Ok(ValidTransaction {
        id: req.transaction_id,
        row: FeatureRow {
            amount,
            during_weekend,
            during_night,
            customer,
            terminal,
            merchant_category,
            user_age: req.user_age,
            account_balance: req.account_balance,
        },
        store_key,
        has_history,
        unknown_merchant_category,
        day_and_hour,
        time,
        synthetic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_quotes_a_short_prefix_of_a_huge_value() {
        let huge = "x".repeat(1 << 20);
        for (body, quotes_it) in [
            (
                format!(r#"{{"transaction_id": 1, "amount": 1, "tx_datetime": "{huge}"}}"#),
                true,
            ),
            (
                format!(r#"{{"transaction_id": 1, "amount": "{huge}"}}"#),
                true,
            ),
            (
                format!(r#"{{"transaction_id": "{huge}", "amount": 1}}"#),
                false,
            ),
            (
                format!(r#"{{"transaction_id": 1, "amount": 1, "merchant_category": ["{huge}"]}}"#),
                false,
            ),
            (
                format!(r#"{{"transaction_id": 1, "amount": 1, "{huge}": 1, "x": }}"#),
                false,
            ),
        ] {
            let e = parse_single(body.as_bytes()).unwrap_err();
            let text = e.to_string();
            assert!(
                text.chars().count() <= MAX_MESSAGE_CHARS + 1,
                "{}",
                text.len()
            );
            assert!(
                e.field()
                    .is_none_or(|f| f.chars().count() <= MAX_MESSAGE_CHARS + 1)
            );
            if quotes_it {
                assert!(
                    text.contains("xxxx") && text.contains("1048576 bytes"),
                    "a prefix is quoted: {text}"
                );
            }
        }
        let e = parse_single(format!(r#"{{"transaction_id": 1, "amount": "{huge}"}}"#).as_bytes())
            .unwrap_err();
        assert!(e.to_string().contains("expected"), "{e}");
    }

    fn err(body: &str) -> ValidationError {
        parse_single(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn accepts_the_minimal_and_the_full_request() {
        let v = parse_single(br#"{"transaction_id": 7, "amount": 12.5}"#).unwrap();
        assert_eq!(v.id, TransactionId::Number(7));
        assert_eq!(v.row.customer, CustomerWindows::first_transaction(12.5));
        let v = parse_single(
            br#"{"transaction_id": "a", "amount": 1, "tx_datetime": "2018-04-01 03:00:00", "merchant_category": "Travel",
                "user_age": 40, "account_balance": -5, "history": {"terminal": {"nb_tx_1day": 2, "risk_1day": 0.5,
                "nb_tx_7day": 4, "risk_7day": 0.25, "nb_tx_30day": 8, "risk_30day": 0.125}}}"#,
        )
        .unwrap();
        assert_eq!(
            (v.row.during_weekend, v.row.during_night),
            (Some(true), Some(true))
        );
        assert_eq!(v.row.merchant_category, Some(MerchantCategory::Travel));
        assert_eq!(v.row.terminal.risk, [0.5, 0.25, 0.125]);
    }

    #[test]
    fn an_id_of_the_wrong_type_says_what_an_id_is() {
        let e = err(r#"{"transaction_id": 1.5, "amount": 1}"#);
        assert!(
            e.to_string()
                .contains("expected a string or a non-negative integer"),
            "{e}"
        );
    }

    #[test]
    fn syntax_errors_are_malformed_and_wrong_values_invalid() {
        for body in [
            "",
            "{",
            "[1, ",
            r#"{"transaction_id":1,"amount":1} trailing"#,
        ] {
            assert!(
                matches!(err(body), ValidationError::MalformedJson { .. }),
                "{body:?}"
            );
        }
        let e = err(r#"{"transaction_id": 1, "amount": -1}"#);
        assert!(matches!(e, ValidationError::Invalid { .. }), "{e:?}");
        assert_eq!(e.field(), Some("amount"));
        assert_eq!(e.to_string(), "must be a finite number ≥ 0, got -1");
        assert!(err("[1, 2]").to_string().contains("must be a JSON object"));
    }

    #[test]
    fn window_counts_are_bounded_and_named_by_section() {
        let body = format!(
            r#"{{"transaction_id": 1, "amount": 1, "history": {{"customer": {{"nb_tx_1day": 1, "avg_amount_1day": 1,
                "nb_tx_7day": {}, "avg_amount_7day": 1, "nb_tx_30day": 1, "avg_amount_30day": 1}}}}}}"#,
            MAX_WINDOW_COUNT + 1
        );
        let e = err(&body);
        assert_eq!(e.field(), Some("history.customer.nb_tx_7day"));
        assert_eq!(e.to_string(), format!("must be at most {MAX_WINDOW_COUNT}"));
    }

    #[test]
    fn batch_errors_carry_the_index_and_limits_apply() {
        let e = parse_batch(br#"{"transactions": [{"transaction_id": 1, "amount": 1}, {"transaction_id": 2, "amount": -1}]}"#, 10).unwrap_err();
        assert_eq!(e.field(), Some("transactions[1].amount"));
        let e = parse_batch(br#"{"transactions": [{"transaction_id": 1, "amount": 1}, {"transaction_id": 2, "amount": 1}]}"#, 1).unwrap_err();
        assert_eq!(e, ValidationError::BatchTooLarge { size: 2, limit: 1 });
        assert_eq!(e.field(), Some("transactions"));
        let e = parse_batch(br#"{"transactions": []}"#, 1).unwrap_err();
        assert_eq!(e.field(), Some("transactions"));
    }
}
