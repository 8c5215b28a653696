//! The model's features (SPEC §3.2), defined once and computed two ways:
//!
//! * [`batch::compute`] — a whole transaction file at once, for training (sort, group, two pointers);
//! * [`online::OnlineFeatures`] — one event at a time, for the stream worker (state keyed by customer
//!   and terminal, event time, bounded memory).
//!
//! Both paths share [`definition`]: the window bounds, the exact (integer) window sums and the assembly of
//! a [`FeatureVector`]. A property test proves they give bit-identical vectors.
//!
//! Architecture invariant: this crate knows nothing about models, HTTP, Kafka or files.

pub mod batch;
pub mod definition;
pub mod online;

pub use batch::FeatureMatrix;
pub use definition::{
    CustomerWindows, FEATURE_NAMES, FeatureRow, FeatureVector, N_FEATURES, TerminalWindows,
};
pub use online::OnlineFeatures;
