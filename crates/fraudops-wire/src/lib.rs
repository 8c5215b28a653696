//! The wire contract of fraudops: the JSON the scoring API speaks (SPEC §4), the one parse that turns a
//! body into a validated transaction, its error, and the JSON on the Kafka topics (SPEC §5).
//!
//! Why a crate of its own: the API (`fraudops-serve`) answers with these types and the stream worker and
//! attack (`fraudops-stream`) send and read them. With the contract here, the worker depends on the
//! contract instead of on the whole HTTP server, and a change to a field is one change that both sides,
//! and the OpenAPI document, see at once.
//!
//! * request and response bodies: [`PredictRequest`], [`PredictResponse`], [`BatchRequest`],
//!   [`BatchResponse`], [`ErrorBody`], [`HealthStatus`], [`ServiceInfo`] (with `utoipa::ToSchema`, so the
//!   API derives its OpenAPI document from them);
//! * validation: [`parse_single`] and [`parse_batch`] return [`ValidTransaction`]s or a
//!   [`ValidationError`] naming the field and the problem;
//! * Kafka: [`TransactionEvent`] (an API request, no label), [`LabelEvent`] (a confirmed outcome on
//!   `fraud-labels`, after the label delay), [`PredictionEvent`] (the API's response plus the event's
//!   coordinates), [`DeadLetter`].
//!
//! Architecture invariant: nothing here knows HTTP, Kafka clients or metrics. The API maps a
//! [`ValidationError`] to its status and body; the worker writes its text into a dead letter, so both say
//! the same words for the same input.

mod error;
mod event;
mod schema;
mod validation;

pub use error::ValidationError;
pub use event::{
    DeadLetter, LabelEvent, MAX_DEAD_LETTER_PAYLOAD, PredictionEvent, ScoredBy, TransactionEvent,
};
pub use schema::{
    BatchRequest, BatchResponse, CustomerHistory, ErrorBody, FeatureSource, HealthStatus, History,
    PredictRequest, PredictResponse, ServiceInfo, TerminalHistory, TransactionId,
};
pub use validation::{
    MAX_AMOUNT, MAX_BALANCE, MAX_CATEGORY_LEN, MAX_ID_LEN, MAX_WINDOW_COUNT, StoreKey,
    ValidTransaction, parse_batch, parse_single,
};
