//! Models come and go without a failed request: hot swap, refusal of broken artifacts, readiness, drain.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use fraudops_serve::ServeConfig;
use fraudops_serve::{FetchFuture, Fetched, ModelSource, RegistryFetcher};
use serde_json::Value;

use crate::protection::SlowRequest;
use crate::support::{
    Shared, TestServer, embedded_model_json, metric, other_model_json, transaction, wait_for,
};

async fn served_version(server: &TestServer) -> Option<String> {
    let info: Value = server.get("/").await.json().await.ok()?;
    info["model_version"].as_str().map(str::to_owned)
}

fn replace_file(path: &std::path::Path, contents: &str) {
    // Write then rename: the poller never sees half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// A server on `source`, polling it every second.
async fn polling(source: ModelSource) -> TestServer {
    let mut config = ServeConfig::for_tests();
    config.model_poll_seconds = 1;
    TestServer::start(config, source).await
}

/// A model file holding the embedded model, and a server polling it; the file's directory lives as long
/// as the returned `TempDir`.
async fn serve_model_file() -> (tempfile::TempDir, PathBuf, TestServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.json");
    std::fs::write(&path, embedded_model_json()).expect("write");
    let server = polling(ModelSource::File(path.clone())).await;
    (dir, path, server)
}

#[tokio::test]
async fn a_new_file_model_is_swapped_in_under_load_without_a_failed_request() {
    let (_dir, path, server) = serve_model_file().await;
    let server = Arc::new(server);
    let old = served_version(&server).await.expect("a model");

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let versions: Shared<std::collections::BTreeSet<String>> = Arc::default();
    let mut load = Vec::new();
    for worker in 0..4 {
        let (server, stop, failures, versions) = (
            server.clone(),
            stop.clone(),
            failures.clone(),
            versions.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                i += 1;
                let r = server
                    .post_json("/predict", &transaction(&format!("{worker}-{i}")))
                    .await;
                if r.status() != 200 {
                    failures.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let body: Value = r.json().await.expect("json");
                if let Some(v) = body["model_version"].as_str() {
                    versions.lock().expect("lock").insert(v.to_owned());
                }
            }
        }));
    }

    let new_json = other_model_json(0.25);
    replace_file(&path, &new_json);
    let new = fraudops_model::Model::from_json(new_json.as_bytes())
        .expect("valid")
        .version()
        .to_owned();
    assert_ne!(old, new);
    let switched = wait_for(Duration::from_secs(10), || {
        let versions = versions.clone();
        let new = new.clone();
        async move { versions.lock().expect("lock").contains(&new) }
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.expect("load task");
    }
    assert!(switched, "the new model never answered");
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "no request may fail during a swap"
    );
    let text = server.metrics().await;
    assert_eq!(
        metric(&text, "ml_model_reloads_total{result=\"success\"}"),
        Some(2.0)
    );
    assert!(text.contains(&format!("model_version=\"{new}\"")));
    assert!(
        !text
            .lines()
            .any(|l| l.starts_with("ml_model_info") && l.contains(&old)),
        "the old model's info series is removed"
    );
}

#[tokio::test]
async fn a_broken_artifact_is_refused_and_the_old_model_keeps_serving() {
    let (_dir, path, server) = serve_model_file().await;
    let old = served_version(&server).await.expect("a model");

    // Truncated JSON, then a tampered one (valid JSON, checksum no longer matches).
    let tampered = embedded_model_json().replace(
        "\"decision_threshold\":",
        "\"decision_threshold\":0.01,\"x\":",
    );
    for (n, broken) in [embedded_model_json()[..1000].to_owned(), tampered]
        .into_iter()
        .enumerate()
    {
        replace_file(&path, &broken);
        let refused = wait_for(Duration::from_secs(10), || async {
            metric(
                &server.metrics().await,
                "ml_model_errors_total{type=\"model_load\"}",
            ) == Some((n + 1) as f64)
        })
        .await;
        assert!(refused, "broken artifact {n} was not refused");
        assert_eq!(served_version(&server).await.as_deref(), Some(old.as_str()));
        assert_eq!(server.predict_status("still").await, 200);
        assert_eq!(server.get("/ready").await.status(), 200);
    }
    server
        .assert_samples(&[("ml_model_reloads_total{result=\"failure\"}", 2.0)])
        .await;
}

/// A registry whose answer the test sets: an error, or a model.
struct ScriptedRegistry {
    answer: Shared<Option<(String, String)>>,
}

impl RegistryFetcher for ScriptedRegistry {
    fn fetch(&self, known: Option<String>) -> FetchFuture<'_> {
        let answer = self.answer.lock().expect("lock").clone();
        Box::pin(async move {
            match answer {
                None => Err("registry unreachable".to_owned()),
                Some((label, _)) if known.as_deref() == Some(label.as_str()) => Ok(None),
                Some((label, json)) => Ok(Some(Fetched {
                    label,
                    bytes: json.into_bytes(),
                    signature: None,
                })),
            }
        })
    }

    fn describe(&self) -> String {
        "models:/scripted@champion".into()
    }
}

