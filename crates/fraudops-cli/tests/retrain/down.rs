//! MLflow down: `train` fails fast, clearly and non-zero; `serve` keeps serving what it has.

use std::time::{Duration, Instant};

use fraudops_mlflow::testing::{self, MlflowServer};

use crate::support::{Retraining, Serve, fraudops, run, simulate, transaction};

/// Needs no server: nothing listens on the port.
#[test]
fn train_fails_with_a_clear_message_and_non_zero_exit_when_mlflow_is_unreachable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = simulate(dir.path());
    let port = testing::free_port().expect("port");
    let uri = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    let (out, stdout, stderr) = run(fraudops(dir.path())
        .args([
            "train",
            "--train-start",
            "2018-05-01",
            "--out",
            "m",
            "--data",
        ])
        .arg(&data)
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_RETRIES", "3"));
    assert!(!out.status.success(), "must fail: {stdout}");
    assert_eq!(out.status.code(), Some(1));
    for needle in [
        format!("MLflow at {uri}"),
        "unreachable".to_owned(),
        "gave up after 3 attempts".to_owned(),
        "Connection refused".to_owned(),
    ] {
        assert!(
            stderr.contains(&needle),
            "stderr lacks {needle:?}:\n{stderr}"
        );
    }
    // It failed before training (retries 0.5 s + 1 s), and wrote no artifact.
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(!dir.path().join("m/model.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_keeps_its_model_when_mlflow_goes_down() {
    // Its own server: this test kills it.
    let Some(mut server) =
        MlflowServer::start_or_skip("serve_keeps_its_model_when_mlflow_goes_down")
    else {
        return;
    };
    let uri = server.uri().to_owned();
    let t = Retraining::new(&uri, "down", "down-model");
    t.train_ok("m", &[]);

    let serve = Serve::follow(t.dir.path(), &uri, t.model);
    let version = serve.wait_ready().await;
    let errors_before = model_load_errors(&serve).await;

    server.stop();

    // Poll until the server has noticed (its registry polls fail and are counted)...
    let deadline = Instant::now() + Duration::from_secs(60);
    while model_load_errors(&serve).await < errors_before + 2.0 {
        assert!(
            Instant::now() < deadline,
            "serve never counted the unreachable registry"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // ...and it still serves the same model, and is still ready.
    let http = reqwest::Client::new();
    for i in 0..50 {
        let r = http
            .post(serve.url("/predict"))
            .json(&transaction(i))
            .send()
            .await
            .expect("predict");
        assert_eq!(r.status(), 200);
        let body: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(body["model_version"], version.as_str());
    }
    let ready = http.get(serve.url("/ready")).send().await.expect("ready");
    assert_eq!(
        ready.status(),
        200,
        "a registry outage must not take replicas out"
    );
}

/// `ml_model_errors_total{type="model_load"}` from `/metrics` (0 before the first error).
async fn model_load_errors(serve: &Serve) -> f64 {
    let text = reqwest::get(serve.url("/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    crate::common::prometheus_sum(&text, "ml_model_errors_total", &["type=\"model_load\""])
        .unwrap_or(0.0)
}
