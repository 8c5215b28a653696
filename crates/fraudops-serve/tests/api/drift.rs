//! Drift, end to end: a model trained on simulated data carries its reference histograms, a
//! real server scores replayed traffic, and `/metrics` reports the PSI of what it saw.
//!
//! * normal traffic — later days of the same simulation, never seen by training — keeps the score PSI
//!   under 0.1;
//! * the same days with every amount doubled (`fraudops simulate --amount-scale 2`, labels unchanged)
//!   push it over 0.2, the `ScoreDistributionDrift` threshold.
//!
//! Transactions are sent in batches with their precomputed windows as `history` (what the stream worker
//! sends), so the served vectors are the batch features; no Redis or Kafka is needed.

use std::sync::OnceLock;

use chrono::NaiveDate;
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_features::{FEATURE_NAMES, batch};
use fraudops_serve::{ModelSource, ServeConfig};
use fraudops_train::metrics::average_precision;
use fraudops_train::{BoosterParams, SplitConfig, TrainConfig, prepare, train};
use serde_json::{Value, json};

use crate::support::{TestServer, metric};

#[path = "../../examples/support/request_body.rs"]
mod request_body;
use request_body::request;

/// 75 days of a small population: training uses days 38–58 (train, delay, test; 38 days of history
/// before it, so even the terminals' 30-day windows behind the 7-day delay are full), the replay days 60–74.
fn simulation(amount_scale: f64) -> SimulatorConfig {
    SimulatorConfig {
        n_customers: 500,
        n_terminals: 1_000,
        n_days: 75,
        seed: 3,
        amount_scale,
        ..SimulatorConfig::default()
    }
}

/// First replayed day: after the test window (2018-05-23 .. 2018-05-29) and one spare day.
const REPLAY_FROM: &str = "2018-05-31 00:00:00";

/// The model trained on the normal simulation, as artifact JSON (trained once per test binary).
fn model_json() -> &'static str {
    static MODEL: OnceLock<String> = OnceLock::new();
    MODEL.get_or_init(|| {
        let txs = generate(&simulation(1.0)).expect("valid simulator config");
        let config = TrainConfig {
            split: SplitConfig {
                train_start: NaiveDate::from_ymd_opt(2018, 5, 9).expect("valid date"),
                ..SplitConfig::default()
            },
            params: BoosterParams {
                iterations: 40,
                max_depth: 4,
                ..BoosterParams::default()
            },
            ..TrainConfig::default()
        };
        let data = prepare(&txs, &config.split, |_| {}).expect("the windows fit the data");
        let artifact = train(&data, "sha", &config, |_| {}).expect("training succeeds");
        assert!(artifact.reference.is_some(), "training stores a reference");
        artifact.to_json()
    })
}

