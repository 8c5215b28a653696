//! [`MlflowClient`]: one request helper (retries, error mapping) and one method per MLflow call
//! the trainer and the API server need.
//!
//! Why one file of ~800 lines: one method per MLflow call, all through the same request helper; ~100 of
//! them are tests of the helper's retry and error mapping. MLflow 3's logged models are the child
//! module `logged_model` (same helper, its own section of the API).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reqwest::{Method, StatusCode, Url};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::{Value, json};

use crate::artifact::{self, ArtifactSource};
use crate::{MlflowError, ModelSelector, ModelUri, wire};

mod logged_model;

pub use logged_model::{LoggedModel, LoggedModelStatus, NewLoggedModel};

/// Connecting to a healthy server on the cluster network takes milliseconds; longer means it is down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Whole-request bound, generous enough for a model artifact of some megabytes.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`MlflowClient::create_model_version`] waits for `PENDING_REGISTRATION` to end.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Poll interval while waiting for a model version to become `READY`.
const READY_POLL: Duration = Duration::from_millis(250);
/// Upper bound on one backoff sleep, whatever the attempt count.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How much of an error body goes into [`MlflowError::Http`].
const ERROR_BODY_LIMIT: usize = 512;
/// MLflow's `log-batch` limits (`mlflow/utils/validation.py`).
const MAX_PARAMS_TAGS_PER_BATCH: usize = 100;
const MAX_ENTITIES_PER_BATCH: usize = 1000;

const API: &str = "api/2.0/mlflow";
const ARTIFACTS_API: &str = "api/2.0/mlflow-artifacts/artifacts";

/// A registered model version as the registry reports it; what `resolve` hands the API server
/// and `create_model_version` hands the trainer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelVersion {
    /// Registered model name.
    pub name: String,
    /// Version number (a string on the wire, parsed here).
    pub version: u64,
    /// The run that produced it, when it was registered from a run.
    pub run_id: Option<String>,
    /// Where its artifacts live (`runs:/...`, `mlflow-artifacts:/...`); read by `download_artifact`.
    pub source: String,
    /// Registry status: `READY`, `PENDING_REGISTRATION` or `FAILED_REGISTRATION`.
    pub status: String,
    /// The MLflow 3 logged model it was registered from (`m-...`): the server's `model_id` or,
    /// as open-source servers do not store that field, the id in a `models:/<model_id>` source.
    /// `None` for versions registered from a run's artifact folder.
    pub model_id: Option<String>,
    /// Aliases pointing at this version (e.g. `champion`); may be empty when the endpoint omits them.
    pub aliases: Vec<String>,
}

/// The identity of a tracking run: what the trainer needs to log to it and upload artifacts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// Run id (32 hex characters).
    pub run_id: String,
    /// Experiment the run belongs to.
    pub experiment_id: String,
    /// Root of the run's artifacts, e.g. `mlflow-artifacts:/1/<run_id>/artifacts`.
    pub artifact_uri: String,
}

/// How a run ended; MLflow shows it in the UI and filters on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// The run completed (whether or not its model was promoted).
    Finished,
    /// The run hit an error.
    Failed,
    /// The run was stopped from outside (e.g. SIGTERM).
    Killed,
}

impl RunStatus {
    fn as_str(self) -> &'static str {
        match self {
            RunStatus::Finished => "FINISHED",
            RunStatus::Failed => "FAILED",
            RunStatus::Killed => "KILLED",
        }
    }
}

/// A typed async client for one MLflow tracking server. Cheap to clone (the connection pool is
/// shared), so the API server's reload task and the trainer can each keep one.
#[derive(Debug, Clone)]
pub struct MlflowClient {
    /// Pooled HTTP client with connect and request timeouts.
    http: reqwest::Client,
    /// Tracking URI, including any path prefix (`--static-prefix`), without a trailing `/`.
    base: Url,
    /// Total tries per request (1 = no retry).
    attempts: u32,
    /// First backoff sleep; doubles on every further retry.
    base_delay: Duration,
}