#[tokio::test]
async fn not_ready_until_the_registry_delivers_a_model() {
    let answer: Shared<Option<(String, String)>> = Arc::default();
    let source = ModelSource::Registry(Arc::new(ScriptedRegistry {
        answer: answer.clone(),
    }));
    let server = polling(source).await;

    let ready = server.get("/ready").await;
    assert_eq!(ready.status(), 503);
    let body: Value = ready.json().await.expect("json");
    assert_eq!(body["status"], "not_ready");
    assert_eq!(
        server.get("/health").await.status(),
        200,
        "liveness must not restart a pod waiting for its registry"
    );
    let predict = server.post_json("/predict", &transaction("early")).await;
    assert_eq!(predict.status(), 503);
    assert!(predict.headers().contains_key("retry-after"));

    *answer.lock().expect("lock") = Some(("models:/scripted/1".into(), embedded_model_json()));
    assert!(
        wait_for(Duration::from_secs(10), || async {
            server.get("/ready").await.status() == 200
        })
        .await
    );
    let info: Value = server.get("/").await.json().await.expect("json");
    assert_eq!(info["model_source"], "models:/scripted/1");
    assert_eq!(server.predict_status("now").await, 200);
    let text = server.metrics().await;
    assert!(
        metric(&text, "ml_model_errors_total{type=\"model_load\"}").is_some_and(|n| n >= 1.0),
        "the unreachable registry is counted"
    );
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let server = TestServer::embedded().await;
    let slow = SlowRequest::begin(&server).await;
    assert!(
        wait_for(Duration::from_secs(5), || async {
            metric(&server.metrics().await, "http_requests_in_progress") == Some(2.0)
        })
        .await
    );
    let addr = server.addr;
    let shutdown = tokio::spawn(server.shutdown());
    // The drain has begun: new connections are no longer accepted...
    assert!(
        wait_for(Duration::from_secs(5), || async {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await
    );
    // ...but the request in flight is answered, and then the server stops.
    assert_eq!(slow.finish().await, 200);
    tokio::time::timeout(Duration::from_secs(5), shutdown)
        .await
        .expect("drained in time")
        .expect("shutdown task");
}

/// MODEL_TRUSTED_KEYS_FILE: only an artifact signed by a trusted key is swapped in. An unsigned one and
/// one signed by another key are refused (`ml_model_errors_total{type="model_signature"}`), the old model
/// keeps serving; a file that is not signed stops the start.
#[tokio::test]
async fn only_models_signed_by_a_trusted_key_are_swapped_in() {
    use fraudops_model::signing::{ModelSigner, signature_path};
    let dir = tempfile::tempdir().expect("tempdir");
    let key = |name: &str| {
        let (secret, public) = ModelSigner::generate();
        let path = dir.path().join(name);
        std::fs::write(&path, secret).expect("key");
        (ModelSigner::load(&path).expect("signer"), public)
    };
    let (ours, public) = key("ours.key");
    let (theirs, _) = key("theirs.key");
    let trusted = dir.path().join("trusted.pub");
    std::fs::write(&trusted, format!("# the trainer's key\n{public}\n")).expect("keys");
    let path = dir.path().join("model.json");
    let sig = signature_path(&path);
    let first = embedded_model_json();
    std::fs::write(&path, &first).expect("model");
    let mut config = ServeConfig::for_tests();
    config.model_poll_seconds = 1;
    config.model_trusted_keys_file = Some(trusted);

    // Unsigned at start: the server does not start.
    assert!(
        fraudops_serve::Server::bind(config.clone(), ModelSource::File(path.clone()))
            .await
            .is_err(),
        "started with an unsigned model"
    );
    std::fs::write(&sig, ours.sign(first.as_bytes())).expect("sig");
    let server = TestServer::start(config, ModelSource::File(path.clone())).await;
    let old = served_version(&server).await.expect("a model");

    let other = other_model_json(0.25);
    let refusals = |n: f64| {
        let server = &server;
        async move {
            wait_for(Duration::from_secs(10), || async {
                metric(
                    &server.metrics().await,
                    "ml_model_errors_total{type=\"model_signature\"}",
                ) == Some(n)
            })
            .await
        }
    };
    // A new artifact without a signature, then one signed by another key: both refused.
    std::fs::remove_file(&sig).expect("unsign");
    replace_file(&path, &other);
    assert!(refusals(1.0).await, "an unsigned artifact was not refused");
    assert_eq!(served_version(&server).await.as_deref(), Some(old.as_str()));
    assert_eq!(server.predict_status("still").await, 200);
    std::fs::write(&sig, theirs.sign(other.as_bytes())).expect("sig");
    replace_file(&path, &other);
    assert!(
        refusals(2.0).await,
        "an artifact signed by another key was not refused"
    );
    assert_eq!(served_version(&server).await.as_deref(), Some(old.as_str()));
    // Signed by the trusted key: swapped in.
    std::fs::write(&sig, ours.sign(other.as_bytes())).expect("sig");
    replace_file(&path, &other);
    let swapped = wait_for(Duration::from_secs(10), || async {
        served_version(&server).await.is_some_and(|v| v != old)
    })
    .await;
    assert!(swapped, "the signed artifact was not swapped in");
    assert_eq!(server.predict_status("new").await, 200);
}
