//! `fraudops train` with MLflow: what a run records, and the champion gate.

use fraudops_mlflow::testing;
use fraudops_mlflow::testing::rest::{self, kv};
use serde_json::{Value, json};

use crate::support::{FAKE_COMMIT, Retraining, TINY, fraudops, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn better_model_takes_champion_worse_one_does_not_and_mlflow_shows_everything() {
    let Some(uri) = testing::shared("better_model_takes_champion_worse_one_does_not") else {
        return;
    };
    let t = Retraining::new(&uri, "gate-experiment", "gate-model");
    let (dir, data, experiment, model) = (&t.dir, &t.data, t.experiment, t.model);

    // 1. A deliberately weak first model: no champion yet, so it becomes the champion.
    let stdout = t.train_ok("tiny", &TINY);
    let promoted = format!("PROMOTED {model} version 1 to @champion (was: none)");
    t.assert_gate(&stdout, &promoted, "1").await;

    // 2. The default model: better on the same window, so it takes over.
    let stdout = t.train_ok("good", &["--decision-out", "good/decision.json"]);
    let promoted = format!("PROMOTED {model} version 2 to @champion (was: version 1)");
    t.assert_gate(&stdout, &promoted, "2").await;
    let decision: Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("good/decision.json")).expect("decision file"),
    )
    .expect("decision JSON");
    assert_eq!(decision["promoted"], true);
    assert_eq!(decision["reason"], "not_worse");
    assert_eq!(decision["version"], 2);
    assert_eq!(decision["champion_version"], 1);
    assert_eq!(decision["metric"], "average_precision");

    // 3. The weak model again: worse than the champion, registered but not promoted.
    let stdout = t.train_ok("tiny2", &TINY);
    let rejected = format!("REJECTED {model} version 3; @champion stays on version 2");
    t.assert_gate(&stdout, &rejected, "2").await;

    // Everything is visible through MLflow's REST API.
    let exp = rest::get(
        &uri,
        "experiments/get-by-name",
        &[("experiment_name", experiment)],
    )
    .await;
    let experiment_id = exp["experiment"]["experiment_id"]
        .as_str()
        .expect("experiment id")
        .to_owned();
    let runs = rest::post(
        &uri,
        "runs/search",
        json!({"experiment_ids": [experiment_id], "order_by": ["attributes.start_time ASC"]}),
    )
    .await;
    let runs = runs["runs"].as_array().expect("runs").clone();
    assert_eq!(runs.len(), 3, "one run per training");
    let sha = file_sha256(data);
    for (run, (decision, folder)) in runs.iter().zip([
        ("promoted", "tiny"),
        ("promoted", "good"),
        ("rejected", "tiny2"),
    ]) {
        assert_eq!(run["info"]["status"], "FINISHED");
        let data_ = &run["data"];
        let params = &data_["params"];
        assert_eq!(kv(params, "data_sha256"), Some(&json!(sha)));
        assert_eq!(kv(params, "git_commit"), Some(&json!(FAKE_COMMIT)));
        assert_eq!(kv(params, "train_start"), Some(&json!("2018-05-01")));
        for key in [
            "iterations",
            "max_depth",
            "learning_rate",
            "train_days",
            "test_days",
        ] {
            assert!(kv(params, key).is_some(), "param {key} missing: {params}");
        }
        let metrics = &data_["metrics"];
        for key in [
            "roc_auc",
            "average_precision",
            "card_precision_at_100",
            "train_seconds",
            "train_rows",
            "test_rows",
        ] {
            assert!(
                kv(metrics, key).and_then(Value::as_f64).is_some(),
                "metric {key} missing: {metrics}"
            );
        }
        let tags = &data_["tags"];
        assert_eq!(kv(tags, "fraudops.gate.decision"), Some(&json!(decision)));
        assert_eq!(
            kv(tags, "mlflow.source.git.commit"),
            Some(&json!(FAKE_COMMIT))
        );
        // The uploaded artifact is byte for byte the file train wrote.
        let run_id = run["info"]["run_id"].as_str().expect("run id");
        let artifact_uri = run["info"]["artifact_uri"].as_str().expect("artifact uri");
        let uploaded = rest::artifact_bytes(&uri, artifact_uri, "model/model.json").await;
        let written = std::fs::read(dir.path().join(folder).join("model.json")).expect("local");
        assert_eq!(uploaded, written, "run {run_id}");
    }
    let ap =
        |i: usize| kv(&runs[i]["data"]["metrics"], "average_precision").and_then(Value::as_f64);
    assert!(ap(1) > ap(0), "the default model must beat the stump");
    // The rejected run also recorded the champion it lost to, scored on its own window.
    let rejected = &runs[2]["data"];
    assert_eq!(
        kv(&rejected["tags"], "fraudops.gate.champion_version"),
        Some(&json!("2"))
    );
    assert_eq!(
        kv(&rejected["metrics"], "champion_average_precision").and_then(Value::as_f64),
        ap(1)
    );

    // Three versions, each from its run, tagged with the decision.
    for (version, decision, folder) in [
        ("1", "promoted", "tiny"),
        ("2", "promoted", "good"),
        ("3", "rejected", "tiny2"),
    ] {
        let got = rest::get(
            &uri,
            "model-versions/get",
            &[("name", model), ("version", version)],
        )
        .await;
        let mv = &got["model_version"];
        assert_eq!(mv["status"], "READY");
        assert_eq!(
            kv(&mv["tags"], "fraudops.gate.decision"),
            Some(&json!(decision))
        );
        let local = t.version_in(folder);
        assert_eq!(
            kv(&mv["tags"], "fraudops.model_version"),
            Some(&json!(local))
        );
    }
}

