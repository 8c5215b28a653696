//! What the CLI's test binaries share: the `fraudops` command with a clean environment, a free port, a
//! plain HTTP GET, a reader of the Prometheus text format, and `fraudops serve` as a child process.
//!
//! Why a child and not the library: these tests check what only the real binary does (its
//! configuration, its signals, the registry it follows), so they start it as a user would, on an
//! ephemeral port, and learn the port from its `server_started` log line.

#![allow(dead_code)] // each test binary includes this module and uses part of it

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A running `fraudops serve`, killed by PID when dropped (also when a test panics).
pub struct ServeProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its JSON log lines, read off its stdout by a thread so the server never blocks on a full pipe.
    logs: mpsc::Receiver<String>,
    /// The `server_started` log line as written.
    pub started_line: String,
}

impl ServeProcess {
    /// Spawns `cmd` (a `fraudops serve` command that listens on port 0 and logs to stdout) and returns
    /// once the server has logged `server_started` with its address, or panics after `timeout`.
    pub fn start(cmd: &mut Command, timeout: Duration) -> ServeProcess {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn fraudops serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, logs) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut serve = ServeProcess {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            logs,
            started_line: String::new(),
        };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let Ok(line) = serve.logs.recv_timeout(Duration::from_millis(100)) else {
                continue;
            };
            let log: serde_json::Value = serde_json::from_str(&line).expect("log lines are JSON");
            if log["event"] == "server_started" {
                serve.addr = log["addr"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("server_started has an addr");
                serve.started_line = line;
                return serve;
            }
        }
        panic!("serve did not log server_started within {timeout:?}");
    }

    /// Whether the server logs `event` within `timeout` (earlier lines are skipped and dropped).
    pub fn wait_for_event(&self, event: &str, timeout: Duration) -> bool {
        let needle = format!("\"event\":\"{event}\"");
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(line) = self.logs.recv_timeout(Duration::from_millis(100))
                && line.contains(&needle)
            {
                return true;
            }
        }
        false
    }

    /// The process, to signal it or wait for its exit.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `fraudops` with a clean environment: no `.env` from the repository (the working directory is the
/// system's temporary directory), nothing inherited but `PATH`.
pub fn fraudops_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fraudops"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .current_dir(std::env::temp_dir());
    cmd
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("an ephemeral port")
}

/// The sum of every sample of `name` in the Prometheus text `text` whose labels contain all of `labels`
/// (e.g. `topic="x"`); `None` when there is no such sample.
pub fn prometheus_sum(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let mut found = None;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let (metric_name, label_text) = series.split_once('{').unwrap_or((series, ""));
        if metric_name != name || !labels.iter().all(|l| label_text.contains(l)) {
            continue;
        }
        if let Ok(v) = value.parse::<f64>() {
            *found.get_or_insert(0.0) += v;
        }
    }
    found
}

/// A plain HTTP/1.1 GET; the whole response (status line, headers, body), or "" if it failed.
pub fn http_get(addr: &str, path: &str) -> String {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return String::new();
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(request.as_bytes()).is_err() {
        return String::new();
    }
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}
