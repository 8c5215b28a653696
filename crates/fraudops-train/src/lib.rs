//! Training: the handbook's time-based split and metrics, the gradient-boosting fit, and the pipeline
//! that turns a transaction file into a sealed model artifact.
//!
//! Architecture invariant: the only crate that links the boosting library; it hands serving an
//! [`fraudops_model::artifact::EnsembleSpec`], never library types.

pub mod booster;
pub mod gate;
pub mod metrics;
pub mod pipeline;
pub mod split;

pub use booster::BoosterParams;
pub use gate::{Champion, Decision, GateMetric, Reason, decide};
pub use pipeline::{
    Evaluation, Prepared, Stage, TrainConfig, TrainError, evaluate, prepare, train,
};
pub use split::{SplitConfig, time_split};
