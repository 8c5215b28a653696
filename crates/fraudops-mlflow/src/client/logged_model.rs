//! MLflow 3 logged models: a model as an entity of its own (id `m-...`, its own artifact root,
//! params, metrics, tags), linked to the run that produced it and registered by `models:/<id>`.
//!
//! Why: MLflow 3's clients describe a registered version through its logged model and the
//! `MLmodel` file in its artifacts (`mlflow.models.get_model_info("models:/NAME@ALIAS")` reads the
//! version's storage location, which for a logged model is the model's `artifact_uri`). The calls
//! and their order are the ones MLflow's own Python client makes in `Model.log`
//! (`mlflow/models/model.py`, `mlflow/store/tracking/rest_store.py`) and `register_model`
//! (`mlflow/tracking/_model_registry/fluent.py`):
//!
//! 1. `POST logged-models` (experiment, name, `source_run_id`, params, tags): status `PENDING`,
//!    the answer carries `artifact_uri` (`mlflow-artifacts:/<exp>/models/<id>/artifacts`);
//! 2. `POST runs/outputs`: the run lists the model among its outputs;
//! 3. `POST runs/log-batch` with `model_id` on each metric: recorded on the run and the model;
//! 4. `PUT` the artifacts (the caller's files and its `MLmodel`) through the artifact proxy;
//! 5. `PATCH logged-models/<id>` to `READY` (or `UPLOAD_FAILED` when step 4 failed);
//! 6. `POST model-versions/create` with `source: models:/<id>` and `model_id`; the server stores
//!    the model's `artifact_uri` as the version's storage location;
//! 7. `PATCH logged-models/<id>/tags` with `mlflow.modelVersions`, so the model lists its versions.

use reqwest::Method;
use serde::de::IgnoredAny;
use serde_json::{Value, json};

use super::{API, MlflowClient, Payload, key_values};
use crate::{MlflowError, ModelVersion, wire};

/// Params sent with `POST logged-models`; more go in further calls (MLflow's own batch size,
/// `MLFLOW_CREATE_LOGGED_MODEL_PARAMS_BATCH_SIZE`).
const PARAMS_PER_CALL: usize = 100;
/// The logged-model tag listing the registered versions made from it (`mlflow.utils.mlflow_tags`).
const MODEL_VERSIONS_TAG: &str = "mlflow.modelVersions";

/// An MLflow 3 logged model, as the tracking server reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedModel {
    /// The model's id, `m-` and 32 hex characters.
    pub model_id: String,
    /// Experiment it belongs to.
    pub experiment_id: String,
    /// Its (non-unique) name within the experiment.
    pub name: String,
    /// Root of its artifacts, e.g. `mlflow-artifacts:/1/models/<model_id>/artifacts`.
    pub artifact_uri: String,
    /// The run that produced it.
    pub source_run_id: Option<String>,
    /// Upload state; `None` when the server sent a status this client does not know.
    pub status: Option<LoggedModelStatus>,
}

impl LoggedModel {
    /// `models:/<model_id>`: how MLflow 3 names the model as a registry source.
    pub fn uri(&self) -> String {
        format!("models:/{}", self.model_id)
    }
}

/// Where a logged model's upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoggedModelStatus {
    /// Created; artifacts not (completely) uploaded yet.
    Pending,
    /// Every artifact is uploaded; the model can be loaded.
    Ready,
    /// The upload failed; the model must not be used.
    Failed,
}

impl LoggedModelStatus {
    fn as_str(self) -> &'static str {
        match self {
            LoggedModelStatus::Pending => "LOGGED_MODEL_PENDING",
            LoggedModelStatus::Ready => "LOGGED_MODEL_READY",
            LoggedModelStatus::Failed => "LOGGED_MODEL_UPLOAD_FAILED",
        }
    }

    fn parse(status: &str) -> Option<Self> {
        [Self::Pending, Self::Ready, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == status)
    }
}

