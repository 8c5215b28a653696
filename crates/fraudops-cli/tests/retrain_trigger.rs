//! `fraudops retrain-trigger` as a process, against a stand-in for Airflow 3's REST API that checks the
//! exact requests: the login (`POST /auth/token`), the trigger (`POST /api/v2/dags/ml_model_retrain/dagRuns`
//! with the incident's run id, a null logical date, the alert as conf, a note), 409 for an existing run id,
//! 401 for an expired token. The stand-in answers what Airflow 3.3's routes answer for these calls; the
//! same binary against a real `airflow api-server` is `scripts/test-retrain-trigger.sh`.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::ServeProcess;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const PASSWORD: &str = "correct horse";
const ALERTMANAGER_TOKEN: &str = "am-token-0123456789";

/// What the stand-in saw and how it answers.
#[derive(Default)]
struct Airflow {
    /// (path, Authorization header, body) of every request, in order.
    requests: Vec<(String, String, Value)>,
    /// Tokens handed out so far (the next is `token-<n>`).
    issued: usize,
    /// Tokens the stand-in accepts.
    valid: HashSet<String>,
    /// Run ids that exist.
    runs: HashSet<String>,
    /// Answer the next trigger calls with 500.
    fail_next: usize,
}

type Shared = Arc<Mutex<Airflow>>;

async fn token(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut af = state.lock().unwrap();
    af.requests
        .push(("/auth/token".into(), auth(&headers), body.clone()));
    if body != json!({"username": "retrain-bot", "password": PASSWORD}) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid credentials"})),
        );
    }
    af.issued += 1;
    let token = format!("token-{}", af.issued);
    af.valid.insert(token.clone());
    (StatusCode::CREATED, Json(json!({"access_token": token})))
}

async fn trigger(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let mut af = state.lock().unwrap();
    let bearer = auth(&headers);
    af.requests.push((
        "/api/v2/dags/ml_model_retrain/dagRuns".into(),
        bearer.clone(),
        body.clone(),
    ));
    if !af.valid.contains(bearer.trim_start_matches("Bearer ")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"detail": "Invalid JWT token"})),
        );
    }
    if af.fail_next > 0 {
        af.fail_next -= 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"detail": "database is locked"})),
        );
    }
    let run_id = body["dag_run_id"].as_str().unwrap_or_default().to_owned();
    if !af.runs.insert(run_id.clone()) {
        return (
            StatusCode::CONFLICT,
            Json(
                json!({"detail": "Unique constraint violation", "statement": "INSERT INTO dag_run ..."}),
            ),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"dag_run_id": run_id, "dag_id": "ml_model_retrain", "state": "queued"})),
    )
}

fn auth(headers: &HeaderMap) -> String {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

async fn start_airflow() -> (SocketAddr, Shared) {
    let state = Shared::default();
    let app = axum::Router::new()
        .route("/auth/token", post(token))
        .route("/api/v2/dags/ml_model_retrain/dagRuns", post(trigger))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, state)
}

/// The bridge as a child process pointed at `airflow`, with the password (and optionally the token) in files.
async fn start_bridge(airflow: SocketAddr, dir: &Path, token: bool) -> ServeProcess {
    std::fs::write(dir.join("password"), format!("{PASSWORD}\n")).unwrap();
    std::fs::write(dir.join("am-token"), format!("{ALERTMANAGER_TOKEN}\n")).unwrap();
    let mut cmd = common::fraudops_command();
    cmd.args(["retrain-trigger", "--bind", "127.0.0.1", "--port", "0"])
        .env("AIRFLOW_URL", format!("http://{airflow}"))
        .env("AIRFLOW_USERNAME", "retrain-bot")
        .env("AIRFLOW_PASSWORD_FILE", dir.join("password"));
    if token {
        cmd.env("RETRAIN_TRIGGER_TOKEN_FILE", dir.join("am-token"));
    } else {
        cmd.env("RETRAIN_TRIGGER_LOCAL", "true");
    }
    tokio::task::spawn_blocking(move || ServeProcess::start(&mut cmd, Duration::from_secs(20)))
        .await
        .unwrap()
}

