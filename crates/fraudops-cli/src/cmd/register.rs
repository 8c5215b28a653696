//! `fraudops register`: publish a `model.json` that `fraudops train --no-mlflow` wrote: MLflow run,
//! registered version and champion gate, exactly as `train` does when MLflow is on.
//!
//! Why a separate step: the Airflow DAG trains, validates, and only then registers, each a task
//! that can be retried and inspected on its own. The gate needs the test window, so the data file
//! is read again and must be the one the model was trained on (its checksum is in the artifact).
//!
//! With `--pushgateway-url` the outcome is also pushed for the dashboard (`crate::pushgateway`); a
//! failed push is a warning, not a failed registration.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::NaiveDate;
use fraudops_data::reader::read_transactions;
use fraudops_model::ModelArtifact;
use fraudops_train::{SplitConfig, prepare};

use crate::cmd::train::file_sha256;
use crate::publish::{MlflowArgs, Tracker, Trained};
use crate::pushgateway::Pushgateway;

/// The artifact, its data, and where to publish it.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trained artifact (`model.json` from `fraudops train --no-mlflow`).
    #[arg(long, env = "REGISTER_MODEL", default_value = "out/model/model.json")]
    pub model: PathBuf,
    /// The transaction file it was trained on (checked against the artifact's checksum).
    #[arg(long, env = "TRAIN_DATA", default_value = "data/transactions.csv.gz")]
    pub data: PathBuf,
    /// MLflow tracking, registry and champion gate (MLFLOW_TRACKING_URI is required here).
    #[command(flatten)]
    pub mlflow: MlflowArgs,
    /// Prometheus Pushgateway (http://host:9091) that receives the outcome of a run that registered a
    /// version (time, promoted or not, the gate's two values) as job `fraudops-retrain`; unset: no push.
    #[arg(long, env = "PUSHGATEWAY_URL")]
    pub pushgateway_url: Option<String>,
}

/// Loads and verifies the artifact, re-creates its test window and publishes it.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Some(uri) = args.mlflow.tracking_uri.as_deref() else {
        bail!(
            "fraudops register needs an MLflow server: set MLFLOW_TRACKING_URI or --tracking-uri"
        );
    };
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("reading {}", args.model.display()))?;
    let artifact = ModelArtifact::from_json(&bytes)
        .and_then(|a| a.verify().map(|()| a))
        .with_context(|| format!("{} is not a valid model artifact", args.model.display()))?;
    // Checked before anything runs: a malformed URL is a configuration error, not a push failure.
    let pushgateway = args
        .pushgateway_url
        .as_deref()
        .filter(|url| !url.is_empty())
        .map(Pushgateway::new)
        .transpose()?;
    let tracker = Tracker::connect(uri, &args.mlflow)?;

    let sha = file_sha256(&args.data)?;
    if sha != artifact.training.data_sha256 {
        bail!(
            "{} (sha256 {sha}) is not the file {} was trained on (sha256 {}); the gate must score \
             the champion on the model's own test window",
            args.data.display(),
            args.model.display(),
            artifact.training.data_sha256
        );
    }
    let outcome = read_transactions(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    println!("read {}: {}", args.data.display(), outcome.report);
    let window = &artifact.training;
    let split = SplitConfig {
        train_start: NaiveDate::parse_from_str(&window.train_start, "%Y-%m-%d").with_context(
            || {
                format!(
                    "artifact train_start {:?} is not a date",
                    window.train_start
                )
            },
        )?,
        train_days: window.train_days,
        delay_days: window.delay_days,
        test_days: window.test_days,
    };
    let prepared = prepare(&outcome.transactions, &split, |_| {})?;
    println!(
        "model {} ({} trees), test window of {} rows",
        artifact.model_version,
        artifact.ensemble.trees.len(),
        prepared.split.test.len()
    );
    let published = tracker.publish(&Trained {
        artifact: &artifact,
        data: &prepared,
        data_path: &args.data,
        rows_seen: outcome.report.rows_seen,
        rows_skipped: outcome.report.total_skipped(),
        command: "register",
    })?;
    if let Some(gateway) = pushgateway {
        // The version is registered (and the alias moved) already: a failed push must not fail the
        // task, or Airflow would retry the registration.
        match gateway.push_success(&published.decision) {
            Ok(()) => println!(
                "pushgateway: pushed the outcome of version {} to {}",
                published.version,
                gateway.endpoint()
            ),
            Err(e) => eprintln!(
                "warning: pushgateway: {e:#}; version {} stays registered, the dashboard's last \
                 retraining time is not updated",
                published.version
            ),
        }
    }
    Ok(())
}
