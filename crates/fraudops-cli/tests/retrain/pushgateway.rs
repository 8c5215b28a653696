//! `fraudops register --pushgateway-url` against a real Prometheus Pushgateway: what the dashboard's
//! "Time since last successful retraining" reads, replaced by each run, and a dead gateway that
//! only warns.
//!
//! The gateway binary: `PUSHGATEWAY_BIN`, else `prometheus-pushgateway` (Debian's name) or
//! `pushgateway` on `PATH`; without one the test prints `SKIPPED` and passes, unless
//! `FRAUDOPS_REQUIRE_PUSHGATEWAY=1` (`scripts/test-mlflow.sh` installs it and sets both).

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fraudops_mlflow::testing;
use serde_json::Value;

use crate::common::{free_port, http_get, prometheus_sum};
use crate::support::{Retraining, TINY, TRAIN_START, fraudops, run};

const BIN_ENV: &str = "PUSHGATEWAY_BIN";
const REQUIRE_ENV: &str = "FRAUDOPS_REQUIRE_PUSHGATEWAY";
/// The series' labels once pushed to the job group (the gateway adds `instance=""`).
const JOB: &str = "job=\"fraudops-retrain\"";

#[test]
fn register_pushes_the_retraining_outcome_and_a_dead_gateway_only_warns() {
    let test = "register_pushes_the_retraining_outcome_and_a_dead_gateway_only_warns";
    // The binary first: a skip should not wait for MLflow's start-up.
    let Some(bin) = bin_or_skip(test) else {
        return;
    };
    let Some(uri) = testing::shared(test) else {
        return;
    };
    let gateway = Pushgateway::start(test, &bin);
    let t = Retraining::new(&uri, "push-experiment", "push-model");
    let dir = t.dir.path();
    let register = |folder: &str, pushgateway: &str| {
        let mut cmd = fraudops(dir);
        cmd.args(["register", "--model", &format!("{folder}/model.json")])
            .arg("--data")
            .arg(&t.data)
            .args(["--decision-out", &format!("{folder}/decision.json")])
            .env("MLFLOW_TRACKING_URI", &uri)
            .env("MLFLOW_EXPERIMENT", t.experiment)
            .env("MLFLOW_MODEL_NAME", t.model)
            .env("PUSHGATEWAY_URL", pushgateway);
        run(&mut cmd)
    };
    train_offline(dir, &t.data, "good", &[]);
    train_offline(dir, &t.data, "tiny", &TINY);

    // Nothing pushed yet.
    assert_eq!(gateway.value("ml_model_retrain_last_promoted"), None);

    // 1. The first version: promoted, no champion to compare with.
    let before = unix_now();
    let (out, stdout, stderr) = register("good", gateway.url());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("gate: PROMOTED"), "{stdout}");
    assert!(
        stdout.contains("pushgateway: pushed the outcome of version 1"),
        "{stdout}"
    );
    let pushed_at = gateway
        .value("ml_model_retrain_last_success_timestamp_seconds")
        .expect("timestamp pushed");
    assert!(
        (before - 1.0..=unix_now() + 1.0).contains(&pushed_at),
        "timestamp {pushed_at} is not between {before} and now"
    );
    assert_eq!(gateway.value("ml_model_retrain_last_promoted"), Some(1.0));
    let decided = decision_file(dir, "good");
    assert_close(
        gateway.value("ml_model_retrain_gate_candidate_value"),
        &decided["candidate"],
    );
    assert!(
        gateway
            .metrics()
            .contains("ml_model_retrain_gate_candidate_value{instance=\"\",job=\"fraudops-retrain\",metric=\"average_precision\"}"),
        "the gate metric is the label:\n{}",
        gateway.metrics()
    );
    assert_eq!(
        gateway.value("ml_model_retrain_gate_champion_value"),
        None,
        "no champion, no champion value"
    );

    // 2. A worse model: registered, not promoted; the push replaces the group with its outcome.
    let (out, stdout, stderr) = register("tiny", gateway.url());
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("gate: REJECTED"), "{stdout}");
    assert_eq!(gateway.value("ml_model_retrain_last_promoted"), Some(0.0));
    let second = gateway
        .value("ml_model_retrain_last_success_timestamp_seconds")
        .expect("timestamp");
    assert!(second >= pushed_at, "{second} < {pushed_at}");
    let decided = decision_file(dir, "tiny");
    assert_close(
        gateway.value("ml_model_retrain_gate_candidate_value"),
        &decided["candidate"],
    );
    assert_close(
        gateway.value("ml_model_retrain_gate_champion_value"),
        &decided["champion"],
    );
    assert!(
        gateway.value("ml_model_retrain_gate_champion_value")
            > gateway.value("ml_model_retrain_gate_candidate_value"),
        "the stump lost to the champion"
    );

    // 3. A gateway that is down: the registration stands, the command says why it did not push.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let (out, stdout, stderr) = register("tiny", &dead);
    assert!(
        out.status.success(),
        "a failed push failed the run: {stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("registered push-model version 3"),
        "{stdout}"
    );
    assert!(
        stderr.contains("warning: pushgateway") && stderr.contains(&dead),
        "{stderr}"
    );
    assert_eq!(
        gateway.value("ml_model_retrain_last_success_timestamp_seconds"),
        Some(second),
        "the live gateway still holds the last pushed run"
    );

    // A malformed URL is refused before anything is registered.
    let (out, _, stderr) = register("tiny", "pushgateway:9091");
    assert!(!out.status.success());
    assert!(stderr.contains("PUSHGATEWAY_URL"), "{stderr}");
}

