//! The processes the drill starts (broker, replicas, stream worker, attack, Prometheus, Alertmanager) and
//! how they are stopped: by PID, SIGTERM first (so a replica drains as in a pod), SIGKILL after a grace
//! period. Each child runs in its own process group, so a Ctrl-C in the terminal reaches only the drill,
//! which then stops them in order; and each gets `PR_SET_PDEATHSIG`, so even a drill killed with SIGKILL
//! leaves no process behind.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::process::{Child, ChildStdout};

use crate::error::DrillError;

/// PIDs of the children still running, for the last-resort cleanup.
#[derive(Debug, Clone, Default)]
pub struct Registry(Arc<Mutex<BTreeMap<u32, String>>>);

impl Registry {
    fn add(&self, pid: u32, name: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(pid, name.to_owned());
        }
    }

    fn remove(&self, pid: u32) {
        if let Ok(mut m) = self.0.lock() {
            m.remove(&pid);
        }
    }

    /// The children that have not been stopped yet.
    pub fn running(&self) -> Vec<(u32, String)> {
        self.0
            .lock()
            .map(|m| m.iter().map(|(p, n)| (*p, n.clone())).collect())
            .unwrap_or_default()
    }

    /// SIGKILLs every registered child (by PID, never by name).
    pub fn kill_all(&self) {
        for (pid, name) in self.running() {
            tracing::warn!(event = "process_killed", pid, name = %name);
            send_signal(pid, libc::SIGKILL);
            self.remove(pid);
        }
    }
}

/// Where a child's output goes.
pub enum Output {
    /// Appended to this file (stdout and stderr).
    File(std::path::PathBuf),
    /// stdout piped back to the drill (taken with [`Proc::take_stdout`]), stderr to this file.
    Piped(std::path::PathBuf),
}

/// A running child.
#[derive(Debug)]
pub struct Proc {
    /// What it is (`fraudops-api-3`, `prometheus`, ...).
    pub name: String,
    /// Its PID.
    pub pid: u32,
    child: Child,
    registry: Registry,
}

/// Sends `signal` to `pid` (a child we started; never a process group or a name).
pub fn send_signal(pid: u32, signal: libc::c_int) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, signal);
        }
    }
}

/// Starts `command` as `name`, with its output per `output`.
pub fn spawn(
    registry: &Registry,
    name: &str,
    mut command: std::process::Command,
    output: Output,
) -> Result<Proc, DrillError> {
    let open = |path: &Path| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| DrillError::io(format!("opening log {}", path.display()), e))
    };
    match &output {
        Output::File(path) => {
            let f = open(path)?;
            let g = f
                .try_clone()
                .map_err(|e| DrillError::io("duplicating a log handle", e))?;
            command.stdout(Stdio::from(f)).stderr(Stdio::from(g));
        }
        Output::Piped(path) => {
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::from(open(path)?));
        }
    }
    command.stdin(Stdio::null()).process_group(0);
    // SAFETY: prctl and getppid are async-signal-safe; nothing is allocated between fork and exec.
    unsafe {
        let parent = libc::getpid();
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The drill died between fork and prctl: do not outlive it.
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let program = format!("{:?}", command.get_program());
    let mut command = tokio::process::Command::from(command);
    command.kill_on_drop(true);
    let child = command
        .spawn()
        .map_err(|e| DrillError::io(format!("starting {name} ({program})"), e))?;
    let pid = child
        .id()
        .ok_or_else(|| DrillError::Tool(format!("{name} exited before it could be registered")))?;
    registry.add(pid, name);
    tracing::info!(event = "process_started", name, pid);
    Ok(Proc {
        name: name.to_owned(),
        pid,
        child,
        registry: registry.clone(),
    })
}

impl Proc {
    /// The piped stdout (once).
    pub fn take_stdout(&mut self) -> Option<ChildStdout> {
        self.child.stdout.take()
    }

    /// Sends SIGTERM (a pod's termination signal).
    pub fn terminate(&self) {
        send_signal(self.pid, libc::SIGTERM);
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGTERM, then SIGKILL after `grace`, as the kubelet does; returns the exit status.
    pub async fn stop(mut self, grace: Duration) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            self.registry.remove(self.pid);
            return Some(status);
        }
        self.terminate();
        let status = match tokio::time::timeout(grace, self.child.wait()).await {
            Ok(status) => status.ok(),
            Err(_) => {
                tracing::warn!(event = "process_killed", name = %self.name, pid = self.pid,
                    grace_s = grace.as_secs_f64(), "did not exit after SIGTERM");
                let _ = self.child.start_kill();
                self.child.wait().await.ok()
            }
        };
        self.registry.remove(self.pid);
        tracing::info!(event = "process_stopped", name = %self.name, pid = self.pid, status = ?status);
        status
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // kill_on_drop sends SIGKILL if it still runs; forget it either way.
        self.registry.remove(self.pid);
    }
}

