//! What every Kafka test needs: a real broker (tansu) on a free port, `fraudops` processes killed by PID
//! when the test ends, polling instead of sleeping, and readers for topics and `/metrics`.

use std::collections::HashMap;

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fraudops_stream::{Record, read_to_end};
use fraudops_wire::{DeadLetter, PredictionEvent};

pub use crate::common::{free_port, http_get, prometheus_sum};

/// Polls `condition` every 50 ms until it holds; panics with `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    wait_until(what, timeout, || {
        if condition() {
            Ok(())
        } else {
            Err(String::new())
        }
    });
}

/// Polls `check` every 50 ms until it is `Ok`; panics with `what` and the last `Err` (the state seen)
/// after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + timeout;
    let mut last = String::new();
    while Instant::now() < deadline {
        match check() {
            Ok(()) => return,
            Err(state) => last = state,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for: {what}; last seen: {last}");
}

/// A child process, killed (SIGKILL) and reaped by PID when dropped. Its output goes to a log file that is
/// printed if the test fails.
pub struct Proc {
    child: Child,
    name: String,
    log: PathBuf,
}

impl Proc {
    /// Starts `command`, logging to `dir/<name>.log`.
    pub fn spawn(mut command: Command, name: &str, dir: &Path) -> Self {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("create log file");
        let err = file.try_clone().expect("clone log file");
        let child = command
            .stdout(Stdio::from(file))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Self {
            child,
            name: name.to_owned(),
            log,
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGKILL: the crash the at-least-once guarantee is about.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns whether it exited successfully.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let pid = i32::try_from(self.child.id()).expect("pid fits i32");
        // SAFETY: sending a signal to our own child by its PID.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        self.wait(timeout)
    }

    /// Waits up to `timeout` for the process to exit; returns whether it exited successfully.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} did not exit within {timeout:?}\n{}",
            self.name,
            self.log_tail(30)
        );
    }

    /// Everything the process wrote.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn log_tail(&self, lines: usize) -> String {
        let text = self.output();
        let all: Vec<&str> = text.lines().collect();
        let tail = all[all.len().saturating_sub(lines)..].join("\n");
        format!("--- last lines of {} ---\n{tail}", self.name)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tail(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fraudops` with a clean environment (no `.env`, no inherited Kafka or model settings).
pub fn fraudops(args: &[&str]) -> Command {
    let mut cmd = crate::common::fraudops_command();
    cmd.env("RUST_LOG", "info").args(args);
    cmd
}

/// Runs `fraudops ARGS` to completion and fails the test, with its stderr, unless it succeeded.
pub fn fraudops_ok(args: &[&str]) -> std::process::Output {
    let out = fraudops(args)
        .output()
        .unwrap_or_else(|e| panic!("run fraudops {}: {e}", args[0]));
    assert!(
        out.status.success(),
        "fraudops {} failed:\n{}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A tansu broker with in-memory storage on a free port, and a scratch directory for the test's files.
pub struct Broker {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Scratch directory (logs, results files).
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Broker {
    /// Starts tansu and waits until it accepts connections.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let mut cmd = Command::new("tansu");
        cmd.args([
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
        ]);
        let proc = Proc::spawn(cmd, "tansu", dir.path());
        let addr = format!("127.0.0.1:{port}");
        wait_for(
            "tansu to accept connections",
            Duration::from_secs(20),
            || TcpStream::connect(&addr).is_ok(),
        );
        Self {
            addr,
            dir,
            _proc: proc,
        }
    }

    /// A path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Starts a `fraudops` command, logging into the scratch directory.
    pub fn spawn(&self, name: &str, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut cmd = fraudops(args);
        cmd.env("KAFKA_BOOTSTRAP_SERVERS", &self.addr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Proc::spawn(cmd, name, self.dir.path())
    }

    /// Every message of `topic`.
    pub fn read(&self, topic: &str) -> Vec<Record> {
        read_to_end(&self.addr, topic, Duration::from_secs(60))
            .unwrap_or_else(|e| panic!("reading {topic}: {e}"))
    }

    /// Every prediction on `topic`.
    pub fn predictions(&self, topic: &str) -> Vec<PredictionEvent> {
        self.read(topic)
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("prediction JSON"))
            .collect()
    }

    /// Every dead letter on `topic`.
    pub fn dead_letters(&self, topic: &str) -> Vec<DeadLetter> {
        self.read(topic)
            .iter()
            .map(|r| serde_json::from_slice(&r.payload).expect("dead letter JSON"))
            .collect()
    }

    /// Writes raw `(key, payload)` messages and waits for the acknowledgements.
    pub fn produce(&self, topic: &str, messages: &[(Option<&[u8]>, &[u8])]) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime
            .block_on(fraudops_stream::produce_all(&self.addr, topic, messages))
            .expect("produce");
    }
}

/// The scoring API as a process on a free port.
pub struct Api {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// Kept alive (and killed on drop).
    _proc: Proc,
}

impl Api {
    /// Starts `fraudops serve` with `REPLICA_ID=replica_id` and waits until it is ready.
    pub fn start(broker: &Broker, replica_id: &str) -> Self {
        let port = free_port();
        let mut cmd = fraudops(&["serve", "--bind", "127.0.0.1", "--port", &port.to_string()]);
        // One log line per prediction would only fill the disk.
        cmd.env("REPLICA_ID", replica_id).env("RUST_LOG", "warn");
        let proc = Proc::spawn(cmd, "api", broker.dir.path());
        let addr = format!("127.0.0.1:{port}");
        wait_for("the API to be ready", Duration::from_secs(20), || {
            http_get(&addr, "/ready").starts_with("HTTP/1.1 200")
        });
        Self {
            url: format!("http://{addr}"),
            addr,
            _proc: proc,
        }
    }
}

/// The sum of every sample of `name` whose labels contain all of `labels` (e.g. `topic="x"`), from the
/// `/metrics` of the process listening on `port`; `None` when the endpoint does not answer or has none.
pub fn metric(port: u16, name: &str, labels: &[&str]) -> Option<f64> {
    let text = http_get(&format!("127.0.0.1:{port}"), "/metrics");
    prometheus_sum(&text, name, labels)
}

/// The input ids on `transactions-input`, with how many times each was written.
pub fn input_ids(broker: &Broker, topic: &str) -> HashMap<u64, usize> {
    let mut ids = HashMap::new();
    for r in broker.read(topic) {
        let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("event JSON");
        let id = v["transaction_id"].as_u64().expect("numeric id");
        *ids.entry(id).or_insert(0) += 1;
    }
    ids
}

/// The numeric transaction id of a prediction.
pub fn prediction_id(p: &PredictionEvent) -> u64 {
    match &p.prediction.transaction_id {
        fraudops_wire::TransactionId::Number(n) => *n,
        fraudops_wire::TransactionId::Text(t) => panic!("unexpected string id {t}"),
    }
}

/// Set to `1` to make a missing `redis-server` fail the tests that need one (scripts/test-kafka.sh does).
pub const REQUIRE_REDIS_ENV: &str = "FRAUDOPS_REQUIRE_REDIS";

/// A real `redis-server` (Debian's) on a free port, without persistence (`--save "" --appendonly no`),
/// logging into the broker's scratch directory and killed by PID when dropped.
pub struct Redis {
    /// Its port on 127.0.0.1.
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Redis {
    /// Starts it, or prints a visible `SKIPPED` line for `test` and returns `None` when `redis-server`
    /// is not installed (a failure with `FRAUDOPS_REQUIRE_REDIS=1`).
    pub fn start_or_skip(broker: &Broker, test: &str) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            assert!(
                !std::env::var(REQUIRE_REDIS_ENV).is_ok_and(|v| v == "1"),
                "{test}: {REQUIRE_REDIS_ENV}=1 but redis-server is not installed \
                 (scripts/ensure/apt.sh redis-server:redis-server)"
            );
            println!(
                "    SKIPPED {test}: redis-server is not installed (scripts/test-kafka.sh installs it)"
            );
            return None;
        }
        let mut redis = Self {
            port: free_port(),
            dir: broker.dir.path().to_owned(),
            proc: None,
        };
        redis.restart();
        Some(redis)
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// SIGKILL (an outage); the data is gone (no persistence).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts it (again) on the same port and waits until it answers `PING`.
    pub fn restart(&mut self) {
        self.kill();
        let mut cmd = Command::new("redis-server");
        cmd.args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .current_dir(&self.dir);
        self.proc = Some(Proc::spawn(cmd, "redis", &self.dir));
        wait_for("redis-server to answer", Duration::from_secs(20), || {
            self.cli(&["PING"]) == "PONG"
        });
    }

    /// `redis-cli -p <port> <args>`: its output, trimmed ("" if it failed).
    pub fn cli(&self, args: &[&str]) -> String {
        Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }
}