/// A request body, serialized once and re-sent on each retry.
enum Payload {
    Empty,
    Json(Vec<u8>),
    Bytes(Vec<u8>),
}

impl MlflowClient {
    /// A client for `http(s)://host:port[/prefix]` (what `MLFLOW_TRACKING_URI` holds), with 4
    /// attempts and 200 ms base backoff. Fails on anything that is not an http(s) URL.
    pub fn new(tracking_uri: &str) -> Result<Self, MlflowError> {
        let invalid = |why: &str| {
            MlflowError::InvalidUri(format!(
                "tracking URI {tracking_uri:?}: {why}; expected http(s)://host:port[/prefix]"
            ))
        };
        let base =
            Url::parse(tracking_uri.trim_end_matches('/')).map_err(|e| invalid(&e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(invalid("scheme must be http or https"));
        }
        if base.host_str().is_none() || base.cannot_be_a_base() {
            return Err(invalid("missing host"));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(invalid("query and fragment are not allowed"));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("fraudops-mlflow/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            base,
            attempts: 4,
            base_delay: Duration::from_millis(200),
        })
    }

    /// Sets the retry policy: `attempts` tries in total (at least 1) on transport errors, 5xx and
    /// 429, sleeping `base_delay`, then twice that, and so on (capped at 10 s). Note that a retried
    /// POST whose first try reached the server may create a second run or model version.
    pub fn with_retries(mut self, attempts: u32, base_delay: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.base_delay = base_delay;
        self
    }

    // ----- registry reads (API server) -----

    /// The model version a `models:/` URI points at now; alias URIs are re-resolved on every call,
    /// which is how the API server notices a new champion. Missing model, version or alias is
    /// [`MlflowError::NotFound`].
    pub async fn resolve(&self, uri: &ModelUri) -> Result<ModelVersion, MlflowError> {
        let result = match &uri.selector {
            ModelSelector::Alias(alias) => self.alias_lookup(&uri.name, alias).await,
            ModelSelector::Version(version) => {
                let version = version.to_string();
                self.get::<wire::ModelVersionResponse>(
                    "model-versions/get",
                    &[("name", &uri.name), ("version", &version)],
                )
                .await
                .and_then(|r| convert_version(r.model_version))
            }
        };
        result.map_err(|e| match e {
            MlflowError::NotFound { what } => MlflowError::NotFound {
                what: format!("{uri}: {what}"),
            },
            other => other,
        })
    }

    /// The bytes of one artifact file (e.g. `model.json`) under a version's `source`, read through
    /// the tracking server's artifact proxy. Supported sources: `mlflow-artifacts:/...`,
    /// `http(s)://.../api/2.0/mlflow-artifacts/artifacts/...`, `runs:/<run_id>/...` (whose run
    /// `artifact_uri` must be one of the former) and MLflow 3 logged models `models:/<model_id>`
    /// (whose `artifact_uri` must be one of the former). Anything else (`s3://`, `file://`) is
    /// [`MlflowError::InvalidUri`]: the server must run with `--serve-artifacts`.
    pub async fn download_artifact(
        &self,
        version: &ModelVersion,
        relative_path: &str,
    ) -> Result<Vec<u8>, MlflowError> {
        let root = match artifact::parse_source(&version.source)? {
            ArtifactSource::Proxied(root) => root,
            ArtifactSource::Run { run_id, path } => {
                let run = self.get_run(&run_id).await?;
                let run_root = artifact::proxied_root(&run.artifact_uri)?;
                match (run_root.is_empty(), path.is_empty()) {
                    (_, true) => run_root,
                    (true, false) => path,
                    (false, false) => format!("{run_root}/{path}"),
                }
            }
            ArtifactSource::LoggedModel { model_id } => {
                let model = self.get_logged_model(&model_id).await?;
                artifact::proxied_root(&model.artifact_uri)?
            }
        };
        let path = artifact::join(&root, relative_path)?;
        self.request(Method::GET, ARTIFACTS_API, &path, &[], Payload::Empty)
            .await
    }

    // ----- tracking (trainer) -----

    /// The id of the experiment called `name`, creating it if needed (a concurrent creator is fine).
    pub async fn get_or_create_experiment(&self, name: &str) -> Result<String, MlflowError> {
        match self.experiment_by_name(name).await {
            Err(MlflowError::NotFound { .. }) => {}
            found => return found,
        }
        match self
            .post::<wire::CreateExperimentResponse>("experiments/create", json!({ "name": name }))
            .await
        {
            Ok(created) => Ok(created.experiment_id),
            Err(e) if already_exists(&e) => self.experiment_by_name(name).await,
            Err(e) => Err(e),
        }
    }

    /// Starts a run (status `RUNNING`, start time now) named `run_name` with initial `tags`.
    pub async fn create_run(
        &self,
        experiment_id: &str,
        run_name: &str,
        tags: &[(&str, &str)],
    ) -> Result<RunInfo, MlflowError> {
        let body = json!({
            "experiment_id": experiment_id,
            "run_name": run_name,
            "start_time": now_ms(),
            "tags": key_values(tags),
        });
        let response = self.post::<wire::RunResponse>("runs/create", body).await?;
        convert_run(response.run.info)
    }

    /// Logs params, metrics (step 0, timestamp now) and tags, split into as many `runs/log-batch`
    /// calls as MLflow's limits need (100 params, 100 tags, 1000 entities per call). Non-finite
    /// metric values are sent as MLflow's `NaN`/`Infinity` strings.
    pub async fn log_batch(
        &self,
        run_id: &str,
        params: &[(&str, String)],
        metrics: &[(&str, f64)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        self.log_batch_for(run_id, None, params, metrics, tags)
            .await
    }

    /// [`Self::log_batch`], with every metric linked to the logged model `model_id` when given
    /// (MLflow 3 then records it on the run and on the model).
    async fn log_batch_for(
        &self,
        run_id: &str,
        model_id: Option<&str>,
        params: &[(&str, String)],
        metrics: &[(&str, f64)],
        tags: &[(&str, &str)],
    ) -> Result<(), MlflowError> {
        let timestamp = now_ms();
        let (mut params, mut metrics, mut tags) = (params, metrics, tags);
        while !(params.is_empty() && metrics.is_empty() && tags.is_empty()) {
            let p = params.len().min(MAX_PARAMS_TAGS_PER_BATCH);
            let t = tags.len().min(MAX_PARAMS_TAGS_PER_BATCH);
            let m = metrics.len().min(MAX_ENTITIES_PER_BATCH - p - t);
            let body = json!({
                "run_id": run_id,
                "params": params[..p]
                    .iter()
                    .map(|(key, value)| json!({ "key": key, "value": value }))
                    .collect::<Vec<_>>(),
                "metrics": metrics[..m]
                    .iter()
                    .map(|&(key, value)| {
                        let mut metric = json!({
                            "key": key,
                            "value": metric_value(value),
                            "timestamp": timestamp,
                            "step": 0,
                        });
                        if let Some(model_id) = model_id {
                            metric["model_id"] = json!(model_id);
                        }
                        metric
                    })
                    .collect::<Vec<_>>(),
                "tags": key_values(&tags[..t]),
            });
            self.post_ignoring_answer("runs/log-batch", body).await?;
            (params, metrics, tags) = (&params[p..], &metrics[m..], &tags[t..]);
        }
        Ok(())
    }

    /// Sets (or overwrites) one run tag.
    pub async fn set_tag(&self, run_id: &str, key: &str, value: &str) -> Result<(), MlflowError> {
        let body = json!({ "run_id": run_id, "key": key, "value": value });
        self.post_ignoring_answer("runs/set-tag", body).await
    }

    /// Uploads `bytes` as `<run artifact root>/<relative_path>` through the artifact proxy
    /// (`PUT /api/2.0/mlflow-artifacts/artifacts/<experiment>/<run>/artifacts/<relative_path>`).
    /// The run's `artifact_uri` must be a proxied one (`mlflow-artifacts:/...`).
    pub async fn upload_artifact(
        &self,
        run: &RunInfo,
        relative_path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MlflowError> {
        self.upload_under(&run.artifact_uri, relative_path, bytes)
            .await
    }

    /// `PUT` of `bytes` as `<artifact_uri>/<relative_path>` through the artifact proxy; the root
    /// must be a proxied one (`mlflow-artifacts:/...`).
    async fn upload_under(
        &self,
        artifact_uri: &str,
        relative_path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), MlflowError> {
        let root = artifact::proxied_root(artifact_uri)?;
        let path = artifact::join(&root, relative_path)?;
        self.request(
            Method::PUT,
            ARTIFACTS_API,
            &path,
            &[],
            Payload::Bytes(bytes),
        )
        .await
        .map(drop)
    }

    /// Ends a run with `status` and end time now.
    pub async fn end_run(&self, run_id: &str, status: RunStatus) -> Result<(), MlflowError> {
        let body = json!({ "run_id": run_id, "status": status.as_str(), "end_time": now_ms() });
        self.post_ignoring_answer("runs/update", body).await
    }

    // ----- registry writes (trainer) -----

    /// Creates the registered model `name` unless it exists already.
    pub async fn ensure_registered_model(&self, name: &str) -> Result<(), MlflowError> {
        match self
            .post_ignoring_answer("registered-models/create", json!({ "name": name }))
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if already_exists(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Registers a new version of `name` from `source` (e.g. `runs:/<run_id>/model`) and waits
    /// (at most 120 s) until the registry reports it `READY`. `FAILED_REGISTRATION` is
    /// [`MlflowError::InvalidResponse`], running out of time [`MlflowError::Timeout`].
    pub async fn create_model_version(
        &self,
        name: &str,
        source: &str,
        run_id: &str,
    ) -> Result<ModelVersion, MlflowError> {
        let body = json!({ "name": name, "source": source, "run_id": run_id });
        self.register_version(name, body).await
    }

    /// `model-versions/create` with `body`, then polls until the version is `READY`.
    async fn register_version(&self, name: &str, body: Value) -> Result<ModelVersion, MlflowError> {
        let mut current = self
            .post::<wire::ModelVersionResponse>("model-versions/create", body)
            .await?
            .model_version;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match current.status.as_str() {
                "READY" => return convert_version(current),
                "FAILED_REGISTRATION" => {
                    return Err(MlflowError::InvalidResponse(format!(
                        "model version {name}/{} failed registration: {}",
                        current.version,
                        current.status_message.as_deref().unwrap_or("no message")
                    )));
                }
                _ if Instant::now() >= deadline => {
                    return Err(MlflowError::Timeout {
                        what: format!(
                            "model version {name}/{} to become READY (status {})",
                            current.version, current.status
                        ),
                    });
                }
                _ => tokio::time::sleep(READY_POLL).await,
            }
            current = self
                .get::<wire::ModelVersionResponse>(
                    "model-versions/get",
                    &[("name", name), ("version", &current.version)],
                )
                .await?
                .model_version;
        }
    }

    /// The version `alias` points at, or `None` when there is no such alias (or no such model):
    /// the trainer's promotion gate compares against it.
    pub async fn get_alias(
        &self,
        name: &str,
        alias: &str,
    ) -> Result<Option<ModelVersion>, MlflowError> {
        match self.alias_lookup(name, alias).await {
            Ok(version) => Ok(Some(version)),
            Err(MlflowError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Points `alias` at `version` (creating or moving it): how a new champion is promoted.
    pub async fn set_alias(
        &self,
        name: &str,
        alias: &str,
        version: u64,
    ) -> Result<(), MlflowError> {
        let body = json!({ "name": name, "alias": alias, "version": version.to_string() });
        self.post_ignoring_answer("registered-models/alias", body)
            .await
    }

    /// Sets (or overwrites) a tag on a model version, e.g. its evaluation metrics or gate verdict.
    pub async fn set_model_version_tag(
        &self,
        name: &str,
        version: u64,
        key: &str,
        value: &str,
    ) -> Result<(), MlflowError> {
        let body = json!({
            "name": name,
            "version": version.to_string(),
            "key": key,
            "value": value,
        });
        self.post_ignoring_answer("model-versions/set-tag", body)
            .await
    }

    // ----- private helpers -----

    async fn experiment_by_name(&self, name: &str) -> Result<String, MlflowError> {
        self.get::<wire::GetExperimentResponse>(
            "experiments/get-by-name",
            &[("experiment_name", name)],
        )
        .await
        .map(|r| r.experiment.experiment_id)
    }

    async fn get_run(&self, run_id: &str) -> Result<RunInfo, MlflowError> {
        let response = self
            .get::<wire::RunResponse>("runs/get", &[("run_id", run_id)])
            .await?;
        convert_run(response.run.info)
    }

    async fn alias_lookup(&self, name: &str, alias: &str) -> Result<ModelVersion, MlflowError> {
        self.get::<wire::ModelVersionResponse>(
            "registered-models/alias",
            &[("name", name), ("alias", alias)],
        )
        .await
        .and_then(|r| convert_version(r.model_version))
    }

    /// `GET /api/2.0/mlflow/<method>?query`, decoded as `T`.
    async fn get<T: DeserializeOwned>(
        &self,
        method: &str,
        query: &[(&str, &str)],
    ) -> Result<T, MlflowError> {
        let body = self
            .request(Method::GET, API, method, query, Payload::Empty)
            .await?;
        decode(method, &body)
    }

    /// `POST /api/2.0/mlflow/<method>` with a JSON body, decoded as `T`.
    async fn post<T: DeserializeOwned>(&self, method: &str, body: Value) -> Result<T, MlflowError> {
        let payload = serde_json::to_vec(&body)
            .map_err(|e| MlflowError::Encoding(format!("the {method} request: {e}")))?;
        let body = self
            .request(Method::POST, API, method, &[], Payload::Json(payload))
            .await?;
        decode(method, &body)
    }

    /// [`Self::post`] for a method whose answer says nothing the caller needs.
    async fn post_ignoring_answer(&self, method: &str, body: Value) -> Result<(), MlflowError> {
        self.post::<IgnoredAny>(method, body).await.map(drop)
    }

    /// The one place that sends requests: builds `<base>/<api>/<path>` (each path segment
    /// percent-encoded), retries transport errors, 5xx and 429 with exponential backoff, and maps
    /// every failure to [`MlflowError`].
    async fn request(
        &self,
        method: Method,
        api: &str,
        path: &str,
        query: &[(&str, &str)],
        payload: Payload,
    ) -> Result<Vec<u8>, MlflowError> {
        let url = self.url(api, path)?;
        let endpoint = format!("{method} {}", url.path());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let request = self.http.request(method.clone(), url.clone()).query(query);
            let request = match &payload {
                Payload::Empty => request,
                Payload::Json(body) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone()),
                Payload::Bytes(body) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body.clone()),
            };
            let outcome = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    response.bytes().await.map(|body| (status, body))
                }
                Err(e) => Err(e),
            };
            let error = match outcome {
                Ok((status, body)) if status.is_success() => {
                    tracing::debug!(%endpoint, %status, attempt, "mlflow request ok");
                    return Ok(body.to_vec());
                }
                Ok((status, body)) => {
                    let error = classify(status, &endpoint, &body);
                    if !(status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS) {
                        return Err(error);
                    }
                    error
                }
                Err(e) if e.is_timeout() => MlflowError::Timeout {
                    what: endpoint.clone(),
                },
                Err(e) => MlflowError::Transport(e),
            };
            if attempt >= self.attempts {
                return Err(error);
            }
            let delay = backoff(self.base_delay, attempt);
            tracing::warn!(%endpoint, attempt, of = self.attempts, ?delay, %error, "mlflow request failed, retrying");
            tokio::time::sleep(delay).await;
        }
    }

    fn url(&self, api: &str, path: &str) -> Result<Url, MlflowError> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|()| {
                MlflowError::InvalidUri(format!("tracking URI {} has no path", self.base))
            })?
            .pop_if_empty()
            .extend(
                api.split('/')
                    .chain(path.split('/'))
                    .filter(|s| !s.is_empty()),
            );
        Ok(url)
    }
}

