//! Helpers: the binary as a command, small simulated data, MLflow REST reads, a served API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use fraudops_mlflow::testing::rest;
use serde_json::Value;

use crate::common::ServeProcess;

/// The training window every test uses on [`simulate`]'s data.
pub const TRAIN_START: &str = "2018-05-01";
/// Flags that make a deliberately weak model: one stump.
pub const TINY: [&str; 4] = ["--iterations", "1", "--max-depth", "1"];
/// What the runs record as the code version (the test's working directory is not a git checkout).
pub const FAKE_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// `fraudops` with a clean environment (no `.env`, no inherited MLflow settings).
pub fn fraudops(dir: &Path) -> Command {
    let mut cmd = crate::common::fraudops_command();
    cmd.env("GIT_COMMIT", FAKE_COMMIT).current_dir(dir);
    cmd
}

/// Runs a command to completion and returns its output with stdout and stderr as text.
pub fn run(cmd: &mut Command) -> (Output, String, String) {
    let output = cmd.output().expect("run fraudops");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

/// Two months of a small population (about 58k transactions, 0.2 s): enough for a 7-day train and
/// test window starting [`TRAIN_START`] in which 200 trees clearly beat one stump.
pub fn simulate(dir: &Path) -> PathBuf {
    let data = dir.join("transactions.csv.gz");
    let (output, stdout, stderr) = run(fraudops(dir).args([
        "simulate",
        "--out",
        data.to_str().expect("utf-8 path"),
        "--customers",
        "500",
        "--terminals",
        "1000",
        "--days",
        "60",
        "--seed",
        "7",
    ]));
    assert!(output.status.success(), "simulate: {stdout}\n{stderr}");
    data
}

/// `fraudops train` against `tracking_uri`, registering under `model_name` in `experiment`.
pub fn train(
    dir: &Path,
    tracking_uri: &str,
    experiment: &str,
    model_name: &str,
    data: &Path,
    out: &str,
    extra: &[&str],
) -> (Output, String, String) {
    run(fraudops(dir)
        .args(["train", "--train-start", TRAIN_START, "--data"])
        .arg(data)
        .args(["--out", out])
        .args(extra)
        .env("MLFLOW_TRACKING_URI", tracking_uri)
        .env("MLFLOW_EXPERIMENT", experiment)
        .env("MLFLOW_MODEL_NAME", model_name))
}

/// A test's own directory with [`simulate`]'s data, training against one MLflow server into one
/// experiment and registered model.
pub struct Retraining {
    /// Where the data and every `--out` folder are (removed when dropped).
    pub dir: tempfile::TempDir,
    /// The simulated transactions.
    pub data: PathBuf,
    /// The MLflow tracking URI.
    pub uri: String,
    /// The MLflow experiment every run goes to.
    pub experiment: &'static str,
    /// The registered model every version goes to.
    pub model: &'static str,
}

impl Retraining {
    /// A fresh directory with simulated data.
    pub fn new(uri: &str, experiment: &'static str, model: &'static str) -> Retraining {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = simulate(dir.path());
        Retraining {
            dir,
            data,
            uri: uri.to_owned(),
            experiment,
            model,
        }
    }

    /// [`train`] into the folder `out`, with `extra` flags.
    pub fn train(&self, out: &str, extra: &[&str]) -> (Output, String, String) {
        let dir = self.dir.path();
        train(
            dir,
            &self.uri,
            self.experiment,
            self.model,
            &self.data,
            out,
            extra,
        )
    }

    /// [`Self::train`], which must succeed (a gate's rejection is a decision, not a failure); its stdout.
    pub fn train_ok(&self, out: &str, extra: &[&str]) -> String {
        let (output, stdout, stderr) = self.train(out, extra);
        assert!(output.status.success(), "train {out}: {stdout}\n{stderr}");
        stdout
    }

    /// The `model_version` of the artifact trained into `out`.
    pub fn version_in(&self, out: &str) -> String {
        artifact_version(&self.dir.path().join(out).join("model.json"))
    }

    /// Asserts that `stdout` reports `gate: <decision>` and that `@champion` is now on `champion`.
    pub async fn assert_gate(&self, stdout: &str, decision: &str, champion: &str) {
        assert!(stdout.contains(&format!("gate: {decision}")), "{stdout}");
        assert_eq!(
            alias_version(&self.uri, self.model, "champion").await,
            champion
        );
    }
}

/// The version an alias points at, through the REST API.
pub async fn alias_version(uri: &str, model: &str, alias: &str) -> String {
    let got = rest::get(
        uri,
        "registered-models/alias",
        &[("name", model), ("alias", alias)],
    )
    .await;
    got["model_version"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// A running `fraudops serve` following a registered model, killed by PID when dropped.
pub struct Serve(ServeProcess);

impl Serve {
    /// Starts `serve` on an ephemeral loopback port following `models:/<model>@champion`,
    /// re-resolving the alias every second, and returns once it has logged its address.
    pub fn follow(dir: &Path, tracking_uri: &str, model: &str) -> Serve {
        Serve(ServeProcess::start(
            fraudops(dir)
                .args(["serve", "--bind", "127.0.0.1", "--port", "0"])
                .env("MLFLOW_TRACKING_URI", tracking_uri)
                .env("MLFLOW_MODEL_URI", format!("models:/{model}@champion"))
                .env("MODEL_POLL_SECONDS", "1")
                .env("REPLICA_ID", "retrain-test"),
            Duration::from_secs(30),
        ))
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.0.addr)
    }

    /// Polls `/ready` until 200, then returns the served `model_version` from `/`.
    pub async fn wait_ready(&self) -> String {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = client.get(self.url("/ready")).send().await
                && r.status() == 200
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "serve did not become ready within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        self.model_version().await
    }

    /// The `model_version` serve answers `GET /` with now.
    pub async fn model_version(&self) -> String {
        let info: Value = reqwest::get(self.url("/"))
            .await
            .expect("GET /")
            .json()
            .await
            .expect("JSON");
        info["model_version"]
            .as_str()
            .expect("model_version in GET /")
            .to_owned()
    }
}

/// One scoring request, as the README shows it.
pub fn transaction(i: u64) -> Value {
    serde_json::json!({
        "transaction_id": format!("tx-{i}"),
        "amount": 20.0 + (i % 300) as f64,
        "customer_id": i % 500,
        "terminal_id": i % 1000,
        "tx_datetime": "2018-06-15 02:13:00",
        "merchant_category": "electronics",
    })
}

/// The artifact's `model_version` (`gbdt-...`) in a `model.json`.
pub fn artifact_version(path: &Path) -> String {
    let json: Value =
        serde_json::from_slice(&std::fs::read(path).expect("read model.json")).expect("JSON");
    json["model_version"]
        .as_str()
        .expect("model_version")
        .to_owned()
}
