//! Every way a request can fail, each mapped to one status and one JSON body ([`ErrorBody`]) here.
//!
//! Input that fails validation arrives as a [`ValidationError`] from `fraudops-wire` (the parse the
//! stream worker shares); this module decides its status and how metrics count it, and its text is the
//! body's `error` unchanged.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fraudops_wire::{ErrorBody, ValidationError};

use crate::auth::{AuthFailure, Scope};
use crate::telemetry::{ErrorKind, RejectReason};

/// A failed request. Rejections (overload, rate limit, size) and validation failures are the client's
/// to fix or retry; none of them is a 5xx caused by input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not a valid transaction (or batch): malformed JSON (400), a wrong shape or a value out
    /// of range (422), a batch over MAX_BATCH_SIZE (413). Its text is the error body's, word for word.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A content type other than JSON.
    #[error("unsupported content type {0:?}; send application/json")]
    UnsupportedMediaType(String),
    /// The body exceeds MAX_BODY_BYTES.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// Shed at once rather than queued: the request waited longer than MAX_QUEUE_WAIT_MS for the CPU, or
    /// MAX_IN_FLIGHT requests are already in flight.
    #[error("server is at capacity; retry shortly")]
    Overloaded,
    /// This client exceeded its rate.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the client's bucket has a token again.
        retry_after_secs: u64,
    },
    /// No model is loaded yet (registry unreachable at start-up).
    #[error("no model is loaded yet")]
    NotReady,
    /// The server requires an API key and the request had none, or one nobody holds.
    #[error("{}", match .0 {
        AuthFailure::MissingKey => "an API key is required: send Authorization: Bearer <key>",
        AuthFailure::InvalidKey => "the API key is not valid",
    })]
    Unauthenticated(AuthFailure),
    /// The caller's key lacks the scope this request needs.
    #[error("this API key may not {}: it lacks the scope `{}`", scope_action(*.scope), .scope.name())]
    Forbidden {
        /// The scope needed.
        scope: Scope,
        /// The field that needs it.
        field: String,
    },
    /// The body did not arrive within BODY_READ_TIMEOUT_SECONDS.
    #[error("the request body did not arrive within {seconds} s")]
    BodyTimeout {
        /// The limit.
        seconds: u64,
    },
}

/// What a scope allows, in an error's words.
fn scope_action(scope: Scope) -> &'static str {
    match scope {
        Scope::Score => "score",
        Scope::Record => "record transactions",
        Scope::History => "send history",
    }
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(ValidationError::MalformedJson { .. }) => StatusCode::BAD_REQUEST,
            Self::Validation(ValidationError::Invalid { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } | Self::Validation(ValidationError::BatchTooLarge { .. }) => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            Self::Overloaded | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// How metrics count it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Validation(
                ValidationError::MalformedJson { .. } | ValidationError::Invalid { .. },
            )
            | Self::UnsupportedMediaType(_) => ErrorKind::Validation,
            Self::BodyTooLarge { .. } => ErrorKind::Rejected(RejectReason::BodyTooLarge),
            Self::Validation(ValidationError::BatchTooLarge { .. }) => {
                ErrorKind::Rejected(RejectReason::BatchTooLarge)
            }
            Self::Overloaded => ErrorKind::Rejected(RejectReason::Overload),
            Self::RateLimited { .. } => ErrorKind::Rejected(RejectReason::RateLimit),
            Self::NotReady => ErrorKind::System,
            Self::Unauthenticated(_) => ErrorKind::Rejected(RejectReason::Unauthenticated),
            Self::Forbidden { .. } => ErrorKind::Rejected(RejectReason::Forbidden),
            Self::BodyTimeout { .. } => ErrorKind::Rejected(RejectReason::BodyTimeout),
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::Validation(e) => e.field().map(str::to_owned),
            Self::Forbidden { field, .. } => Some(field.clone()),
            _ => None,
        }
    }
}

/// An error body as JSON bytes (two strings: serializing cannot fail).
fn json_body(body: &ErrorBody) -> Bytes {
    serde_json::to_vec(body).map_or_else(|_| Bytes::new(), Bytes::from)
}

/// The body of every shed request, serialized once: shedding must cost far less than scoring, and it
/// happens exactly when the CPU is short.
fn overloaded_body() -> Bytes {
    static BODY: LazyLock<Bytes> = LazyLock::new(|| {
        json_body(&ErrorBody {
            error: ApiError::Overloaded.to_string(),
            field: None,
        })
    });
    BODY.clone()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = match self {
            Self::Overloaded => overloaded_body(),
            _ => json_body(&ErrorBody {
                error: self.to_string(),
                field: self.field(),
            }),
        };
        let json = [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )];
        let mut response = (self.status(), json, body).into_response();
        let retry_after = match &self {
            Self::Overloaded | Self::NotReady => Some(1),
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, Self::Unauthenticated(_)) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::BodyTimeout { .. }) {
            // The rest of the body may still be on its way: the connection cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // The metrics middleware reads this to count the error by kind.
        response.extensions_mut().insert(self.kind());
        response
    }
}

#[cfg(test)]
mod tests {
    //! The wire crate's parse as the API answers it: the status and field of each refusal.

    use fraudops_wire::{parse_batch, parse_single};