/// Maps a non-success answer: MLflow's `RESOURCE_DOES_NOT_EXIST` (and its missing-alias answer,
/// which is a 400 `INVALID_PARAMETER_VALUE`) become [`MlflowError::NotFound`]; everything else
/// [`MlflowError::Http`]. A bare 404 without MLflow JSON stays `Http`: it usually means a wrong
/// tracking URI prefix, not a missing model.
fn classify(status: StatusCode, endpoint: &str, body: &[u8]) -> MlflowError {
    let parsed = serde_json::from_slice::<wire::ErrorBody>(body).ok();
    let error_code = parsed.as_ref().and_then(|b| b.error_code.clone());
    let message = parsed.and_then(|b| b.message);
    let missing_alias = error_code.as_deref() == Some("INVALID_PARAMETER_VALUE")
        && message
            .as_deref()
            .is_some_and(|m| m.starts_with("Registered model alias") && m.ends_with("not found."));
    if error_code.as_deref() == Some("RESOURCE_DOES_NOT_EXIST") || missing_alias {
        return MlflowError::NotFound {
            what: message.unwrap_or_else(|| endpoint.to_owned()),
        };
    }
    let text = message.unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    MlflowError::Http {
        status: status.as_u16(),
        endpoint: endpoint.to_owned(),
        error_code,
        body: truncate(text, ERROR_BODY_LIMIT),
    }
}

