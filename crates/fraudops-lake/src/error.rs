//! What can go wrong in the lake, typed: the archive decides from the variant whether to retry (storage)
//! or give up (a corrupt ledger, a file that is not ours).

/// Why a lake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The lake's address could not be understood.
    #[error("lake location {location:?}: {reason}")]
    Location {
        /// What was given.
        location: String,
        /// Why it was refused.
        reason: String,
    },
    /// The object store refused or failed a call (network, credentials, disk): retried by the archive,
    /// which commits nothing meanwhile.
    #[error("object store: {0}")]
    Store(#[from] object_store::Error),
    /// A local file could not be made durable (fsync).
    #[error("making {path} durable: {source}")]
    Durable {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Arrow refused a batch (a bug: the schemas are ours).
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// Parquet could not encode or decode a file.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// A file of the lake does not have the table's schema.
    #[error("{path}: {reason}")]
    Schema {
        /// The file.
        path: String,
        /// What does not match.
        reason: String,
    },
    /// The files of a folder kept vanishing between listing and reading (compactions in a row).
    #[error("{prefix}: files kept vanishing while being read ({attempts} listings); retry later")]
    Unsettled {
        /// The folder.
        prefix: String,
        /// Listings tried.
        attempts: usize,
    },
    /// A partition's ledger could not be read or written as JSON.
    #[error("ledger {path}: {source}")]
    Ledger {
        /// The ledger object.
        path: String,
        /// The JSON error.
        source: serde_json::Error,
    },
}
