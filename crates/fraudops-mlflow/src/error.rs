//! The one error type of the crate.

/// Everything that can go wrong talking to MLflow, typed so callers can tell "the server said no"
/// ([`MlflowError::Http`], [`MlflowError::NotFound`]) from "we could not reach it"
/// ([`MlflowError::Transport`], [`MlflowError::Timeout`]) from "the caller asked for nonsense"
/// ([`MlflowError::InvalidUri`]).
#[derive(Debug, thiserror::Error)]
pub enum MlflowError {
    /// The server answered with a non-success status that is not a "does not exist" answer.
    #[error("MLflow {endpoint} returned HTTP {status}: {body}")]
    Http {
        /// HTTP status code, e.g. 400 or 500.
        status: u16,
        /// `METHOD /path` of the request, for the log line.
        endpoint: String,
        /// MLflow's `error_code` (e.g. `INVALID_PARAMETER_VALUE`) when the body was MLflow error
        /// JSON, so callers can branch on it without parsing `body`.
        error_code: Option<String>,
        /// The response body (MLflow's `message` when it sent one), truncated to a few hundred bytes.
        body: String,
    },
    /// The request never got an answer (connection refused, reset, DNS, TLS), after all retries.
    #[error("MLflow transport error: {0}")]
    Transport(#[from] reqwest::Error),
    /// The thing asked for does not exist: a registered model, version, alias, run or artifact.
    #[error("not found in MLflow: {what}")]
    NotFound {
        /// What was missing, in MLflow's words when it gave any.
        what: String,
    },
    /// A `models:/` URI, tracking URI, artifact source or artifact path that this client cannot use.
    #[error("invalid URI: {0}")]
    InvalidUri(String),
    /// The server answered 2xx but with a body this client does not understand.
    #[error("unexpected MLflow response: {0}")]
    InvalidResponse(String),
    /// A request body or document this client builds (e.g. an `MLmodel` file) could not be encoded.
    #[error("cannot encode {0}")]
    Encoding(String),
    /// A request timed out (after all retries) or a bounded wait (model version to become READY)
    /// ran out.
    #[error("timed out waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: String,
    },
}