/// A webhook notification as Alertmanager posts it for the retrain route (group_by: [alertname]).
fn notification(alertname: &str, alerts: &[(&str, &str)]) -> Value {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(status, starts_at)| {
            json!({"status": status, "labels": {"alertname": alertname, "severity": "warning", "job": "fraudops-api"},
                   "annotations": {"summary": "scores drifted"}, "startsAt": starts_at,
                   "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus/graph", "fingerprint": "f00d"})
        })
        .collect();
    json!({
        "version": "4",
        "groupKey": group_key(alertname),
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "fraudops-retrain",
        "groupLabels": {"alertname": alertname},
        "commonLabels": {"alertname": alertname, "severity": "warning"},
        "commonAnnotations": {"summary": "scores drifted"},
        "externalURL": "http://alertmanager:9093",
        "alerts": alerts,
    })
}

fn group_key(alertname: &str) -> String {
    format!(
        "{{}}/{{alertname=~\"ModelQualityDegraded|ScoreDistributionDrift\"}}:{{alertname=\"{alertname}\"}}"
    )
}

/// The run id the documentation promises, derived here independently of the bridge's code.
fn expected_run_id(alertname: &str, starts: &str) -> String {
    let digest = hex::encode(Sha256::digest(group_key(alertname).as_bytes()));
    format!("alert__{alertname}__{starts}__{}", &digest[..12])
}