/// `fraudops train --no-mlflow` into `out` (what the DAG's train step does).
fn train_offline(dir: &Path, data: &Path, out: &str, extra: &[&str]) {
    let (output, stdout, stderr) = run(fraudops(dir)
        .args([
            "train",
            "--no-mlflow",
            "--train-start",
            TRAIN_START,
            "--data",
        ])
        .arg(data)
        .args(["--out", out])
        .args(extra));
    assert!(output.status.success(), "train {out}: {stdout}\n{stderr}");
}

fn decision_file(dir: &Path, folder: &str) -> Value {
    let bytes = std::fs::read(dir.join(folder).join("decision.json")).expect("decision file");
    serde_json::from_slice(&bytes).expect("decision JSON")
}

fn assert_close(pushed: Option<f64>, decided: &Value) {
    let decided = decided.as_f64().expect("a number in the decision file");
    let pushed = pushed.expect("pushed");
    assert!(
        (pushed - decided).abs() < 1e-12,
        "pushed {pushed}, decided {decided}"
    );
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// A real Pushgateway on a free loopback port, in memory only; killed by PID when dropped.
struct Pushgateway {
    child: Child,
    addr: String,
    url: String,
    /// Holds its log.
    dir: tempfile::TempDir,
}

impl Pushgateway {
    /// Starts `bin` and waits until `/-/ready` answers 200; panics if it does not.
    fn start(test: &str, bin: &Path) -> Pushgateway {
        let mut last = String::new();
        // A port can be taken between probing and binding; a few tries make that harmless.
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("tempdir");
            let addr = format!("127.0.0.1:{}", free_port());
            let log = std::fs::File::create(dir.path().join("pushgateway.log")).expect("log file");
            let child = Command::new(bin)
                .arg(format!("--web.listen-address={addr}"))
                // Debian's default persists to /var/lib; a test keeps everything in memory.
                .arg("--persistence.file=")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log"))
                .stderr(log)
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{test}: starting {}: {e}", bin.display()));
            let mut gateway = Pushgateway {
                child,
                url: format!("http://{addr}"),
                addr,
                dir,
            };
            match gateway.wait_ready() {
                Ok(()) => return gateway,
                Err(e) => last = e, // dropping `gateway` kills what is left of it
            }
        }
        panic!("{test}: the pushgateway did not start: {last}");
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if http_get(&self.addr, "/-/ready").starts_with("HTTP/1.1 200") {
                return Ok(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("exited with {status}: {}", self.log()));
            }
            if Instant::now() >= deadline {
                return Err(format!("not ready within 30 s: {}", self.log()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pushgateway.log")).unwrap_or_default()
    }

    /// The base URL, what `PUSHGATEWAY_URL` holds.
    fn url(&self) -> &str {
        &self.url
    }

    /// The body of its `/metrics` (what Prometheus scrapes).
    fn metrics(&self) -> String {
        let response = http_get(&self.addr, "/metrics");
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "GET /metrics: {response}"
        );
        response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_owned())
            .unwrap_or_default()
    }

    /// The value of `name` in the retraining's job group, if pushed.
    fn value(&self, name: &str) -> Option<f64> {
        prometheus_sum(&self.metrics(), name, &[JOB])
    }
}

impl Drop for Pushgateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The gateway binary, or `None` after printing the skip line (a panic when it is required).
fn bin_or_skip(test: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os(BIN_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let on_path = || {
        let path = std::env::var_os("PATH")?;
        std::env::split_paths(&path)
            .flat_map(|dir| ["prometheus-pushgateway", "pushgateway"].map(|n| dir.join(n)))
            .find(|candidate| candidate.is_file())
    };
    if let Some(bin) = from_env.or_else(on_path) {
        return Some(bin);
    }
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!(
            "{test}: {REQUIRE_ENV}=1 but there is no pushgateway ({BIN_ENV} unset, none on PATH)"
        );
    }
    // Straight to the terminal: libtest captures only the print macros.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs a Prometheus Pushgateway; set {BIN_ENV} (scripts/test-mlflow.sh does)"
    );
    None
}
