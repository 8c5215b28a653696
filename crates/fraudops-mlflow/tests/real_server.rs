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
use fraudops_mlflow::{
    ColSpec, ColumnType, LoggedModelStatus, MLMODEL_FILE, MlModel, MlflowClient, MlflowError,
    ModelUri, NewLoggedModel, RunInfo, RunStatus, Signature,
};
use serde_json::{Value, json};

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
    let keys = numbered_keys(150);
    let params = numbered_params(&keys);
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

/// MLflow 3's logged-model sequence (create, link to the run, metrics, artifacts, READY, register
/// by `models:/<id>`), read back through REST, through the client's download (what `serve` does)
/// and through MLflow's own Python client.
#[tokio::test]
async fn logged_model_registered_by_id_is_described_to_python_mlflow() {
    let Some(uri) = testing::shared("logged_model_registered_by_id_is_described_to_python_mlflow")
    else {
        return;
    };
    let client = MlflowClient::new(&uri).expect("client");
    let name = "client-logged-model";
    let experiment = client
        .get_or_create_experiment("client-logged-models")
        .await
        .expect("experiment");
    let run = client
        .create_run(&experiment, "logged", &[])
        .await
        .expect("run");

    // More params than one create call takes.
    let keys = numbered_keys(130);
    let params = numbered_params(&keys);
    let model = client
        .create_logged_model(&NewLoggedModel {
            experiment_id: &experiment,
            name: "tiny-model",
            source_run_id: Some(&run.run_id),
            model_type: Some("test"),
            params: &params,
            tags: &[("origin", "test")],
        })
        .await
        .expect("create logged model");
    assert!(model.model_id.starts_with("m-"), "{model:?}");
    assert_eq!(model.status, Some(LoggedModelStatus::Pending));
    assert!(
        model.artifact_uri.starts_with("mlflow-artifacts:/")
            && model.artifact_uri.contains(&model.model_id),
        "{model:?}"
    );
    client
        .log_run_output(&run.run_id, &model.model_id, 0)
        .await
        .expect("run output");
    client
        .log_model_metrics(&run.run_id, &model.model_id, &[("auc", 0.875)])
        .await
        .expect("model metrics");

    let weights = b"the model's own bytes".to_vec();
    client
        .upload_model_artifact(&model, "model.json", weights.clone())
        .await
        .expect("upload model.json");
    let mut flavor = serde_json::Map::new();
    flavor.insert("artifact".into(), json!("model.json"));
    flavor.insert("format_version".into(), json!(1));
    let description = MlModel::new(&model.model_id, &model.artifact_uri, Some(&run.run_id))
        .with_flavor("custom", flavor)
        .with_signature(Signature {
            inputs: vec![
                ColSpec::required("amount", ColumnType::Double),
                ColSpec::required("count", ColumnType::Long),
            ],
            outputs: vec![ColSpec::required("probability", ColumnType::Double)],
        });
    client
        .upload_model_artifact(
            &model,
            MLMODEL_FILE,
            description.to_yaml().expect("yaml").into_bytes(),
        )
        .await
        .expect("upload MLmodel");
    let ready = client
        .finalize_logged_model(&model.model_id, LoggedModelStatus::Ready)
        .await
        .expect("finalize");
    assert_eq!(ready.status, Some(LoggedModelStatus::Ready));

    client.ensure_registered_model(name).await.expect("create");
    let version = client
        .create_model_version_from(name, &model)
        .await
        .expect("register from the logged model");
    assert_eq!((version.version, version.status.as_str()), (1, "READY"));
    assert_eq!(version.source, format!("models:/{}", model.model_id));
    assert_eq!(version.model_id.as_deref(), Some(model.model_id.as_str()));
    assert_eq!(version.run_id.as_deref(), Some(run.run_id.as_str()));
    client.set_alias(name, "champion", 1).await.expect("alias");
    client
        .end_run(&run.run_id, RunStatus::Finished)
        .await
        .expect("end run");

    // What serve does: resolve the alias, download model.json from the version's source.
    let champion: ModelUri = format!("models:/{name}@champion").parse().expect("uri");
    let resolved = client.resolve(&champion).await.expect("resolve");
    assert_eq!(
        client
            .download_artifact(&resolved, "model.json")
            .await
            .expect("download through the logged model"),
        weights
    );

    // Read back through REST: the model, its run and its version know each other.
    let got = rest::get(&uri, &format!("logged-models/{}", model.model_id), &[]).await;
    let info = &got["model"]["info"];
    assert_eq!(info["status"], "LOGGED_MODEL_READY", "{got}");
    assert_eq!(info["source_run_id"].as_str(), Some(run.run_id.as_str()));
    assert_eq!(info["name"], "tiny-model");
    assert_eq!(kv(&info["tags"], "origin"), Some(&json!("test")));
    let versions: Value = serde_json::from_str(
        kv(&info["tags"], "mlflow.modelVersions")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("mlflow.modelVersions tag: {got}")),
    )
    .expect("JSON tag");
    assert_eq!(versions, json!([{"name": name, "version": "1"}]));
    let data = &got["model"]["data"];
    assert_eq!(data["params"].as_array().map(Vec::len), Some(130), "{got}");
    assert_eq!(kv(&data["params"], "p129"), Some(&json!("v129")));
    let metric = data["metrics"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["key"] == "auc"))
        .unwrap_or_else(|| panic!("auc on the model: {got}"));
    assert_eq!(metric["value"], 0.875);
    let got_run = rest::get(&uri, "runs/get", &[("run_id", &run.run_id)]).await;
    assert_eq!(
        got_run["run"]["outputs"]["model_outputs"][0]["model_id"].as_str(),
        Some(model.model_id.as_str()),
        "{got_run}"
    );
    assert_eq!(
        kv(&got_run["run"]["data"]["metrics"], "auc"),
        Some(&json!(0.875)),
        "the run has the metric too: {got_run}"
    );
    let got_version = rest::get(
        &uri,
        "model-versions/get",
        &[("name", name), ("version", "1")],
    )
    .await;
    let mv = &got_version["model_version"];
    assert_eq!(mv["source"], json!(format!("models:/{}", model.model_id)));
    assert_eq!(mv["run_id"].as_str(), Some(run.run_id.as_str()));

    // MLflow's own Python client describes the champion from the MLmodel file.
    let described = testing::python_model_info(&uri, &format!("models:/{name}@champion"));
    assert_eq!(
        described["inputs"],
        json!([
            {"type": "double", "name": "amount", "required": true},
            {"type": "long", "name": "count", "required": true},
        ]),
        "{described}"
    );
    assert_eq!(
        described["outputs"],
        json!([{"type": "double", "name": "probability", "required": true}])
    );
    assert_eq!(
        described["flavors"]["custom"],
        json!({"artifact": "model.json", "format_version": 1})
    );
    assert_eq!(
        described["model_id"].as_str(),
        Some(model.model_id.as_str())
    );
    assert_eq!(described["run_id"].as_str(), Some(run.run_id.as_str()));
    assert_eq!(described["metrics"], json!(["auc"]));

    // A failed upload is marked so.
    let broken = client
        .create_logged_model(&NewLoggedModel {
            experiment_id: &experiment,
            name: "broken",
            source_run_id: None,
            model_type: None,
            params: &[],
            tags: &[],
        })
        .await
        .expect("create");
    let failed = client
        .finalize_logged_model(&broken.model_id, LoggedModelStatus::Failed)
        .await
        .expect("finalize failed");
    assert_eq!(failed.status, Some(LoggedModelStatus::Failed));
    assert!(matches!(
        client
            .get_logged_model("m-00000000000000000000000000000000")
            .await,
        Err(MlflowError::NotFound { .. })
    ));
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

/// `n` parameter keys `p000`, `p001`, …: more than one MLflow call takes, so the client must split them.
fn numbered_keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("p{i:03}")).collect()
}

/// The parameters `p000 = v0`, `p001 = v1`, … for `keys`, in the shape the client takes.
fn numbered_params(keys: &[String]) -> Vec<(&str, String)> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), format!("v{i}")))
        .collect()
}