fn already_exists(error: &MlflowError) -> bool {
    matches!(error, MlflowError::Http { error_code: Some(code), .. } if code == "RESOURCE_ALREADY_EXISTS")
}

fn decode<T: DeserializeOwned>(method: &str, body: &[u8]) -> Result<T, MlflowError> {
    serde_json::from_slice(body).map_err(|e| {
        MlflowError::InvalidResponse(format!(
            "{method}: {e}; body: {}",
            truncate(String::from_utf8_lossy(body).into_owned(), ERROR_BODY_LIMIT)
        ))
    })
}

fn convert_version(wire: wire::ModelVersion) -> Result<ModelVersion, MlflowError> {
    let version = wire.version.parse().map_err(|_| {
        MlflowError::InvalidResponse(format!(
            "model version {:?} of {} is not a number",
            wire.version, wire.name
        ))
    })?;
    let model_id =
        wire.model_id.filter(|id| !id.is_empty()).or_else(|| {
            match artifact::parse_source(&wire.source) {
                Ok(ArtifactSource::LoggedModel { model_id }) => Some(model_id),
                _ => None,
            }
        });
    Ok(ModelVersion {
        name: wire.name,
        version,
        run_id: wire.run_id.filter(|id| !id.is_empty()),
        source: wire.source,
        status: wire.status,
        model_id,
        aliases: wire.aliases,
    })
}