async fn notify(bridge: SocketAddr, body: &Value, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new()
        .post(format!("http://{bridge}/alertmanager"))
        .json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the bridge answers");
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

async fn counters(bridge: SocketAddr) -> String {
    reqwest::get(format!("http://{bridge}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn count(metrics: &str, outcome: &str) -> f64 {
    common::prometheus_sum(
        metrics,
        "fraudops_retrain_trigger_notifications_total",
        &[&format!("outcome=\"{outcome}\"")],
    )
    .unwrap_or(-1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_run_per_incident_with_the_alert_as_conf() {
    let (airflow, state) = start_airflow().await;
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(airflow, dir.path(), false).await;
    let health = reqwest::get(format!("http://{}/health", bridge.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    // The first notification of an incident: login, then the run.
    let first = notification(
        "ScoreDistributionDrift",
        &[("firing", "2026-12-02T07:40:12.345678901Z")],
    );
    let (status, text) = notify(bridge.addr, &first, None).await;
    let run_id = expected_run_id("ScoreDistributionDrift", "20261202T074012Z");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains(&run_id) && text.contains("started"), "{text}");
    {
        let af = state.lock().unwrap();
        assert_eq!(af.requests.len(), 2, "{:?}", af.requests);
        let (path, auth, body) = &af.requests[0];
        assert_eq!((path.as_str(), auth.as_str()), ("/auth/token", ""));
        assert_eq!(
            body,
            &json!({"username": "retrain-bot", "password": PASSWORD})
        );
        let (path, auth, body) = &af.requests[1];
        assert_eq!(
            (path.as_str(), auth.as_str()),
            ("/api/v2/dags/ml_model_retrain/dagRuns", "Bearer token-1")
        );
        assert_eq!(
            body,
            &json!({
                "dag_run_id": run_id,
                "logical_date": null,
                "conf": {"alert": {
                    "alertname": "ScoreDistributionDrift",
                    "starts_at": "2026-12-02T07:40:12Z",
                    "group_key": group_key("ScoreDistributionDrift"),
                    "labels": {"alertname": "ScoreDistributionDrift", "severity": "warning"},
                    "firing": 1,
                    "receiver": "fraudops-retrain",
                    "external_url": "http://alertmanager:9093",
                }},
                "note": "Started by Alertmanager: ScoreDistributionDrift firing since 2026-12-02T07:40:12Z (scores drifted)",
            })
        );
    }

    // The repeat (repeat_interval), with a second alert joined later: the same run, 409, answered 200.
    let repeat = notification(
        "ScoreDistributionDrift",
        &[
            ("firing", "2026-12-02T07:40:12.345678901Z"),
            ("firing", "2026-12-02T11:00:00Z"),
        ],
    );
    let (status, text) = notify(bridge.addr, &repeat, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("already exists"), "{text}");
    {
        let af = state.lock().unwrap();
        assert_eq!(
            af.requests.len(),
            3,
            "the cached token is reused: no second login"
        );
        assert_eq!(af.requests[2].2["dag_run_id"], run_id.as_str());
        assert_eq!(af.runs.len(), 1);
    }

    // Resolved, and an alert the bridge does not retrain for: answered, no call to Airflow.
    let (status, _) = notify(
        bridge.addr,
        &notification(
            "ScoreDistributionDrift",
            &[("resolved", "2026-12-02T07:40:12Z")],
        ),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, text) = notify(
        bridge.addr,
        &notification("HighErrorRate", &[("firing", "2026-12-02T07:40:12Z")]),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(text.contains("does not start retraining"), "{text}");
    assert_eq!(state.lock().unwrap().requests.len(), 3);

    // Not a notification: 400, so Alertmanager does not retry it.
    let (status, text) = notify(bridge.addr, &json!({"alerts": []}), None).await;
    assert_eq!(status, 400, "{text}");

    // A new incident of the other alert while Airflow has an outage: 502 (Alertmanager retries), then
    // the retry creates the run.
    state.lock().unwrap().fail_next = 1;
    let quality = notification(
        "ModelQualityDegraded",
        &[("firing", "2026-12-03T01:00:00Z")],
    );
    let (status, text) = notify(bridge.addr, &quality, None).await;
    assert_eq!(status, 502, "{text}");
    assert!(
        text.contains("HTTP 500") && text.contains("database is locked"),
        "{text}"
    );
    let (status, text) = notify(bridge.addr, &quality, None).await;
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains(&expected_run_id("ModelQualityDegraded", "20261203T010000Z")),
        "{text}"
    );

    // The token expired: Airflow answers 401, the bridge logs in again once and the call goes through.
    state.lock().unwrap().valid.clear();
    let refired = notification(
        "ScoreDistributionDrift",
        &[("firing", "2026-12-04T09:30:00Z")],
    );
    let (status, text) = notify(bridge.addr, &refired, None).await;
    assert_eq!(status, 200, "{text}");
    {
        let af = state.lock().unwrap();
        let tail: Vec<(&str, &str)> = af.requests[af.requests.len() - 3..]
            .iter()
            .map(|(p, a, _)| (p.as_str(), a.as_str()))
            .collect();
        assert_eq!(
            tail,
            [
                ("/api/v2/dags/ml_model_retrain/dagRuns", "Bearer token-1"),
                ("/auth/token", ""),
                ("/api/v2/dags/ml_model_retrain/dagRuns", "Bearer token-2"),
            ]
        );
        assert_eq!(
            af.runs.len(),
            3,
            "three incidents, three runs: {:?}",
            af.runs
        );
    }

    let metrics = counters(bridge.addr).await;
    for (outcome, want) in [
        ("triggered", 3.0),
        ("duplicate", 1.0),
        ("failed", 1.0),
        ("ignored", 2.0),
        ("rejected", 1.0),
    ] {
        assert_eq!(
            count(&metrics, outcome),
            want,
            "outcome {outcome}:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_token_is_required_when_configured() {
    let (airflow, state) = start_airflow().await;
    let dir = tempfile::tempdir().unwrap();
    let bridge = start_bridge(airflow, dir.path(), true).await;
    let body = notification(
        "ModelQualityDegraded",
        &[("firing", "2026-12-02T07:40:12Z")],
    );
    assert_eq!(notify(bridge.addr, &body, None).await.0, 401);
    assert_eq!(notify(bridge.addr, &body, Some("wrong")).await.0, 401);
    assert!(
        state.lock().unwrap().requests.is_empty(),
        "nothing reached Airflow"
    );
    let (status, text) = notify(bridge.addr, &body, Some(ALERTMANAGER_TOKEN)).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(count(&counters(bridge.addr).await, "rejected"), 2.0);
}

#[test]
fn refuses_to_start_without_its_password_file() {
    let out = common::fraudops_command()
        .args(["retrain-trigger", "--port", "0"])
        .env("AIRFLOW_URL", "http://127.0.0.1:1")
        .env("AIRFLOW_USERNAME", "retrain-bot")
        .env("AIRFLOW_PASSWORD_FILE", "/nonexistent/password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("AIRFLOW_PASSWORD_FILE /nonexistent/password"),
        "{stderr}"
    );
}

#[test]
fn refuses_to_start_without_its_token_unless_told_it_is_local() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("password"), "pw\n").unwrap();
    let out = common::fraudops_command()
        .args(["retrain-trigger", "--port", "0"])
        .env("AIRFLOW_URL", "http://127.0.0.1:1")
        .env("AIRFLOW_USERNAME", "retrain-bot")
        .env("AIRFLOW_PASSWORD_FILE", dir.path().join("password"))
        .env_remove("RETRAIN_TRIGGER_TOKEN_FILE")
        .env_remove("RETRAIN_TRIGGER_LOCAL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RETRAIN_TRIGGER_TOKEN_FILE is required"),
        "{stderr}"
    );
}
