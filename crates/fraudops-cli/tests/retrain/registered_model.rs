//! A registered version is an MLflow 3 model: `fraudops register` (the DAG's path) logs a model
//! linked to its run, whose artifacts hold `MLmodel` (the `fraudops` flavor, the 20-feature
//! signature), `model.json` and `metrics.json`; MLflow's Python client reads the signature from
//! `models:/NAME@champion` and `mlflow.pyfunc` scores with it as `serve` does; `serve` loads the
//! same `model.json`, and still loads a version registered the old way (from the run's `model/`
//! folder).

use fraudops_features::{FEATURE_NAMES, FeatureVector};
use fraudops_mlflow::testing::{self, rest};
use fraudops_mlflow::{MlflowClient, RunStatus};
use serde_json::{Value, json};

use crate::support::{Retraining, Serve, TINY, fraudops, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registered_version_is_an_mlflow_model_python_describes_and_serve_loads() {
    let Some(uri) = testing::shared("registered_version_is_an_mlflow_model") else {
        return;
    };
    let t = Retraining::new(&uri, "mlmodel-experiment", "mlmodel-model");
    let (dir, model) = (t.dir.path(), t.model);
    let train_no_mlflow = |out: &str, extra: &[&str]| {
        let (output, stdout, stderr) = run(fraudops(dir)
            .args([
                "train",
                "--train-start",
                "2018-05-01",
                "--no-mlflow",
                "--out",
            ])
            .arg(out)
            .arg("--data")
            .arg(&t.data)
            .args(extra));
        assert!(output.status.success(), "train {out}: {stdout}\n{stderr}");
    };
    train_no_mlflow("m", &[]);
    let (output, stdout, stderr) = run(fraudops(dir)
        .args([
            "register",
            "--model",
            "m/model.json",
            "--decision-out",
            "decision.json",
        ])
        .arg("--data")
        .arg(&t.data)
        .env("MLFLOW_TRACKING_URI", &uri)
        .env("MLFLOW_EXPERIMENT", t.experiment)
        .env("MLFLOW_MODEL_NAME", model));
    assert!(output.status.success(), "register: {stdout}\n{stderr}");
    t.assert_gate(&stdout, "PROMOTED", "1").await;
    let decision: Value =
        serde_json::from_slice(&std::fs::read(dir.join("decision.json")).expect("decision"))
            .expect("decision JSON");
    let run_id = decision["run_id"].as_str().expect("run_id");
    let model_id = decision["model_id"]
        .as_str()
        .expect("model_id in the decision");
    assert!(model_id.starts_with("m-"), "{decision}");

    // The version comes from the logged model, which comes from the run.
    let got = rest::get(
        &uri,
        "model-versions/get",
        &[("name", model), ("version", "1")],
    )
    .await;
    let mv = &got["model_version"];
    assert_eq!(mv["source"], json!(format!("models:/{model_id}")), "{got}");
    assert_eq!(mv["run_id"].as_str(), Some(run_id), "{got}");
    let got = rest::get(&uri, &format!("logged-models/{model_id}"), &[]).await;
    let info = &got["model"]["info"];
    assert_eq!(info["status"], "LOGGED_MODEL_READY", "{got}");
    assert_eq!(info["source_run_id"].as_str(), Some(run_id));
    let local_version = t.version_in("m");
    assert_eq!(info["name"].as_str(), Some(local_version.as_str()));
    let got_run = rest::get(&uri, "runs/get", &[("run_id", run_id)]).await;
    assert_eq!(
        got_run["run"]["outputs"]["model_outputs"][0]["model_id"].as_str(),
        Some(model_id),
        "the run lists the model among its outputs: {got_run}"
    );

    // Its artifacts: model.json byte for byte, metrics.json, MLmodel naming the flavor.
    let root = info["artifact_uri"].as_str().expect("artifact_uri");
    let local = std::fs::read(dir.join("m/model.json")).expect("local model.json");
    assert_eq!(rest::artifact_bytes(&uri, root, "model.json").await, local);
    let metrics: Value =
        serde_json::from_slice(&rest::artifact_bytes(&uri, root, "metrics.json").await)
            .expect("metrics.json");
    assert!(metrics["average_precision"].as_f64().is_some(), "{metrics}");
    let mlmodel = String::from_utf8(rest::artifact_bytes(&uri, root, "MLmodel").await)
        .expect("MLmodel is text");
    assert!(
        mlmodel.contains(&format!("model_id: {model_id}")),
        "{mlmodel}"
    );

    // MLflow's own Python client describes the champion.
    let described = testing::python_model_info(&uri, &format!("models:/{model}@champion"));
    let inputs = described["inputs"].as_array().expect("a signature");
    assert_eq!(inputs.len(), 20, "{described}");
    for (column, name) in inputs.iter().zip(FEATURE_NAMES) {
        assert_eq!(
            column,
            &json!({"type": "double", "name": name, "required": true})
        );
    }
    assert_eq!(
        described["outputs"],
        json!([{"type": "double", "name": "fraud_probability", "required": true}])
    );
    let flavor = &described["flavors"]["fraudops"];
    assert_eq!(flavor["artifact"], "model.json", "{described}");
    assert_eq!(flavor["format_version"], 1);
    assert_eq!(flavor["fraudops_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(flavor["loader"], "fraudops serve");
    assert_eq!(
        flavor["model_version"].as_str(),
        Some(local_version.as_str())
    );
    assert_eq!(
        described["flavors"]["python_function"]["loader_module"], "fraudops_pyfunc",
        "{described}"
    );
    assert_eq!(described["model_id"].as_str(), Some(model_id));
    assert_eq!(described["run_id"].as_str(), Some(run_id));
    let logged_metrics = described["metrics"].as_array().expect("metrics");
    assert!(
        logged_metrics.contains(&json!("average_precision")),
        "the model carries its metrics: {described}"
    );

    // Python scores with it through mlflow.pyfunc, as serve would: rows with every feature, with
    // missing values (NaN: an unknown flag or category) and with extreme amounts.
    let served = fraudops_model::Model::load(&dir.join("m/model.json")).expect("model.json loads");
    let rows: Vec<FeatureVector> = (0..24u32)
        .map(|i| {
            std::array::from_fn(|f| {
                let x = f64::from(i) * 0.37 + f as f64 * 1.9;
                match (i % 4, f % 5) {
                    (1, 0) | (1, 3) => f64::NAN,
                    (2, _) => x * 250.0,
                    _ => x.sin().abs() * f64::from(i),
                }
            })
        })
        .collect();
    let python = testing::python_pyfunc_predict(
        &uri,
        &format!("models:/{model}@champion"),
        &FEATURE_NAMES,
        &rows
            .iter()
            .map(|r| r.iter().map(|&x| (!x.is_nan()).then_some(x)).collect())
            .collect::<Vec<_>>(),
    );
    assert_eq!(python.len(), rows.len());
    for (row, p) in rows.iter().zip(&python) {
        let want = served.predict(row).fraud_probability;
        assert!(
            (p - want).abs() <= 1e-12,
            "pyfunc {p} against serve's {want} for {row:?}"
        );
    }
    let mut distinct: Vec<u64> = python.iter().map(|p| p.to_bits()).collect();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(
        distinct.len() >= 8,
        "the rows reach different leaves: {python:?}"
    );

    // serve loads the same artifact.
    let serve = Serve::follow(dir, &uri, model);
    assert_eq!(serve.wait_ready().await, local_version);

    // A version registered the old way (source: the run's model/ folder) still loads.
    train_no_mlflow("old", &TINY);
    let old_version = t.version_in("old");
    assert_ne!(old_version, local_version);
    let client = MlflowClient::new(&uri).expect("client");
    let experiment = client
        .get_or_create_experiment(t.experiment)
        .await
        .expect("experiment");
    let old_run = client
        .create_run(&experiment, "old-layout", &[])
        .await
        .expect("run");
    let bytes = std::fs::read(dir.join("old/model.json")).expect("old model.json");
    client
        .upload_artifact(&old_run, "model/model.json", bytes)
        .await
        .expect("upload");
    let source = format!("{}/model", old_run.artifact_uri);
    let old = client
        .create_model_version(model, &source, &old_run.run_id)
        .await
        .expect("register the old way");
    client
        .end_run(&old_run.run_id, RunStatus::Finished)
        .await
        .expect("end run");
    client
        .set_alias(model, "champion", old.version)
        .await
        .expect("alias");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let served = serve.model_version().await;
        if served == old_version {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not load the old-layout version {old_version}: still {served}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
