//! What can go wrong talking to the store.

/// A store call that did not give an answer; callers degrade (the API scores without history) or retry
/// (the label consumer does not commit).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The call did not finish within the deadline.
    #[error("the feature store did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Recent calls of this operation failed (at a high rate, or several in a row); the store is not
    /// asked again until the breaker's pause is over.
    #[error("the feature store is failing; not asking again for {0:?}")]
    Unavailable(std::time::Duration),
    /// Redis refused the call or the connection failed.
    #[error("feature store: {0}")]
    Redis(#[from] redis::RedisError),
    /// The script answered something this build does not understand (a different script version).
    #[error("feature store answered {got} values, expected {expected}")]
    Protocol {
        /// Values expected.
        expected: usize,
        /// Values received.
        got: usize,
    },
    /// The URL is not a Redis URL.
    #[error("feature store URL {url:?}: {source}")]
    Url {
        /// The URL given.
        url: String,
        /// Why it was refused.
        source: redis::RedisError,
    },
    /// The password file named by `FEATURE_STORE_PASSWORD_FILE` could not be read.
    #[error("feature store password file {path:?}: {source}")]
    PasswordFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
}
