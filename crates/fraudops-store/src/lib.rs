//! The online feature store: the customer and terminal windows of SPEC §3.2, shared by every scorer
//! (API replicas, stream workers, the label consumer) in one Redis.
//!
//! Why a store: windows kept in one process's memory are exact only for the events that process sees; a
//! direct `POST /predict`, N API replicas or N stream workers each see a part. Here every scorer records
//! each transaction and reads its windows in one atomic step, and labels arrive on their own (a
//! chargeback, `fraud-labels`), so the features are the training definition whoever scores.
//!
//! * `keys` — the Redis key layout (one place);
//! * `scripts` — the two Lua scripts (`observe.lua`, `label.lua`) and the arguments they take from
//!   `fraudops_features::definition`, which stays the only place a window is defined;
//! * `client` — [`FeatureStore`]: the deadline, a breaker per operation and the typed results;
//! * `breaker` — the breaker: opens on a failure rate (or failures in a row), not on one call;
//! * `recorder` — [`ScoreRecorder`]: scores written in batches off the response path, read back by the
//!   label script when a label arrives (online evaluation);
//! * `evaluation` — the label consumer's joined samples, one hash per event-time day, so its evaluation
//!   window survives a restart.
//!
//! Architecture invariant: one script call per batch of events is the only way state changes; a script
//! runs alone in Redis, so no reader sees half an update, and a restart loses at most the updates the
//! append-only file had not yet written (Redis `appendfsync everysec`: one second), never a window's
//! consistency.

mod breaker;
mod client;
mod config;
mod connection;
mod error;
mod evaluation;
pub mod keys;
mod recorder;
mod scripts;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{
    DEFAULT_MAX_CLOCK_SKEW, FeatureStore, Label, Observation, Observed, Recorded, ScoreRecord,
    StoredScore, Windows,
};
pub use config::{StoreArgs, parse_duration};
pub use connection::Credentials;
pub use error::StoreError;
pub use evaluation::{EVALUATION_TTL_SECONDS, EvaluatedLabel};
pub use keys::Namespace;
pub use recorder::ScoreRecorder;
