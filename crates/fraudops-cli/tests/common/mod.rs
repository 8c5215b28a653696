//! What several of the CLI's test binaries share: `fraudops serve` as a child process.
//!
//! Why a child and not the library: these tests check what only the real binary does (its
//! configuration, its signals, the registry it follows), so they start it as a user would, on an
//! ephemeral port, and learn the port from its `server_started` log line.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
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
    #[allow(dead_code)] // read by the serve process tests only
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
    #[allow(dead_code)] // not every test binary that includes this module waits for events
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
    #[allow(dead_code)] // as above
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