/// A free loopback port (bound and released; the child binds it right after).
pub fn free_port() -> Result<u16, DrillError> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| DrillError::io("finding a free port", e))
}

/// Binds a loopback port for `what` (`the load balancer`, ...) and returns it with its address.
pub async fn bind_loopback(
    what: &str,
) -> Result<(tokio::net::TcpListener, SocketAddr), DrillError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| DrillError::io(format!("binding {what}"), e))?;
    let addr = listener
        .local_addr()
        .map_err(|e| DrillError::io(format!("reading the address of {what}"), e))?;
    Ok((listener, addr))
}

/// Polls until `addr` accepts TCP connections, `proc` exits, or `timeout` passes.
pub async fn wait_for_tcp(
    proc: &mut Proc,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<(), DrillError> {
    let timed_out = format!("{} did not listen on {addr} within {timeout:?}", proc.name);
    let ready =
        || async move { TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() };
    poll_ready(
        proc,
        timeout,
        ready,
        &format!("listening on {addr}"),
        timed_out,
    )
    .await
}

/// Polls `url` until it answers 2xx, `proc` exits, or `timeout` passes.
pub async fn wait_for_http(
    http: &reqwest::Client,
    proc: &mut Proc,
    url: &str,
    timeout: Duration,
) -> Result<(), DrillError> {
    let timed_out = format!("{url} ({}) did not answer within {timeout:?}", proc.name);
    let ready = || async {
        let r = http.get(url).timeout(Duration::from_secs(2)).send().await;
        r.is_ok_and(|r| r.status().is_success())
    };
    poll_ready(proc, timeout, ready, &format!("{url} answered"), timed_out).await
}

/// Polls `ready` every 100 ms until it holds; fails once `proc` exits (it did not get as far as
/// `before`) or `timeout` passes (`timed_out`).
async fn poll_ready<F: Future<Output = bool>>(
    proc: &mut Proc,
    timeout: Duration,
    mut ready: impl FnMut() -> F,
    before: &str,
    timed_out: String,
) -> Result<(), DrillError> {
    let deadline = Instant::now() + timeout;
    loop {
        if ready().await {
            return Ok(());
        }
        if let Some(status) = proc.exited() {
            return Err(DrillError::Tool(format!(
                "{} exited ({status}) before {before}",
                proc.name
            )));
        }
        if Instant::now() > deadline {
            return Err(DrillError::Timeout(timed_out));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cmd` spawned as `name`, its output to `dir/log`.
    fn spawn_logged(
        registry: &Registry,
        name: &str,
        cmd: std::process::Command,
        dir: &Path,
    ) -> Proc {
        spawn(registry, name, cmd, Output::File(dir.join("log"))).expect("spawn")
    }

    #[tokio::test]
    async fn stop_escalates_to_sigkill_and_forgets_the_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::default();
        let mut cmd = std::process::Command::new("/bin/sh");
        // Ignores SIGTERM: only SIGKILL ends it.
        let ready = dir.path().join("trapped");
        cmd.arg("-c").arg(format!(
            "trap '' TERM; touch {}; while :; do sleep 0.05; done",
            ready.display()
        ));
        let p = spawn_logged(&registry, "stubborn", cmd, dir.path());
        let pid = p.pid;
        assert_eq!(registry.running().len(), 1);
        // Only once the trap is set does SIGTERM mean nothing to it.
        let t = Instant::now();
        while !ready.exists() && t.elapsed() < Duration::from_secs(10) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let t = Instant::now();
        let status = p.stop(Duration::from_millis(300)).await.expect("a status");
        assert!(!status.success());
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(registry.running().is_empty());
        assert!(
            !Path::new(&format!("/proc/{pid}/status")).exists() || {
                // Reaped: the pid may be reused, but not by our shell.
                std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                    .map_or(true, |c| !c.contains("trap"))
            }
        );
    }

    #[tokio::test]
    async fn sigterm_is_enough_for_a_well_behaved_child() {
        let dir = tempfile::tempdir().expect("tempdir");
        let registry = Registry::default();
        let mut cmd = std::process::Command::new("/bin/sleep");
        cmd.arg("30");
        let p = spawn_logged(&registry, "sleeper", cmd, dir.path());
        let t = Instant::now();
        p.stop(Duration::from_secs(10)).await.expect("a status");
        assert!(t.elapsed() < Duration::from_secs(5));
    }
}
