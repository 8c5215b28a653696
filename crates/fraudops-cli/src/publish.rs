//! Publishing a trained model to MLflow (SPEC §6), shared by `fraudops train` (train, then publish)
//! and `fraudops register` (publish an artifact an earlier step trained):
//! a tracking run with parameters, metrics, tags and the artifact (uploaded through the server's
//! artifact proxy), an MLflow 3 logged model linked to the run (its artifacts: `MLmodel` with the
//! `fraudops` flavor and the signature, `model.json`, `metrics.json`), a new version of the
//! registered model made from that logged model, and the champion gate, which scores the current
//! champion on the same test window and moves the alias only if the new version is not worse than
//! it by more than the tolerance.
//!
//! Failure policy: every MLflow call is retried with exponential backoff by the client; a step that
//! still fails ends the run as `FAILED` (best effort) and fails the command with the step named.
//! Nothing here is silently skipped.

use fraudops_model::signing::ModelSigner;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use fraudops_mlflow::{
    LoggedModel, LoggedModelStatus, MLMODEL_FILE, MlflowClient, MlflowError, ModelVersion,
    NewLoggedModel, RunInfo, RunStatus,
};
use fraudops_model::{Model, ModelArtifact};
use fraudops_train::{Champion, Decision, Evaluation, GateMetric, Prepared, decide, evaluate};
use serde_json::json;

use crate::mlmodel::{self, METRICS_FILE};
use crate::registry::MODEL_FILE;

/// Where the run keeps its own copy of `model.json` and `metrics.json` (versions registered before
/// logged models point at this folder; new versions point at their logged model).
const MODEL_DIR: &str = "model";
/// First backoff sleep between MLflow retries (then 1 s, 2 s, 4 s, ...).
const RETRY_BASE: Duration = Duration::from_millis(500);

/// MLflow options shared by `train` and `register`; each is also an environment variable.
#[derive(Debug, Clone, clap::Args)]
pub struct MlflowArgs {
    /// MLflow tracking server (http://host:port). When set, the model is logged, registered and
    /// gated; when unset, `train` only writes its output directory.
    #[arg(long = "tracking-uri", env = "MLFLOW_TRACKING_URI")]
    pub tracking_uri: Option<String>,
    /// Experiment the run is logged to (created if missing).
    #[arg(long, env = "MLFLOW_EXPERIMENT", default_value = "fraud-detection")]
    pub experiment: String,
    /// Registered model that gets a new version.
    #[arg(long, env = "MLFLOW_MODEL_NAME", default_value = "fraud-detector")]
    pub model_name: String,
    /// Alias the gate moves (what `serve` follows as models:/NAME@ALIAS).
    #[arg(long, env = "MLFLOW_MODEL_ALIAS", default_value = "champion")]
    pub alias: String,
    /// Metric the champion gate compares: roc_auc, average_precision or card_precision_at_100.
    #[arg(long, env = "TRAIN_GATE_METRIC", default_value_t = GateMetric::AveragePrecision)]
    pub gate_metric: GateMetric,
    /// How much worse than the champion (on the gate metric, absolute) a new version may be and
    /// still be promoted; 0 means "at least as good".
    #[arg(long, env = "TRAIN_GATE_TOLERANCE", default_value_t = 0.0)]
    pub gate_tolerance: f64,
    /// Attempts per MLflow request (transport errors, 5xx, 429), with exponential backoff from 0.5 s.
    #[arg(long, env = "MLFLOW_RETRIES", default_value_t = 5)]
    pub mlflow_retries: u32,
    /// Run name (default: the command and the model version, e.g. train-gbdt-0123abcd4567).
    #[arg(long, env = "MLFLOW_RUN_NAME")]
    pub run_name: Option<String>,
    /// Also write the gate decision as JSON here (the Airflow DAG's notify step reads it).
    #[arg(long, env = "DECISION_OUT")]
    pub decision_out: Option<PathBuf>,
    /// The Ed25519 key the published artifact is signed with (a file holding the secret seed in hex, from
    /// a Secret; `fraudops model-key new` makes one): `model.json.sig` travels beside `model.json`, and a
    /// `serve` with MODEL_TRUSTED_KEYS_FILE loads only signed versions. Unset: published unsigned.
    #[arg(long = "signing-key", env = "MODEL_SIGNING_KEY_FILE")]
    pub signing_key: Option<PathBuf>,
}