#[tokio::test]
async fn train_then_validate_then_register_is_the_same_gate() {
    let Some(uri) = testing::shared("train_then_validate_then_register_is_the_same_gate") else {
        return;
    };
    let t = Retraining::new(&uri, "steps-experiment", "steps-model");
    let (dir, data, model) = (&t.dir, &t.data, t.model);
    let with_mlflow = |cmd: &mut std::process::Command| {
        cmd.env("MLFLOW_TRACKING_URI", &uri)
            .env("MLFLOW_EXPERIMENT", t.experiment)
            .env("MLFLOW_MODEL_NAME", model);
    };

    // train --no-mlflow touches no server even with MLFLOW_TRACKING_URI set.
    let mut cmd = fraudops(dir.path());
    cmd.args([
        "train",
        "--train-start",
        "2018-05-01",
        "--no-mlflow",
        "--out",
        "m",
        "--data",
    ])
    .arg(data);
    with_mlflow(&mut cmd);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("mlflow: off"), "{stdout}");
    assert!(!stdout.contains("gate:"), "{stdout}");

    // validate: passes the default floor, fails an impossible one with the reason.
    let (out, stdout, stderr) =
        run(fraudops(dir.path()).args(["validate", "--model", "m/model.json"]));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let (out, _, stderr) = run(fraudops(dir.path()).args([
        "validate",
        "--model",
        "m/model.json",
        "--min-roc-auc",
        "0.999",
    ]));
    assert!(!out.status.success());
    assert!(
        stderr.contains("roc_auc") && stderr.contains("below the minimum 0.999"),
        "{stderr}"
    );

    // register: first version, promoted.
    let mut cmd = fraudops(dir.path());
    cmd.args(["register", "--model", "m/model.json", "--data"])
        .arg(data);
    with_mlflow(&mut cmd);
    let (out, stdout, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let promoted = format!("PROMOTED {model} version 1 to @champion");
    t.assert_gate(&stdout, &promoted, "1").await;

    // register with other data: refused before anything is logged (the gate needs the model's window).
    let other = dir.path().join("other.csv.gz");
    let (out, _, stderr) = run(fraudops(dir.path()).args([
        "simulate",
        "--out",
        other.to_str().expect("utf-8"),
        "--customers",
        "100",
        "--terminals",
        "200",
        "--days",
        "40",
    ]));
    assert!(out.status.success(), "{stderr}");
    let mut cmd = fraudops(dir.path());
    cmd.args(["register", "--model", "m/model.json", "--data"])
        .arg(&other);
    with_mlflow(&mut cmd);
    let (out, _, stderr) = run(&mut cmd);
    assert!(!out.status.success());
    assert!(stderr.contains("is not the file"), "{stderr}");
    let filter = format!("name='{model}'");
    let versions = rest::get(&uri, "model-versions/search", &[("filter", &filter)]).await;
    assert_eq!(
        versions["model_versions"].as_array().map(Vec::len),
        Some(1),
        "{versions}"
    );
}

fn file_sha256(path: &std::path::Path) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(
        std::fs::read(path).expect("read data"),
    ))
}
