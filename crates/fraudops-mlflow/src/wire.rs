//! MLflow's JSON shapes, as far as this client reads them. Unknown fields are ignored, so newer
//! servers that add fields keep working.

use serde::Deserialize;

/// MLflow's error body: `{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "..."}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub error_code: Option<String>,
    pub message: Option<String>,
}

/// `GET experiments/get-by-name`.
#[derive(Debug, Deserialize)]
pub(crate) struct GetExperimentResponse {
    pub experiment: Experiment,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Experiment {
    pub experiment_id: String,
}

/// `POST experiments/create`.
#[derive(Debug, Deserialize)]
pub(crate) struct CreateExperimentResponse {
    pub experiment_id: String,
}

/// `POST runs/create` and `GET runs/get`.
#[derive(Debug, Deserialize)]
pub(crate) struct RunResponse {
    pub run: Run,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Run {
    pub info: RunInfo,
}

/// Servers before 1.x sent only `run_uuid`; current ones send both (so no serde alias, which would
/// reject the duplicate).
#[derive(Debug, Deserialize)]
pub(crate) struct RunInfo {
    pub run_id: Option<String>,
    pub run_uuid: Option<String>,
    pub experiment_id: String,
    pub artifact_uri: String,
}

/// `model-versions/create`, `model-versions/get`, `GET registered-models/alias`.
#[derive(Debug, Deserialize)]
pub(crate) struct ModelVersionResponse {
    pub model_version: ModelVersion,
}

/// Versions are strings on the wire (`"version": "3"`).
#[derive(Debug, Deserialize)]
pub(crate) struct ModelVersion {
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub run_id: Option<String>,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub status_message: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// MLflow 3: the logged model the version was registered from.
    #[serde(default)]
    pub model_id: Option<String>,
}

/// `POST logged-models`, `GET`/`PATCH logged-models/{id}` (MLflow 3).
#[derive(Debug, Deserialize)]
pub(crate) struct LoggedModelResponse {
    pub model: LoggedModel,
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoggedModel {
    pub info: LoggedModelInfo,
}

/// Proto enums arrive as their names (`LOGGED_MODEL_READY`).
#[derive(Debug, Deserialize)]
pub(crate) struct LoggedModelInfo {
    pub model_id: String,
    pub experiment_id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub artifact_uri: String,
    #[serde(default)]
    pub source_run_id: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}
