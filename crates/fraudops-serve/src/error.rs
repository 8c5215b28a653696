//! Every way a request can fail, each mapped to one status and one JSON body ([`ErrorBody`]) here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::schema::ErrorBody;

/// A failed request. Rejections (overload, rate limit, size) and validation failures are the client's
/// to fix or retry; none of them is a 5xx caused by input.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    /// The body is not JSON at all (syntax error, truncated).
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// Parser message.
        message: String,
        /// Where parsing stopped, if known.
        field: Option<String>,
    },
    /// JSON of the wrong shape or with values out of range.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// The offending field.
        field: Option<String>,
    },
    /// A content type other than JSON.
    #[error("unsupported content type {0:?}; send application/json")]
    UnsupportedMediaType(String),
    /// The body exceeds MAX_BODY_BYTES.
    #[error("request body exceeds {limit} bytes")]
    BodyTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The batch exceeds MAX_BATCH_SIZE.
    #[error("batch of {size} transactions exceeds the limit of {limit}")]
    BatchTooLarge {
        /// Transactions sent.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Too many requests in flight: shed at once rather than queued.
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
}

/// The category of an error for metrics: which counters a response increments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ml_model_errors_total{type="validation"}`.
    Validation,
    /// `http_requests_rejected_total{reason}` with this reason.
    Rejected(&'static str),
    /// `ml_model_errors_total{type="system"}`.
    System,
}

impl ApiError {
    /// An [`ApiError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MalformedJson { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTooLarge { .. } | Self::BatchTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Overloaded | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// How metrics count it.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::MalformedJson { .. } | Self::Invalid { .. } | Self::UnsupportedMediaType(_) => {
                ErrorKind::Validation
            }
            Self::BodyTooLarge { .. } => ErrorKind::Rejected("body_too_large"),
            Self::BatchTooLarge { .. } => ErrorKind::Rejected("batch_too_large"),
            Self::Overloaded => ErrorKind::Rejected("overload"),
            Self::RateLimited { .. } => ErrorKind::Rejected("rate_limit"),
            Self::NotReady => ErrorKind::System,
        }
    }

    fn field(&self) -> Option<String> {
        match self {
            Self::MalformedJson { field, .. } | Self::Invalid { field, .. } => field.clone(),
            Self::BatchTooLarge { .. } => Some("transactions".into()),
            _ => None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.to_string(),
            field: self.field(),
        };
        let mut response = (self.status(), Json(body)).into_response();
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
        // The metrics middleware reads this to count the error by kind.
        response.extensions_mut().insert(self.kind());
        response
    }
}
