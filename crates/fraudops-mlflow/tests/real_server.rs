//! The client against a real `mlflow server` (sqlite backend, proxied local artifact store).
//!
//! Needs `MLFLOW_BIN`; without it each server test prints a `SKIPPED` line and passes.
//! `scripts/test-mlflow.sh` installs MLflow into a venv and runs these with it set (and with
//! `FRAUDOPS_REQUIRE_MLFLOW=1`, so they cannot skip there). All server tests share one server and
//! use their own experiment and model names.
//!
//! What the client did is checked through MLflow's REST API with plain HTTP, not through the
//! client itself, so a client bug cannot hide its own effect.

use std::time::{Duration, Instant};

use fraudops_mlflow::testing;
use fraudops_mlflow::testing::rest::{self, kv};
use fraudops_mlflow::{MlflowClient, MlflowError, ModelUri, RunInfo, RunStatus};
use serde_json::Value;

#[tokio::test]
async fn tracking_run_with_params_metrics_tags_and_artifact() {
    let Some(uri) = testing::shared("tracking_run_with_params_metrics_tags_and_artifact") else {
        return;
    };
    let client = MlflowClient::new(&uri).expect("client");

    let experiment = client
        .get_or_create_experiment("client-tracking")
        .await
        .expect("create experiment");
    let again = client
        .get_or_create_experiment("client-tracking")
        .await
        .expect("reuse experiment");
    assert_eq!(experiment, again, "get_or_create must reuse the experiment");

    let run = client
        .create_run(&experiment, "round-trip", &[("origin", "test")])
        .await
        .expect("create run");
    assert_eq!(run.run_id.len(), 32, "{run:?}");
    assert!(
        run.artifact_uri.starts_with("mlflow-artifacts:/"),
        "the server proxies artifacts: {run:?}"
    );

    // More params and tags than one log-batch call takes: the client must split them.
    let params: Vec<(String, String)> = (0..150)
        .map(|i| (format!("p{i:03}"), format!("v{i}")))
        .collect();
    let params: Vec<(&str, String)> = params
        .iter()
        .map(|(k, v)| (k.as_str(), v.clone()))
        .collect();
    let tag_keys: Vec<String> = (0..120).map(|i| format!("t{i:03}")).collect();
    let tags: Vec<(&str, &str)> = tag_keys.iter().map(|k| (k.as_str(), "x")).collect();
    let metrics = [
        ("roc_auc", 0.875),
        ("average_precision", 0.5),
        ("undefined", f64::NAN),
    ];
    client
        .log_batch(&run.run_id, &params, &metrics, &tags)
        .await
        .expect("log batch");
    client
        .set_tag(&run.run_id, "decision", "promoted")
        .await
        .expect("set tag");
    let bytes = br#"{"hello": "artifact"}"#.to_vec();
    client
        .upload_artifact(&run, "model/model.json", bytes.clone())
        .await
        .expect("upload artifact");
    client
        .end_run(&run.run_id, RunStatus::Finished)
        .await
        .expect("end run");

    let got = rest::get(&uri, "runs/get", &[("run_id", &run.run_id)]).await;
    let info = &got["run"]["info"];
    assert_eq!(info["status"], "FINISHED");
    assert_eq!(info["run_name"], "round-trip");
    assert_eq!(info["experiment_id"].as_str(), Some(experiment.as_str()));
    let data = &got["run"]["data"];
    let logged_params = &data["params"];
    assert_eq!(
        logged_params.as_array().map(Vec::len),
        Some(150),
        "all params in several batches"
    );
    assert_eq!(kv(logged_params, "p149"), Some(&Value::from("v149")));
    let logged_metrics = &data["metrics"];
    assert_eq!(kv(logged_metrics, "roc_auc"), Some(&Value::from(0.875)));
    assert_eq!(
        kv(logged_metrics, "average_precision"),
        Some(&Value::from(0.5))
    );
    assert!(
        kv(logged_metrics, "undefined").is_some(),
        "NaN is logged, as MLflow's NaN: {logged_metrics:?}"
    );
    let logged_tags = &data["tags"];
    assert_eq!(kv(logged_tags, "origin"), Some(&Value::from("test")));
    assert_eq!(kv(logged_tags, "t119"), Some(&Value::from("x")));
    assert_eq!(kv(logged_tags, "decision"), Some(&Value::from("promoted")));

    // The artifact is where MLflow lists it, with the uploaded bytes.
    let listed = rest::get(
        &uri,
        "artifacts/list",
        &[("run_id", &run.run_id), ("path", "model")],
    )
    .await;
    assert_eq!(listed["files"][0]["path"], "model/model.json", "{listed}");
    let downloaded = rest::artifact_bytes(&uri, &run.artifact_uri, "model/model.json").await;
    assert_eq!(downloaded, bytes);
}

/// A run named `name` in `experiment` with `model` uploaded as `model/model.json`.
async fn run_with_model(
    client: &MlflowClient,
    experiment: &str,
    name: &str,
    model: &[u8],
) -> RunInfo {
    let run = client
        .create_run(experiment, name, &[])
        .await
        .unwrap_or_else(|e| panic!("run {name}: {e}"));
    client
        .upload_artifact(&run, "model/model.json", model.to_vec())
        .await
        .unwrap_or_else(|e| panic!("upload {name}: {e}"));
    run
}