/// What was trained, on which data: everything the run records.
pub struct Trained<'a> {
    /// The sealed artifact.
    pub artifact: &'a ModelArtifact,
    /// The data it was trained and tested on, already split (the champion is scored on the same).
    pub data: &'a Prepared<'a>,
    /// The data file.
    pub data_path: &'a Path,
    /// Data rows in the file.
    pub rows_seen: u64,
    /// Rows the reader skipped as dirty.
    pub rows_skipped: u64,
    /// `train` or `register`, for the run name and the `mlflow.source.name` tag.
    pub command: &'static str,
}

/// A connection to the tracking server with the experiment resolved: made before training so a
/// missing server fails the job in seconds, not after the fit.
pub struct Tracker {
    client: MlflowClient,
    args: MlflowArgs,
    uri: String,
    experiment_id: String,
    runtime: tokio::runtime::Runtime,
    /// Signs what is published (`--signing-key`).
    signer: Option<ModelSigner>,
}

/// The outcome of a publication, printed and written to `--decision-out`.
pub struct Published {
    /// The tracking run.
    pub run_id: String,
    /// The logged model (`m-...`) the version was registered from.
    pub model_id: String,
    /// The new registered version.
    pub version: u64,
    /// The gate's verdict.
    pub decision: Decision,
    /// The champion before this run, if any.
    pub previous_champion: Option<u64>,
}

impl Tracker {
    /// Checks the arguments, reaches the server and resolves (or creates) the experiment.
    pub fn connect(uri: &str, args: &MlflowArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(
            args.gate_tolerance.is_finite() && args.gate_tolerance >= 0.0,
            "--gate-tolerance must be a non-negative number, got {}",
            args.gate_tolerance
        );
        let client = MlflowClient::new(uri)
            .with_context(|| format!("MLFLOW_TRACKING_URI {uri:?}"))?
            .with_retries(args.mlflow_retries, RETRY_BASE);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let experiment_id = runtime
            .block_on(client.get_or_create_experiment(&args.experiment))
            .map_err(|e| unreachable_or(e, args.mlflow_retries))
            .with_context(|| {
                format!(
                    "MLflow at {uri}: cannot open experiment {:?} (unset MLFLOW_TRACKING_URI or \
                     pass --no-mlflow to train without MLflow)",
                    args.experiment
                )
            })?;
        println!(
            "mlflow: {uri}, experiment {:?} (id {experiment_id})",
            args.experiment
        );
        let signer = load_signer(args.signing_key.as_deref())?;
        Ok(Self {
            client,
            args: args.clone(),
            uri: uri.to_owned(),
            experiment_id,
            runtime,
            signer,
        })
    }

    /// Logs, uploads, registers and gates `trained`; prints the decision and, when asked, writes
    /// it as JSON. A failure after the run started marks the run `FAILED`.
    pub fn publish(&self, trained: &Trained<'_>) -> anyhow::Result<Published> {
        let artifact = trained.artifact;
        let run_name = self
            .args
            .run_name
            .clone()
            .unwrap_or_else(|| format!("{}-{}", trained.command, artifact.model_version));
        let source_name = format!("fraudops {}", trained.command);
        let commit = git_commit();
        let mut tags = vec![
            ("mlflow.source.type", "JOB"),
            ("mlflow.source.name", source_name.as_str()),
            ("fraudops.model_version", artifact.model_version.as_str()),
            ("fraudops.command", trained.command),
        ];
        if let Some(commit) = &commit {
            tags.push(("mlflow.source.git.commit", commit.as_str()));
        }
        let run = self
            .runtime
            .block_on(
                self.client
                    .create_run(&self.experiment_id, &run_name, &tags),
            )
            .map_err(|e| self.fail("creating the run", e))?;
        println!(
            "mlflow: run {} ({}/#/experiments/{}/runs/{})",
            run.run_id, self.uri, self.experiment_id, run.run_id
        );
        match self
            .runtime
            .block_on(self.publish_in_run(&run, trained, commit))
        {
            Ok(published) => {
                self.report(&published)?;
                Ok(published)
            }
            Err(e) => {
                // Best effort: the server may be what failed.
                let _ = self
                    .runtime
                    .block_on(self.client.end_run(&run.run_id, RunStatus::Failed));
                Err(e)
            }
        }
    }