    use super::*;

    fn err(body: &str) -> ApiError {
        ApiError::from(parse_single(body.as_bytes()).unwrap_err())
    }

    fn field_of(e: &ApiError) -> Option<String> {
        match e {
            ApiError::Validation(
                ValidationError::Invalid { field, .. }
                | ValidationError::MalformedJson { field, .. },
            ) => field.clone(),
            _ => None,
        }
    }

    #[test]
    fn every_error_names_its_field() {
        let cases = [
            (r#"{"transaction_id": 1}"#, "amount", 422),
            (r#"{"amount": 1}"#, "transaction_id", 422),
            (r#"{"transaction_id": 1, "amount": "12"}"#, "amount", 422),
            (r#"{"transaction_id": 1, "amount": -1}"#, "amount", 422),
            (r#"{"transaction_id": 1, "amount": 1e12}"#, "amount", 422),
            (
                r#"{"transaction_id": 1, "amount": 1, "hour": 24}"#,
                "hour",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "day_of_week": 7}"#,
                "day_of_week",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "tx_datetime": "2018-13-01 00:00:00"}"#,
                "tx_datetime",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "merchant_category": ""}"#,
                "merchant_category",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "user_age": 200}"#,
                "user_age",
                422,
            ),
            (
                r#"{"transaction_id": "", "amount": 1}"#,
                "transaction_id",
                422,
            ),
            (
                r#"{"transaction_id": -4, "amount": 1}"#,
                "transaction_id",
                422,
            ),
            (
                r#"{"transaction_id": 1.5, "amount": 1}"#,
                "transaction_id",
                422,
            ),
            (
                r#"{"transaction_id": null, "amount": 1}"#,
                "transaction_id",
                422,
            ),
            (
                r#"{"transaction_id": [1], "amount": 1}"#,
                "transaction_id",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "customer_id": -3}"#,
                "customer_id",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "history": {"terminal": {"nb_tx_1day": 1, "risk_1day": 2,
                "nb_tx_7day": 1, "risk_7day": 0, "nb_tx_30day": 1, "risk_30day": 0}}}"#,
                "history.terminal.risk_1day",
                422,
            ),
            (
                r#"{"transaction_id": 1, "amount": 1, "history": {"customer": {"nb_tx_1day": 1}}}"#,
                "history.customer.avg_amount_1day",
                422,
            ),
        ];
        for (body, field, status) in cases {
            let e = err(body);
            assert_eq!(e.status().as_u16(), status, "{body}: {e}");
            assert_eq!(field_of(&e).as_deref(), Some(field), "{body}: {e}");
        }
    }

    #[test]
    fn bodies_that_are_not_objects_are_refused_whatever_serde_would_accept() {
        // A struct can be read from an array by position; the API documents objects only.
        let e = err("[1, 2]");
        assert_eq!(e.status().as_u16(), 422, "{e}");
        assert!(e.to_string().contains("must be a JSON object"), "{e}");
        assert_eq!(err("42").status().as_u16(), 422);
        assert_eq!(err("[1, ").status().as_u16(), 400, "malformed stays a 400");
    }

    #[test]
    fn malformed_json_is_a_400() {
        for body in [
            "",
            "{",
            "nope",
            r#"{"transaction_id": 1, "amount": NaN}"#,
            r#"{"transaction_id":1,"amount":1} trailing"#,
        ] {
            assert_eq!(err(body).status().as_u16(), 400, "{body:?}");
        }
    }

    #[test]
    fn batch_errors_carry_the_index_and_limits_apply() {
        let batch = |body: &[u8], max| ApiError::from(parse_batch(body, max).unwrap_err());
        let e = batch(br#"{"transactions": [{"transaction_id": 1, "amount": 1}, {"transaction_id": 2, "amount": -1}]}"#, 10);
        assert_eq!(field_of(&e).as_deref(), Some("transactions[1].amount"));
        let e = batch(br#"{"transactions": [{"transaction_id": 1, "amount": 1}, {"transaction_id": 2, "amount": 1}]}"#, 1);
        assert_eq!(e.status().as_u16(), 413);
        assert_eq!(batch(br#"{"transactions": []}"#, 1).status().as_u16(), 422);
    }

    #[test]
    fn the_body_says_the_wire_error_word_for_word() {
        // The stream worker's dead letters quote the wire error; the API's body must say the same.
        for body in ["{", r#"{"transaction_id": 1, "amount": -1}"#, "[1, 2]"] {
            let wire = parse_single(body.as_bytes()).unwrap_err();
            let api = ApiError::from(wire.clone());
            assert_eq!(api.to_string(), wire.to_string(), "{body}");
            assert_eq!(api.field().as_deref(), wire.field(), "{body}");
        }
        let wire = parse_batch(
            br#"{"transactions": [{"transaction_id": 1, "amount": 1}]}"#,
            0,
        )
        .unwrap_err();
        let api = ApiError::from(wire.clone());
        assert_eq!(
            api.to_string(),
            "batch of 1 transactions exceeds the limit of 0"
        );
        assert_eq!(api.field().as_deref(), Some("transactions"));
        assert_eq!(api.kind(), ErrorKind::Rejected(RejectReason::BatchTooLarge));
    }
}