#[tokio::test]
async fn registry_versions_aliases_and_artifact_download() {
    let Some(uri) = testing::shared("registry_versions_aliases_and_artifact_download") else {
        return;
    };
    let client = MlflowClient::new(&uri).expect("client");
    let name = "client-registry";
    client.ensure_registered_model(name).await.expect("create");
    client
        .ensure_registered_model(name)
        .await
        .expect("creating an existing model is fine");

    let experiment = client
        .get_or_create_experiment("client-registry")
        .await
        .expect("experiment");
    let first = b"first model".to_vec();
    let run = run_with_model(&client, &experiment, "v1", &first).await;

    let champion: ModelUri = format!("models:/{name}@champion").parse().expect("uri");
    assert!(
        client
            .get_alias(name, "champion")
            .await
            .expect("lookup")
            .is_none(),
        "no alias yet"
    );
    assert!(matches!(
        client.resolve(&champion).await,
        Err(MlflowError::NotFound { .. })
    ));

    // Version 1 from the run's proxied artifact root.
    let v1 = client
        .create_model_version(name, &format!("{}/model", run.artifact_uri), &run.run_id)
        .await
        .expect("register v1");
    assert_eq!((v1.version, v1.status.as_str()), (1, "READY"));
    assert_eq!(v1.run_id.as_deref(), Some(run.run_id.as_str()));
    client.set_alias(name, "champion", 1).await.expect("alias");
    let resolved = client.resolve(&champion).await.expect("resolve alias");
    assert_eq!(resolved.version, 1);
    assert!(
        resolved.aliases.iter().any(|a| a == "champion"),
        "{resolved:?}"
    );
    assert_eq!(
        client
            .download_artifact(&resolved, "model.json")
            .await
            .expect("download v1"),
        first
    );

    // Version 2 from a runs:/ source: the client resolves it through the run.
    let second = b"second model".to_vec();
    let run2 = run_with_model(&client, &experiment, "v2", &second).await;
    let v2 = client
        .create_model_version(name, &format!("runs:/{}/model", run2.run_id), &run2.run_id)
        .await
        .expect("register v2");
    assert_eq!(v2.version, 2);
    assert_eq!(
        client.resolve(&champion).await.expect("resolve").version,
        1,
        "registering does not move the alias"
    );
    client
        .set_alias(name, "champion", 2)
        .await
        .expect("move alias");
    let now = client.resolve(&champion).await.expect("resolve");
    assert_eq!(now.version, 2);
    assert_eq!(
        client
            .download_artifact(&now, "model.json")
            .await
            .expect("download v2 via runs:/"),
        second
    );
    let pinned: ModelUri = format!("models:/{name}/1").parse().expect("uri");
    assert_eq!(
        client.resolve(&pinned).await.expect("resolve /1").version,
        1
    );
    assert_eq!(
        client
            .get_alias(name, "champion")
            .await
            .expect("lookup")
            .map(|v| v.version),
        Some(2)
    );

    client
        .set_model_version_tag(name, 2, "gate", "promoted")
        .await
        .expect("version tag");
    let got = rest::get(
        &uri,
        "model-versions/get",
        &[("name", name), ("version", "2")],
    )
    .await;
    let tags = &got["model_version"]["tags"];
    assert_eq!(kv(tags, "gate"), Some(&Value::from("promoted")), "{got}");
    let alias = rest::get(
        &uri,
        "registered-models/alias",
        &[("name", name), ("alias", "champion")],
    )
    .await;
    assert_eq!(alias["model_version"]["version"], "2");
}

#[tokio::test]
async fn server_refusals_are_typed_errors() {
    let Some(uri) = testing::shared("server_refusals_are_typed_errors") else {
        return;
    };
    let client = MlflowClient::new(&uri).expect("client");
    let missing: ModelUri = "models:/no-such-model@champion".parse().expect("uri");
    assert!(
        matches!(client.resolve(&missing).await, Err(MlflowError::NotFound { ref what }) if what.contains("no-such-model")),
    );
    let missing_version: ModelUri = "models:/no-such-model/3".parse().expect("uri");
    assert!(matches!(
        client.resolve(&missing_version).await,
        Err(MlflowError::NotFound { .. })
    ));
    assert!(matches!(
        client
            .log_batch("0123456789abcdef0123456789abcdef", &[], &[("m", 1.0)], &[])
            .await,
        Err(MlflowError::NotFound { .. })
    ));
    // A bad request is an Http error carrying MLflow's error code, and is not retried.
    let started = Instant::now();
    let refused = client.create_run("not-a-number", "x", &[]).await;
    assert!(
        matches!(
            &refused,
            Err(MlflowError::Http { status: 400, error_code: Some(code), .. })
                if code == "INVALID_PARAMETER_VALUE"
        ),
        "{refused:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "4xx must not be retried"
    );
}

/// No server needed: a closed port is a transport error after every retry, and the retries wait.
#[tokio::test]
async fn unreachable_server_is_a_transport_error_after_retries() {
    let port = testing::free_port().expect("port");
    let client = MlflowClient::new(&format!("http://127.0.0.1:{port}"))
        .expect("client")
        .with_retries(3, Duration::from_millis(50));
    let started = Instant::now();
    let result = client.get_or_create_experiment("x").await;
    assert!(
        matches!(result, Err(MlflowError::Transport(_))),
        "{result:?}"
    );
    // Two sleeps of 50 ms and 100 ms between three attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
}
