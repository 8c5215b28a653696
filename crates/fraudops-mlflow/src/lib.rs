//! A typed async client for the MLflow REST API: experiment tracking, the model registry and the
//! tracking server's artifact proxy.
//!
//! Why it exists: the trainer logs runs and registers model versions, and the API server follows
//! `models:/<name>@champion` to hot-reload new versions. Both talk to MLflow over plain HTTP from
//! Rust; nothing here needs Python or the MLflow SDK.
//!
//! Entry point: [`MlflowClient`]. Every call goes through one request helper that retries transport
//! errors, 5xx and 429 with exponential backoff and maps MLflow's error JSON
//! (`{"error_code": ..., "message": ...}`) to [`MlflowError`] in one place.
//!
//! MLflow 3 logged models ([`LoggedModel`]) and their `MLmodel` description ([`MlModel`]: flavors
//! and signature) are what make a registered version a model MLflow's own clients can describe
//! (`mlflow.models.get_model_info`), not just a folder of files.
//!
//! Artifacts are read and written only through the tracking server's proxy
//! (`/api/2.0/mlflow-artifacts/artifacts/...`), so the server must serve artifacts (the default;
//! `--serve-artifacts`). Direct object-store access (`s3://`, `gs://`, ...) is deliberately absent.

mod artifact;
mod client;
mod error;
mod mlmodel;
#[cfg(feature = "testing")]
pub mod testing;
mod uri;
mod wire;

pub use client::{
    LoggedModel, LoggedModelStatus, MlflowClient, ModelVersion, NewLoggedModel, RunInfo, RunStatus,
};
pub use error::MlflowError;
pub use mlmodel::{ColSpec, ColumnType, MLMODEL_FILE, MlModel, Signature};
pub use uri::{ModelSelector, ModelUri};