    async fn publish_in_run(
        &self,
        run: &RunInfo,
        trained: &Trained<'_>,
        commit: Option<String>,
    ) -> anyhow::Result<Published> {
        let (client, args, artifact) = (&self.client, &self.args, trained.artifact);
        let run_id = run.run_id.as_str();

        // Parameters and metrics.
        let mut params: Vec<(&str, String)> = artifact
            .hyperparameters
            .iter()
            .map(|(k, v)| (k.as_str(), param_text(v)))
            .collect();
        let window = &artifact.training;
        let data_file = trained
            .data_path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        params.extend([
            (
                "decision_threshold",
                artifact.decision_threshold.to_string(),
            ),
            ("train_start", window.train_start.clone()),
            ("train_days", window.train_days.to_string()),
            ("delay_days", window.delay_days.to_string()),
            ("test_days", window.test_days.to_string()),
            ("data_file", data_file),
            ("data_sha256", window.data_sha256.clone()),
            ("rows_seen", trained.rows_seen.to_string()),
            ("rows_skipped", trained.rows_skipped.to_string()),
            ("library", artifact.library.clone()),
            ("model_version", artifact.model_version.clone()),
            ("gate_metric", args.gate_metric.to_string()),
            ("gate_tolerance", args.gate_tolerance.to_string()),
            ("git_commit", commit.unwrap_or_else(|| "unknown".into())),
        ]);
        let m = &artifact.metrics;
        let metrics = [
            ("roc_auc", m.roc_auc),
            ("average_precision", m.average_precision),
            ("card_precision_at_100", m.card_precision_at_100),
            ("train_seconds", m.train_seconds),
            ("train_rows", m.train_rows as f64),
            ("test_rows", m.test_rows as f64),
            ("rows_seen", trained.rows_seen as f64),
        ];

        // The MLflow 3 logged model, linked to the run both ways (its source run; the run's
        // outputs), with the run's params; the metrics are logged once, on both.
        let logged = client
            .create_logged_model(&NewLoggedModel {
                experiment_id: &self.experiment_id,
                name: &artifact.model_version,
                source_run_id: Some(run_id),
                model_type: None,
                params: &params,
                tags: &[("fraudops.model_version", artifact.model_version.as_str())],
            })
            .await
            .map_err(|e| self.fail("creating the logged model", e))?;
        client
            .log_run_output(run_id, &logged.model_id, 0)
            .await
            .map_err(|e| self.fail("linking the logged model to the run", e))?;
        client
            .log_batch(run_id, &params, &[], &[])
            .await
            .map_err(|e| self.fail("logging parameters", e))?;
        client
            .log_model_metrics(run_id, &logged.model_id, &metrics)
            .await
            .map_err(|e| self.fail("logging metrics", e))?;

        // The artifact, byte for byte what `serve` will load: the run's copy, then the model's.
        let json = artifact.to_json().into_bytes();
        let metrics_json = serde_json::to_vec_pretty(&artifact.metrics)?;
        client
            .upload_artifact(run, &format!("{MODEL_DIR}/{MODEL_FILE}"), json.clone())
            .await
            .map_err(|e| self.fail("uploading model/model.json", e))?;
        // Its signature, over exactly these bytes, beside it (`serve` verifies it against its trusted keys).
        let signature = self.signer.as_ref().map(|s| s.sign(&json).into_bytes());
        if let Some(signature) = &signature {
            client
                .upload_artifact(
                    run,
                    &format!("{MODEL_DIR}/{SIGNATURE_FILE}"),
                    signature.clone(),
                )
                .await
                .map_err(|e| self.fail("uploading model/model.json.sig", e))?;
        }
        client
            .upload_artifact(
                run,
                &format!("{MODEL_DIR}/{METRICS_FILE}"),
                metrics_json.clone(),
            )
            .await
            .map_err(|e| self.fail("uploading model/metrics.json", e))?;
        self.upload_logged_model(&logged, artifact, json, metrics_json, signature)
            .await?;
        println!(
            "mlflow: logged {} params, {} metrics, artifact {MODEL_DIR}/{MODEL_FILE}; logged model {} \
             ({MLMODEL_FILE}, {MODEL_FILE}, {METRICS_FILE})",
            params.len(),
            metrics.len(),
            logged.model_id
        );

        // The gate: score both on the same window, with the serving code.
        let name = args.model_name.as_str();
        client
            .ensure_registered_model(name)
            .await
            .map_err(|e| self.fail("creating the registered model", e))?;
        let candidate_model = Model::from_artifact(artifact.clone())
            .context("the trained artifact does not load as a served model")?;
        let candidate = evaluate(&candidate_model, trained.data);
        let champion = client
            .get_alias(name, &args.alias)
            .await
            .map_err(|e| self.fail("looking up the champion", e))?;
        let champion_eval = match &champion {
            None => ChampionState::Absent,
            Some(version) => self.score_champion(version, trained.data).await?,
        };
        let decision = decide(
            args.gate_metric,
            args.gate_tolerance,
            &candidate,
            champion_eval.as_gate(),
        );

        // Register (every version, promoted or not: the registry is the audit trail) from the
        // logged model, then move the alias if the gate says so.
        let version = client
            .create_model_version_from(name, &logged)
            .await
            .map_err(|e| self.fail("registering the model version", e))?;
        println!("mlflow: registered {name} version {}", version.version);
        if decision.promote {
            client
                .set_alias(name, &args.alias, version.version)
                .await
                .map_err(|e| self.fail("moving the alias", e))?;
        }

        // Record the decision on the run and on the version.
        let previous = champion.as_ref().map(|v| v.version);
        let text = |v: f64| v.to_string();
        let mut run_tags: Vec<(&str, String)> = vec![
            ("fraudops.gate.decision", decision.verdict().into()),
            ("fraudops.gate.reason", decision.reason.key().into()),
            ("fraudops.gate.metric", decision.metric.to_string()),
            ("fraudops.gate.candidate", text(decision.candidate)),
            ("fraudops.gate.tolerance", text(decision.tolerance)),
            ("fraudops.gate.explanation", decision.explain()),
            ("fraudops.registered_model", name.into()),
            ("fraudops.registered_version", version.version.to_string()),
            ("fraudops.logged_model_id", logged.model_id.clone()),
        ];
        if let Some(value) = decision.champion {
            run_tags.push(("fraudops.gate.champion", text(value)));
        }
        if let Some(previous) = previous {
            run_tags.push(("fraudops.gate.champion_version", previous.to_string()));
        }
        if let ChampionState::Unusable(why) = &champion_eval {
            run_tags.push(("fraudops.gate.champion_error", why.clone()));
        }
        let mut champion_metrics = Vec::new();
        if let ChampionState::Evaluated(e) = &champion_eval {
            champion_metrics.extend([
                ("champion_roc_auc", e.roc_auc),
                ("champion_average_precision", e.average_precision),
                ("champion_card_precision_at_100", e.card_precision_at_100),
            ]);
        }
        let tag_refs: Vec<(&str, &str)> = run_tags.iter().map(|(k, v)| (*k, v.as_str())).collect();
        client
            .log_batch(run_id, &[], &champion_metrics, &tag_refs)
            .await
            .map_err(|e| self.fail("recording the gate decision on the run", e))?;
        let version_tags = [
            ("fraudops.gate.decision", decision.verdict().to_owned()),
            ("fraudops.gate.reason", decision.reason.key().to_owned()),
            ("fraudops.model_version", artifact.model_version.clone()),
            ("roc_auc", text(candidate.roc_auc)),
            ("average_precision", text(candidate.average_precision)),
            (
                "card_precision_at_100",
                text(candidate.card_precision_at_100),
            ),
        ];
        for (key, value) in &version_tags {
            client
                .set_model_version_tag(name, version.version, key, value)
                .await
                .map_err(|e| self.fail("tagging the model version", e))?;
        }
        client
            .end_run(run_id, RunStatus::Finished)
            .await
            .map_err(|e| self.fail("finishing the run", e))?;
        Ok(Published {
            run_id: run_id.to_owned(),
            model_id: logged.model_id,
            version: version.version,
            decision,
            previous_champion: previous,
        })
    }