/// What one replay measured.
struct Replayed {
    /// `ml_model_score_psi`.
    score_psi: f64,
    /// `ml_model_feature_psi{feature}` in `FEATURE_NAMES` order.
    feature_psi: Vec<(&'static str, f64)>,
    /// `ml_model_drift_window_predictions`.
    window: f64,
    /// Average precision of the served scores against the simulator's labels.
    average_precision: f64,
}

/// Replays days 60–74 of the simulation at `amount_scale` to a fresh server on the trained model and
/// reads what `/metrics` says about them.
async fn replay(amount_scale: f64) -> Replayed {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.json");
    std::fs::write(&path, model_json()).expect("model written");
    let server = TestServer::start(ServeConfig::for_tests(), ModelSource::File(path)).await;

    let txs = generate(&simulation(amount_scale)).expect("valid simulator config");
    let features = batch::compute(&txs);
    let from = fraudops_data::writer::parse_datetime(REPLAY_FROM).expect("valid time");
    let replayed: Vec<usize> = (0..txs.len())
        .filter(|&i| txs[i].tx_datetime >= from)
        .collect();
    let bodies: Vec<Value> = replayed
        .iter()
        .map(|&i| request(&txs[i], features.row(i)))
        .collect();
    assert!(bodies.len() > 5_000, "{} replayed", bodies.len());
    let mut scores = Vec::with_capacity(bodies.len());
    for chunk in bodies.chunks(1000) {
        let response = server
            .post_for_json("/predict/batch", &json!({ "transactions": chunk }))
            .await;
        let predictions = response["predictions"].as_array().expect("predictions");
        scores.extend(
            predictions
                .iter()
                .map(|p| p["fraud_probability"].as_f64().unwrap_or(f64::NAN)),
        );
    }
    let labels: Vec<bool> = replayed.iter().map(|&i| txs[i].tx_fraud).collect();
    let average_precision = average_precision(&scores, &labels).expect("frauds in the replay");

    let text = server.metrics().await;
    let score = metric(&text, "ml_model_score_psi").expect("score PSI exported");
    let per_feature = FEATURE_NAMES
        .iter()
        .map(|&name| {
            let series = format!("ml_model_feature_psi{{feature=\"{name}\"}}");
            (name, metric(&text, &series).expect("feature PSI exported"))
        })
        .collect();
    let window = metric(&text, "ml_model_drift_window_predictions").expect("window size");
    assert_eq!(window, bodies.len() as f64, "every prediction is counted");
    server.shutdown().await;
    Replayed {
        score_psi: score,
        feature_psi: per_feature,
        window,
        average_precision,
    }
}

#[tokio::test]
async fn normal_traffic_is_stable_and_doubled_amounts_drift() {
    let normal = replay(1.0).await;
    let shifted = replay(2.0).await;
    println!(
        "replayed {} predictions each: score PSI normal {:.4}, shifted {:.4}; AP normal {:.4}, shifted {:.4}",
        normal.window,
        normal.score_psi,
        shifted.score_psi,
        normal.average_precision,
        shifted.average_precision
    );
    for ((name, a), (_, b)) in normal.feature_psi.iter().zip(&shifted.feature_psi) {
        println!("  {name:<40} normal {a:.4}  shifted {b:.4}");
    }
    assert!(
        normal.score_psi < 0.1,
        "normal traffic: score PSI {}",
        normal.score_psi
    );
    assert!(
        shifted.score_psi > 0.2,
        "doubled amounts: score PSI {}",
        shifted.score_psi
    );
    let amount = |r: &Replayed| {
        r.feature_psi
            .iter()
            .find(|(n, _)| *n == "TX_AMOUNT")
            .map(|x| x.1)
    };
    assert!(amount(&normal) < Some(0.1));
    assert!(amount(&shifted) > Some(0.2));
    assert!(
        shifted.average_precision < normal.average_precision - 0.05,
        "the shift costs precision: AP {} -> {}",
        normal.average_precision,
        shifted.average_precision
    );
}

#[tokio::test]
async fn a_model_without_reference_exports_no_psi() {
    // The embedded model of an older trainer, stripped of its reference: artifacts written before drift
    // existed load and serve, and the PSI series are absent rather than a misleading 0.
    let mut artifact = fraudops_model::Model::from_json(model_json().as_bytes())
        .expect("trained model")
        .artifact()
        .clone();
    artifact.reference = None;
    artifact.checksum = artifact.compute_checksum();
    let json = artifact.to_json();
    assert!(!json.contains("\"reference\""), "old layout: no key at all");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.json");
    std::fs::write(&path, json).expect("model written");
    let server = TestServer::start(ServeConfig::for_tests(), ModelSource::File(path)).await;
    let batch: Vec<Value> = (0..1_500)
        .map(|i| crate::support::transaction(&format!("t{i}")))
        .collect();
    for chunk in batch.chunks(500) {
        let r = server
            .post_json("/predict/batch", &json!({ "transactions": chunk }))
            .await;
        assert_eq!(r.status(), 200);
    }
    let text = server.metrics().await;
    assert!(!text.contains("ml_model_score_psi"), "no score PSI series");
    assert!(
        !text.contains("ml_model_feature_psi{"),
        "no feature PSI series"
    );
    assert_eq!(
        metric(&text, "ml_model_drift_window_predictions"),
        Some(0.0)
    );
}
