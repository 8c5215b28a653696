//! `fraudops serve` as a process: configuration errors, and SIGTERM draining in-flight requests.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::ServeProcess;

/// How long the server may take to log an event the test waits for.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

fn fraudops() -> Command {
    common::fraudops_command()
}

/// Starts `serve` on an ephemeral port with the embedded model.
fn start_serve() -> ServeProcess {
    let mut cmd = fraudops();
    cmd.args(["serve", "--bind", "127.0.0.1", "--port", "0"])
        .env("REPLICA_ID", "proc-test");
    ServeProcess::start(&mut cmd, Duration::from_secs(20))
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    common::http_get(&addr.to_string(), path)
}

#[test]
fn sigterm_drains_in_flight_requests_then_exits_cleanly() {
    let mut serve = start_serve();
    let addr = serve.addr;
    let body = br#"{"transaction_id": "drain", "amount": 42.5}"#;
    let mut stream = TcpStream::connect(addr).expect("connect");
    write!(
        stream,
        "POST /predict HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .expect("head");
    stream.write_all(&body[..10]).expect("first part");
    // The request is in flight once the server counts it (the /metrics request itself is the other one).
    let in_flight = (0..250).any(|_| {
        let seen = http_get(addr, "/metrics").contains("http_requests_in_progress 2");
        if !seen {
            std::thread::sleep(Duration::from_millis(20));
        }
        seen
    });
    assert!(in_flight, "the slow request never reached the server");

    let pid = libc::pid_t::try_from(serve.child().id()).expect("pid");
    // SAFETY: kill(2) on our own child's PID has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(
        serve.wait_for_event("draining", EVENT_TIMEOUT),
        "no draining log after SIGTERM"
    );

    stream.write_all(&body[10..]).expect("rest of body");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("response");
    assert!(
        response.starts_with("HTTP/1.1 200"),
        "in-flight request failed during drain: {response}"
    );
    assert!(response.contains("\"transaction_id\":\"drain\""));

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = serve.child().try_wait().expect("wait") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "exit status {status}");
    assert!(serve.wait_for_event("server_stopped", EVENT_TIMEOUT));
}

#[test]
fn a_missing_model_file_fails_fast_with_the_path_in_the_message() {
    let output = fraudops()
        .args([
            "serve",
            "--port",
            "0",
            "--model-path",
            "/nonexistent/model.json",
        ])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("/nonexistent/model.json"), "{stderr}");
}

#[test]
fn conflicting_model_sources_are_refused() {
    let output = fraudops()
        .args(["serve", "--port", "0", "--model-path", "m.json"])
        .env("MLFLOW_MODEL_URI", "models:/fraud-detector@champion")
        .env("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
        .output()
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not both"));
}

#[test]
fn serves_the_embedded_model_without_configuration() {
    let serve = start_serve();
    let addr = serve.addr;
    let ready = http_get(addr, "/ready");
    assert!(ready.starts_with("HTTP/1.1 200"), "{ready}");
    let info = http_get(addr, "/");
    assert!(
        info.contains("\"model_source\":\"embedded\"")
            && info.contains("\"replica_id\":\"proc-test\""),
        "{info}"
    );
}

#[test]
fn server_started_logs_plain_values_and_leaves_absent_ones_out() {
    let serve = start_serve();
    let line = &serve.started_line;
    assert!(!line.contains("Some(") && !line.contains("None"), "{line}");
    let log: serde_json::Value = serde_json::from_str(line).expect("JSON");
    assert!(
        log["model_version"]
            .as_str()
            .is_some_and(|v| v.starts_with("gbdt-")),
        "{line}"
    );
    // No separate metrics port was configured: the field is absent, not "None".
    assert!(log.get("metrics_addr").is_none(), "{line}");
    assert!(
        ["configured", "cgroup", "cpus"].contains(&log["cpu_limit_source"].as_str().unwrap_or("")),
        "{line}"
    );
}