    /// Uploads the logged model's artifacts (`MLmodel` last, so a model whose description is there
    /// is complete) and marks it `READY`; a failed upload marks it `FAILED` (best effort), as
    /// MLflow's own `log_model` does.
    async fn upload_logged_model(
        &self,
        logged: &LoggedModel,
        artifact: &ModelArtifact,
        json: Vec<u8>,
        metrics_json: Vec<u8>,
        signature: Option<Vec<u8>>,
    ) -> anyhow::Result<()> {
        let client = &self.client;
        let uploaded = async {
            if let Some(signature) = signature {
                client
                    .upload_model_artifact(logged, SIGNATURE_FILE, signature)
                    .await
                    .map_err(|e| self.fail("uploading model.json.sig to the logged model", e))?;
            }
            let description = mlmodel::describe(artifact, logged)
                .to_yaml()
                .map_err(|e| self.fail("describing the model", e))?;
            for (path, bytes) in [
                (MODEL_FILE, json),
                (METRICS_FILE, metrics_json),
                (
                    mlmodel::PYFUNC_MODULE_PATH,
                    mlmodel::PYFUNC_MODULE_SOURCE.as_bytes().to_vec(),
                ),
                (MLMODEL_FILE, description.into_bytes()),
            ] {
                client
                    .upload_model_artifact(logged, path, bytes)
                    .await
                    .map_err(|e| self.fail(&format!("uploading {path} to the logged model"), e))?;
            }
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = uploaded {
            let _ = client
                .finalize_logged_model(&logged.model_id, LoggedModelStatus::Failed)
                .await;
            return Err(e);
        }
        client
            .finalize_logged_model(&logged.model_id, LoggedModelStatus::Ready)
            .await
            .map_err(|e| self.fail("marking the logged model READY", e))?;
        Ok(())
    }

    /// Downloads and scores the champion. A champion this build cannot load is `Unusable` (the
    /// server would refuse it too); not reaching MLflow is an error.
    async fn score_champion(
        &self,
        version: &ModelVersion,
        data: &Prepared<'_>,
    ) -> anyhow::Result<ChampionState> {
        let label = format!("{}/{}", version.name, version.version);
        let bytes = match self.client.download_artifact(version, MODEL_FILE).await {
            Ok(bytes) => bytes,
            Err(e @ (MlflowError::NotFound { .. } | MlflowError::InvalidUri(_))) => {
                return Ok(ChampionState::Unusable(format!("{label}: {e}")));
            }
            Err(MlflowError::Http { status: 404, .. }) => {
                return Ok(ChampionState::Unusable(format!(
                    "{label}: {MODEL_FILE} is missing from its artifacts"
                )));
            }
            Err(e) => return Err(self.fail("downloading the champion", e)),
        };
        match Model::from_json(&bytes) {
            Ok(model) => Ok(ChampionState::Evaluated(evaluate(&model, data))),
            Err(e) => Ok(ChampionState::Unusable(format!("{label}: {e}"))),
        }
    }

    /// Prints the verdict and writes the decision file.
    fn report(&self, published: &Published) -> anyhow::Result<()> {
        let args = &self.args;
        let d = &published.decision;
        let name = &args.model_name;
        let champion = published
            .previous_champion
            .map_or_else(|| "none".to_owned(), |v| format!("version {v}"));
        if d.promote {
            println!(
                "gate: PROMOTED {name} version {} to @{} (was: {champion}): {}",
                published.version,
                args.alias,
                d.explain()
            );
        } else {
            println!(
                "gate: REJECTED {name} version {}; @{} stays on {champion}: {}",
                published.version,
                args.alias,
                d.explain()
            );
        }
        if let Some(path) = &args.decision_out {
            let record = json!({
                "tracking_uri": self.uri,
                "experiment_id": self.experiment_id,
                "run_id": published.run_id,
                "model_id": published.model_id,
                "model_name": name,
                "version": published.version,
                "alias": args.alias,
                "promoted": d.promote,
                "decision": d.verdict(),
                "reason": d.reason.key(),
                "metric": d.metric.name(),
                "candidate": finite_or_null(d.candidate),
                "champion": d.champion.map(finite_or_null),
                "champion_version": published.previous_champion,
                "tolerance": d.tolerance,
                "explanation": d.explain(),
            });
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(path, serde_json::to_vec_pretty(&record)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Names the failed step and the server in the error.
    fn fail(&self, step: &str, error: MlflowError) -> anyhow::Error {
        unreachable_or(error, self.args.mlflow_retries)
            .context(format!("MLflow at {}: {step} failed", self.uri))
    }
}

/// The champion, as far as the gate is concerned.
enum ChampionState {
    Absent,
    Unusable(String),
    Evaluated(Evaluation),
}

impl ChampionState {
    fn as_gate(&self) -> Champion<'_> {
        match self {
            ChampionState::Absent => Champion::Absent,
            ChampionState::Unusable(why) => Champion::Unusable(why),
            ChampionState::Evaluated(e) => Champion::Evaluated(e),
        }
    }
}

/// Wraps an MLflow error so the message says plainly when the server was not reachable at all
/// (as opposed to reachable but refusing).
fn unreachable_or(error: MlflowError, attempts: u32) -> anyhow::Error {
    let unreachable = matches!(
        error,
        MlflowError::Transport(_) | MlflowError::Timeout { .. }
    );
    let error = anyhow::Error::new(error);
    if unreachable {
        error.context(format!(
            "the MLflow server is unreachable (gave up after {} attempts with backoff)",
            attempts.max(1)
        ))
    } else {
        error
    }
}

/// Hyper-parameters are JSON values; MLflow params are strings without JSON quotes.
fn param_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn finite_or_null(value: f64) -> serde_json::Value {
    if value.is_finite() {
        json!(value)
    } else {
        serde_json::Value::Null
    }
}

/// The commit the trainer was built from or runs in: `FRAUDOPS_GIT_COMMIT` at build time (the
/// image build sets it), else `GIT_COMMIT` at run time, else `git rev-parse HEAD` in the working
/// directory. `None` when none is known.
pub fn git_commit() -> Option<String> {
    let valid = |s: &str| {
        let s = s.trim();
        (s.len() >= 7 && s.bytes().all(|b| b.is_ascii_hexdigit())).then(|| s.to_owned())
    };
    option_env!("FRAUDOPS_GIT_COMMIT")
        .and_then(valid)
        .or_else(|| std::env::var("GIT_COMMIT").ok().as_deref().and_then(valid))
        .or_else(|| {
            let out = std::process::Command::new("git")
                .args(["rev-parse", "--verify", "HEAD"])
                .stderr(std::process::Stdio::null())
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
                .as_deref()
                .and_then(valid)
        })
}

/// The artifact's signature beside it (`fraudops_model::signing`).
pub const SIGNATURE_FILE: &str = "model.json.sig";

/// The signing key named by `--signing-key`, read now so a missing key fails before training.
pub fn load_signer(path: Option<&Path>) -> anyhow::Result<Option<ModelSigner>> {
    path.map(|p| ModelSigner::load(p).context("MODEL_SIGNING_KEY_FILE"))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_plain_strings() {
        assert_eq!(param_text(&json!("x")), "x");
        assert_eq!(param_text(&json!(0.05)), "0.05");
        assert_eq!(param_text(&json!(200)), "200");
    }

    #[test]
    fn transport_errors_read_as_unreachable() {
        let e = unreachable_or(
            MlflowError::Timeout {
                what: "GET /x".into(),
            },
            5,
        );
        assert!(e.to_string().contains("unreachable"), "{e}");
        assert!(e.to_string().contains("5 attempts"), "{e}");
        let e = unreachable_or(
            MlflowError::NotFound {
                what: "model".into(),
            },
            5,
        );
        assert!(!format!("{e:#}").contains("unreachable"), "{e:#}");
    }

    #[test]
    fn non_finite_values_become_null() {
        assert_eq!(finite_or_null(f64::NAN), serde_json::Value::Null);
        assert_eq!(finite_or_null(0.5), json!(0.5));
    }
}
