//! Why a body or an event was refused: the one error type of the parse, so the API's 4xx body and the
//! stream worker's dead-letter reason are the same words.

/// A body that did not become a validated transaction. It names the field (a path such as
/// `transactions[3].amount`) and says what is wrong in words a caller can act on; it knows no HTTP
/// status: the API maps each variant to one (`fraudops-serve`'s `ApiError`), the worker writes the text
/// into its dead letter.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ValidationError {
    /// The body is not JSON at all (syntax error, truncated): nothing in it could be checked.
    #[error("malformed JSON: {message}")]
    MalformedJson {
        /// The parser's message.
        message: String,
        /// Where parsing stopped, if known.
        field: Option<String>,
    },
    /// JSON of the wrong shape, or a value out of range: the caller must fix that field.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// The offending field, when one is to blame.
        field: Option<String>,
    },
    /// A batch longer than the caller's limit: refused as a whole, before any transaction is checked.
    #[error("batch of {size} transactions exceeds the limit of {limit}")]
    BatchTooLarge {
        /// Transactions sent.
        size: usize,
        /// The limit.
        limit: usize,
    },
}

impl ValidationError {
    /// A [`ValidationError::Invalid`] naming `field`: the common case, so every rule reads in one line.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            message: message.into(),
            field: Some(field.into()),
        }
    }

    /// The field to blame, as the API's error body and the dead letter name it (`transactions` for a
    /// batch that is too long).
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::MalformedJson { field, .. } | Self::Invalid { field, .. } => field.as_deref(),
            Self::BatchTooLarge { .. } => Some("transactions"),
        }
    }
}