/// What [`MlflowClient::create_logged_model`] records about a new model.
#[derive(Debug, Clone, Copy)]
pub struct NewLoggedModel<'a> {
    /// Experiment of the model (that of its run).
    pub experiment_id: &'a str,
    /// Name shown in the experiment's model list; MLflow refuses `/ : . % " '` in it.
    pub name: &'a str,
    /// The run that produced the model: the link from the model to its run.
    pub source_run_id: Option<&'a str>,
    /// A free-form type to search and compare models by.
    pub model_type: Option<&'a str>,
    /// Parameters (e.g. the run's hyper-parameters).
    pub params: &'a [(&'a str, String)],
    /// Tags.
    pub tags: &'a [(&'a str, &'a str)],
}

impl MlflowClient {
    /// Creates a logged model in status `PENDING` (`POST logged-models`, then
    /// `POST logged-models/<id>/params` for params beyond the first 100).
    pub async fn create_logged_model(
        &self,
        new: &NewLoggedModel<'_>,
    ) -> Result<LoggedModel, MlflowError> {
        let params = |chunk: &[(&str, String)]| {
            chunk
                .iter()
                .map(|(key, value)| json!({ "key": key, "value": value }))
                .collect::<Vec<_>>()
        };
        let (first, rest) = new.params.split_at(new.params.len().min(PARAMS_PER_CALL));
        let mut body = json!({
            "experiment_id": new.experiment_id,
            "name": new.name,
            "params": params(first),
            "tags": key_values(new.tags),
        });
        if let Some(run_id) = new.source_run_id {
            body["source_run_id"] = json!(run_id);
        }
        if let Some(model_type) = new.model_type {
            body["model_type"] = json!(model_type);
        }
        let model = self
            .post::<wire::LoggedModelResponse>("logged-models", body)
            .await
            .and_then(|r| convert_logged_model(r.model))?;
        for chunk in rest.chunks(PARAMS_PER_CALL) {
            let body = json!({ "model_id": model.model_id, "params": params(chunk) });
            self.post_ignoring_answer(&format!("logged-models/{}/params", model.model_id), body)
                .await?;
        }
        Ok(model)
    }

    /// The logged model `model_id`; [`MlflowError::NotFound`] when there is none.
    pub async fn get_logged_model(&self, model_id: &str) -> Result<LoggedModel, MlflowError> {
        self.get::<wire::LoggedModelResponse>(&format!("logged-models/{model_id}"), &[])
            .await
            .and_then(|r| convert_logged_model(r.model))
    }

    /// Lists `model_id` among the outputs of the (running) run `run_id` at `step`: the link from
    /// the run to the model that MLflow's UI shows on the run's page.
    pub async fn log_run_output(
        &self,
        run_id: &str,
        model_id: &str,
        step: u64,
    ) -> Result<(), MlflowError> {
        let body = json!({
            "run_id": run_id,
            "models": [{ "model_id": model_id, "step": step }],
        });
        self.post_ignoring_answer("runs/outputs", body).await
    }

    /// Logs `metrics` (step 0, timestamp now) on the run `run_id` and links each to the logged
    /// model `model_id`, so they show on both; batched as [`MlflowClient::log_batch`].
    pub async fn log_model_metrics(
        &self,
        run_id: &str,
        model_id: &str,
        metrics: &[(&str, f64)],
    ) -> Result<(), MlflowError> {
        self.log_batch_for(run_id, Some(model_id), &[], metrics, &[])
            .await
    }