fn convert_run(info: wire::RunInfo) -> Result<RunInfo, MlflowError> {
    let run_id = info
        .run_id
        .or(info.run_uuid)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| MlflowError::InvalidResponse("run info without run_id".into()))?;
    Ok(RunInfo {
        run_id,
        experiment_id: info.experiment_id,
        artifact_uri: info.artifact_uri,
    })
}

fn key_values(pairs: &[(&str, &str)]) -> Vec<Value> {
    pairs
        .iter()
        .map(|(key, value)| json!({ "key": key, "value": value }))
        .collect()
}

/// JSON has no NaN or infinity; MLflow's protobuf JSON parser takes them as strings.
fn metric_value(value: f64) -> Value {
    if value.is_nan() {
        json!("NaN")
    } else if value == f64::INFINITY {
        json!("Infinity")
    } else if value == f64::NEG_INFINITY {
        json!("-Infinity")
    } else {
        json!(value)
    }
}

fn backoff(base: Duration, attempt: u32) -> Duration {
    let factor = 1u32 << attempt.saturating_sub(1).min(16);
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn truncate(mut text: String, limit: usize) -> String {
    if text.len() > limit {
        let mut cut = limit;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_accepts_http_with_prefix_and_builds_urls() {
        let client = MlflowClient::new("http://mlflow:5000/prefix/").expect("valid");
        let url = client.url(API, "registered-models/alias").expect("url");
        assert_eq!(
            url.as_str(),
            "http://mlflow:5000/prefix/api/2.0/mlflow/registered-models/alias"
        );
        let client = MlflowClient::new("https://mlflow.example").expect("valid");
        let url = client
            .url(ARTIFACTS_API, "1/r un/artifacts/model#1.json")
            .expect("url");
        assert_eq!(
            url.as_str(),
            "https://mlflow.example/api/2.0/mlflow-artifacts/artifacts/1/r%20un/artifacts/model%231.json"
        );
    }

    #[test]
    fn new_refuses_non_http() {
        for uri in [
            "databricks",
            "file:///tmp/mlruns",
            "sqlite:///x.db",
            "http://h:5000/?a=b",
            "",
        ] {
            assert!(
                matches!(MlflowClient::new(uri), Err(MlflowError::InvalidUri(_))),
                "{uri}"
            );
        }
    }

    #[test]
    fn errors_are_classified() {
        let not_found =
            br#"{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Run with id=x not found"}"#;
        assert!(matches!(
            classify(StatusCode::NOT_FOUND, "GET /x", not_found),
            MlflowError::NotFound { what } if what == "Run with id=x not found"
        ));
        let alias = br#"{"error_code": "INVALID_PARAMETER_VALUE", "message": "Registered model alias champion not found."}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, "GET /x", alias),
            MlflowError::NotFound { .. }
        ));
        let exists = br#"{"error_code": "RESOURCE_ALREADY_EXISTS", "message": "exists"}"#;
        assert!(already_exists(&classify(
            StatusCode::BAD_REQUEST,
            "POST /x",
            exists
        )));
        let bare = "<html>nope</html>".repeat(100);
        match classify(StatusCode::NOT_FOUND, "GET /x", bare.as_bytes()) {
            MlflowError::Http {
                status: 404,
                error_code: None,
                body,
                ..
            } => {
                assert!(body.len() <= ERROR_BODY_LIMIT + 3)
            }
            other => panic!("expected Http, got {other:?}"),
        }
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let base = Duration::from_millis(200);
        assert_eq!(backoff(base, 1), Duration::from_millis(200));
        assert_eq!(backoff(base, 2), Duration::from_millis(400));
        assert_eq!(backoff(base, 3), Duration::from_millis(800));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("ééé".into(), 3), "é...");
        assert_eq!(truncate("short".into(), 10), "short");
    }

    #[test]
    fn non_finite_metrics_use_mlflow_strings() {
        assert_eq!(metric_value(f64::NAN), json!("NaN"));
        assert_eq!(metric_value(f64::NEG_INFINITY), json!("-Infinity"));
        assert_eq!(metric_value(0.5), json!(0.5));
    }
}
