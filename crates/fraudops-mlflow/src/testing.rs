//! A real `mlflow server` for tests of this crate and of the crates that use it (feature `testing`).
//!
//! Why: the client is only worth something if it works against the server it talks to in
//! production, so its tests, the trainer's and the API server's registry tests start the real
//! thing (sqlite backend, local artifact store behind the artifact proxy) on a free loopback port.
//!
//! Which binary: `MLFLOW_BIN` (`scripts/test-mlflow.sh` sets it from `scripts/ensure/mlflow-venv.sh`).
//! When it is unset, [`MlflowServer::start_or_skip`] writes a visible `SKIPPED` line to the
//! terminal (past the test harness's output capture) and the test returns early, so a plain
//! `cargo test` stays green and fast without Python. With `FRAUDOPS_REQUIRE_MLFLOW=1` a missing
//! `MLFLOW_BIN` is a failure instead: the test script sets it so nothing can silently skip there.
//!
//! Cleanup: the server runs in its own process group (the `mlflow` CLI, uvicorn and its workers);
//! dropping [`MlflowServer`] (also on panic) sends the group SIGTERM, then SIGKILL if it lingers.
//! [`shared`] servers live until the test process exits and are stopped by an `atexit` hook.

pub mod rest;

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The environment variable naming the `mlflow` executable.
pub const BIN_ENV: &str = "MLFLOW_BIN";
/// Set to `1` to turn a missing [`BIN_ENV`] into a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "FRAUDOPS_REQUIRE_MLFLOW";

/// How long the server may take to answer `/health`: its first start migrates the sqlite schema,
/// and a loaded 2-core CI machine needs tens of seconds for MLflow's imports.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a stopped server may take to exit after SIGTERM before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// One running `mlflow server` with its own temporary store; stopped when dropped.
pub struct MlflowServer {
    /// The tracking URI clients use, `http://127.0.0.1:<port>`.
    uri: String,
    /// The `mlflow` CLI process, leader of the server's process group.
    child: Child,
    /// Holds the sqlite file, the artifact store and the server log; removed on drop.
    dir: tempfile::TempDir,
    /// Set once the process group has been stopped.
    stopped: bool,
}