    /// Uploads `bytes` as `<model artifact root>/<relative_path>` through the artifact proxy; the
    /// model's `artifact_uri` must be a proxied one (`mlflow-artifacts:/...`).
    pub async fn upload_model_artifact(
        &self,
        model: &LoggedModel,
        relative_path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MlflowError> {
        self.upload_under(&model.artifact_uri, relative_path, bytes)
            .await
    }

    /// Ends the upload of `model_id` with `status` (`PATCH logged-models/<id>`): `Ready` once every
    /// artifact is in place, `Failed` when the upload broke off.
    pub async fn finalize_logged_model(
        &self,
        model_id: &str,
        status: LoggedModelStatus,
    ) -> Result<LoggedModel, MlflowError> {
        let body = json!({ "model_id": model_id, "status": status.as_str() });
        let answer = self
            .send_json(Method::PATCH, &format!("logged-models/{model_id}"), &body)
            .await?;
        super::decode::<wire::LoggedModelResponse>("logged-models", &answer)
            .and_then(|r| convert_logged_model(r.model))
    }

    /// Sets (or overwrites) tags on a logged model (`PATCH logged-models/<id>/tags`).
    pub async fn set_logged_model_tags(
        &self,
        model_id: &str,
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        let body = json!({ "model_id": model_id, "tags": key_values(tags) });
        let answer = self
            .send_json(
                Method::PATCH,
                &format!("logged-models/{model_id}/tags"),
                &body,
            )
            .await?;
        super::decode::<IgnoredAny>("logged-models/tags", &answer).map(drop)
    }

    /// Registers a new version of `name` from the logged model (source `models:/<id>`, its run as
    /// the version's run), waits until it is `READY` as [`MlflowClient::create_model_version`]
    /// does, and records the version on the model (`mlflow.modelVersions`), as MLflow's
    /// `register_model` does.
    pub async fn create_model_version_from(
        &self,
        name: &str,
        model: &LoggedModel,
    ) -> Result<ModelVersion, MlflowError> {
        let mut body = json!({ "name": name, "source": model.uri(), "model_id": model.model_id });
        if let Some(run_id) = &model.source_run_id {
            body["run_id"] = json!(run_id);
        }
        let version = self.register_version(name, body).await?;
        let versions = json!([{ "name": name, "version": version.version.to_string() }]);
        self.set_logged_model_tags(
            &model.model_id,
            &[(MODEL_VERSIONS_TAG, &versions.to_string())],
        )
        .await?;
        Ok(version)
    }

    /// A JSON request with a method other than GET/POST (MLflow 3 uses PATCH for logged models).
    async fn send_json(
        &self,
        method: Method,
        path: &str,
        body: &Value,
    ) -> Result<Vec<u8>, MlflowError> {
        let payload = serde_json::to_vec(body)
            .map_err(|e| MlflowError::Encoding(format!("the {method} {path} request: {e}")))?;
        self.request(method, API, path, &[], Payload::Json(payload))
            .await
    }
}

fn convert_logged_model(wire: wire::LoggedModel) -> Result<LoggedModel, MlflowError> {
    let info = wire.info;
    if info.model_id.is_empty() {
        return Err(MlflowError::InvalidResponse(
            "logged model without model_id".into(),
        ));
    }
    Ok(LoggedModel {
        model_id: info.model_id,
        experiment_id: info.experiment_id,
        name: info.name,
        artifact_uri: info.artifact_uri,
        source_run_id: info.source_run_id.filter(|id| !id.is_empty()),
        status: info.status.as_deref().and_then(LoggedModelStatus::parse),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_use_mlflow_enum_names() {
        for status in [
            LoggedModelStatus::Pending,
            LoggedModelStatus::Ready,
            LoggedModelStatus::Failed,
        ] {
            assert_eq!(LoggedModelStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(
            LoggedModelStatus::parse("LOGGED_MODEL_STATUS_UNSPECIFIED"),
            None
        );
    }

    #[test]
    fn logged_models_convert_from_the_wire() {
        let answer = br#"{"model": {"info": {
            "model_id": "m-0123", "experiment_id": "1", "name": "gbdt-x",
            "artifact_uri": "mlflow-artifacts:/1/models/m-0123/artifacts",
            "source_run_id": "abc", "status": "LOGGED_MODEL_PENDING", "tags": []
        }, "data": {}}}"#;
        let wire: wire::LoggedModelResponse = super::super::decode("x", answer).expect("decode");
        let model = convert_logged_model(wire.model).expect("convert");
        assert_eq!(model.uri(), "models:/m-0123");
        assert_eq!(model.source_run_id.as_deref(), Some("abc"));
        assert_eq!(model.status, Some(LoggedModelStatus::Pending));
        let empty = br#"{"model": {"info": {"model_id": "", "experiment_id": "1"}}}"#;
        let wire: wire::LoggedModelResponse = super::super::decode("x", empty).expect("decode");
        assert!(matches!(
            convert_logged_model(wire.model),
            Err(MlflowError::InvalidResponse(_))
        ));
    }
}