impl MlflowServer {
    /// Starts a fresh server when `MLFLOW_BIN` is set; otherwise prints why `test` is skipped and
    /// returns `None` (or panics when `FRAUDOPS_REQUIRE_MLFLOW=1`). Panics if the server cannot
    /// start, with the tail of its log.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        let bin = bin_or_skip(test)?;
        match Self::start(&bin) {
            Ok(server) => Some(server),
            Err(e) => panic!("{test}: {e}"),
        }
    }

    /// Starts `bin server` on a free loopback port and waits until `/health` answers 200.
    pub fn start(bin: &Path) -> Result<Self, String> {
        let dir = tempfile::Builder::new()
            .prefix("fraudops-mlflow-")
            .tempdir()
            .map_err(|e| format!("creating a temporary directory: {e}"))?;
        // A port can be taken between probing and binding; a few tries make that harmless.
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port().map_err(|e| format!("finding a free port: {e}"))?;
            let mut child = spawn(bin, dir.path(), port)
                .map_err(|e| format!("starting {}: {e}", bin.display()))?;
            match wait_healthy(&mut child, dir.path(), port) {
                Ok(()) => {
                    return Ok(MlflowServer {
                        uri: format!("http://127.0.0.1:{port}"),
                        child,
                        dir,
                        stopped: false,
                    });
                }
                Err(e) => {
                    stop_group(&mut child);
                    if !e.contains("address already in use") {
                        return Err(e);
                    }
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    /// The tracking URI (`http://127.0.0.1:<port>`), what `MLFLOW_TRACKING_URI` would hold.
    pub fn uri(&self) -> &str {
        &self.uri
    }

    /// The process id of the server's process group leader, for tests that kill it on purpose.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the whole process group (SIGTERM, then SIGKILL after a grace period) and reaps the
    /// leader. Idempotent; the store stays on disk until drop.
    pub fn stop(&mut self) {
        if !self.stopped {
            self.stopped = true;
            stop_group(&mut self.child);
        }
    }

    /// The server's combined stdout and stderr so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(log_path(self.dir.path())).unwrap_or_default()
    }
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The tracking URI of one server shared by all tests of this test binary (started on first use,
/// stopped when the process exits), or `None` when skipping as in [`MlflowServer::start_or_skip`].
/// Sharing saves MLflow's start-up (seconds of Python imports) per test; tests that kill their
/// server must start their own.
pub fn shared(test: &str) -> Option<String> {
    static SHARED: Mutex<Option<MlflowServer>> = Mutex::new(None);
    extern "C" fn stop_shared() {
        let server = match SHARED.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(server);
    }
    let bin = bin_or_skip(test)?;
    let mut guard = SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if guard.is_none() {
        match MlflowServer::start(&bin) {
            Ok(server) => {
                // SAFETY: registering a plain `extern "C" fn()` with no preconditions.
                unsafe { libc::atexit(stop_shared) };
                *guard = Some(server);
            }
            Err(e) => panic!("{test}: shared MLflow server: {e}"),
        }
    }
    guard.as_ref().map(|s| s.uri().to_owned())
}

/// What MLflow's own Python client says about `model_uri` (e.g. `models:/NAME@champion`):
/// `mlflow.models.get_model_info` run by the `python` beside `MLFLOW_BIN` (the venv's; `python3`
/// when there is none) with `MLFLOW_TRACKING_URI` set, as JSON with the keys `inputs` and
/// `outputs` (the signature's column lists, `null` without one), `flavors`, `model_uri`,
/// `model_id`, `run_id`, `metrics` (the logged model's metric names) and `params`.
///
/// Why: "Python users can read the signature" is only shown by Python reading it. Panics (with
/// Python's stderr) when the call fails; only for tests that already hold a server.
pub fn python_model_info(tracking_uri: &str, model_uri: &str) -> serde_json::Value {
    const SCRIPT: &str = r#"
import json, sys
import mlflow
info = mlflow.models.get_model_info(sys.argv[1])
sig = info.signature
print(json.dumps({
    "inputs": sig.inputs.to_dict() if sig is not None and sig.inputs is not None else None,
    "outputs": sig.outputs.to_dict() if sig is not None and sig.outputs is not None else None,
    "flavors": info.flavors,
    "model_uri": info.model_uri,
    "model_id": info.model_id,
    "run_id": info.run_id,
    "metrics": sorted({m.key for m in (info.metrics or [])}),
    "params": info.params,
}))
"#;
    let stdout = run_python(
        tracking_uri,
        SCRIPT,
        &[model_uri],
        &format!("get_model_info({model_uri})"),
    );
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("get_model_info output {last:?}: {e}"))
}

/// What `mlflow.pyfunc.load_model(model_uri).predict(frame)` returns in MLflow's own Python, for a
/// frame of float64 `columns` holding `rows` (`None` is NaN, a missing value): one number per row.
///
/// Why: "a Python user can score with the registered model" is only shown by Python scoring with it,
/// through MLflow's loader, its flavor lookup and its signature enforcement. Panics (with Python's
/// stderr) when the call fails; only for tests that already hold a server.
pub fn python_pyfunc_predict(
    tracking_uri: &str,
    model_uri: &str,
    columns: &[&str],
    rows: &[Vec<Option<f64>>],
) -> Vec<f64> {
    const SCRIPT: &str = r#"
import json, sys
import mlflow.pyfunc
import pandas as pd
frame = json.loads(sys.argv[2])
data = pd.DataFrame(frame["rows"], columns=frame["columns"], dtype="float64")
out = mlflow.pyfunc.load_model(sys.argv[1]).predict(data)
print(json.dumps([float(v) for v in list(out)]))
"#;
    let frame = serde_json::json!({ "columns": columns, "rows": rows }).to_string();
    let stdout = run_python(tracking_uri, SCRIPT, &[model_uri, &frame], "pyfunc predict");
    let last = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("pyfunc predict output {last:?}: {e}"))
}

/// Runs `script` with `args` in the `python` beside `MLFLOW_BIN` (the venv's; `python3` when there is
/// none) against `tracking_uri`; its stdout, or a panic naming `what` with Python's stderr.
fn run_python(tracking_uri: &str, script: &str, args: &[&str], what: &str) -> String {
    let bin = std::env::var_os(BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_default();
    let python = bin
        .parent()
        .map(|dir| dir.join("python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"));
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .env("MLFLOW_TRACKING_URI", tracking_uri)
        .env_remove("MLFLOW_REGISTRY_URI")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{} {what} failed: {}\n{stdout}\n{}",
        python.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// `MLFLOW_BIN` as a path, or `None` after printing the skip line.
fn bin_or_skip(test: &str) -> Option<PathBuf> {
    match std::env::var_os(BIN_ENV).filter(|v| !v.is_empty()) {
        Some(bin) => Some(PathBuf::from(bin)),
        None if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => {
            panic!("{test}: {REQUIRE_ENV}=1 but {BIN_ENV} is not set")
        }
        None => {
            // Straight to the terminal: libtest captures only the print macros, and a skip nobody
            // sees is how real-server tests rot.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: needs a real MLflow server; set {BIN_ENV} (scripts/test-mlflow.sh does)"
            );
            None
        }
    }
}

fn log_path(dir: &Path) -> PathBuf {
    dir.join("server.log")
}

fn spawn(bin: &Path, dir: &Path, port: u16) -> std::io::Result<Child> {
    let log = File::create(log_path(dir))?;
    let backend = format!("sqlite:///{}", dir.join("mlflow.db").display());
    let artifacts = dir.join("artifacts");
    Command::new(bin)
        .arg("server")
        .args(["--backend-store-uri", &backend])
        .arg("--artifacts-destination")
        .arg(&artifacts)
        .arg("--serve-artifacts")
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--workers", "1"])
        // The background job runner (huey consumers) is not needed for tracking and the registry
        // and doubles the start-up time.
        .env("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `GET /health` answered 200 (plain HTTP/1.0, so this module needs no HTTP client).
fn health_ok(port: u16) -> bool {
    let Ok(mut stream) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))
    else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    if stream
        .write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 16];
    let mut read = 0;
    while read < head.len() {
        match stream.read(&mut head[read..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
    }
    head[..read].starts_with(b"HTTP/1.1 200") || head[..read].starts_with(b"HTTP/1.0 200")
}

/// Polls `/health` until it answers 200, the server exits, or [`START_TIMEOUT`] passes.
fn wait_healthy(child: &mut Child, dir: &Path, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    let log = || {
        tail(
            &std::fs::read_to_string(log_path(dir)).unwrap_or_default(),
            40,
        )
    };
    loop {
        if health_ok(port) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "mlflow server exited with {status} before answering; log tail:\n{}",
                log()
            ));
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "mlflow server did not answer /health within {START_TIMEOUT:?}; log tail:\n{}",
                log()
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// SIGTERM to the child's process group, SIGKILL to whatever is left after [`STOP_GRACE`], and the
/// leader reaped.
fn stop_group(child: &mut Child) {
    let Ok(pgid) = i32::try_from(child.id()) else {
        return;
    };
    signal_group(pgid, libc::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => break,
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    // Whatever is left of the group (uvicorn workers outlive the CLI when it dies first).
    signal_group(pgid, libc::SIGKILL);
    let _ = child.wait();
}

fn signal_group(pgid: i32, signal: i32) {
    // SAFETY: kill(2) with a negative pid signals the process group we created for the server.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
