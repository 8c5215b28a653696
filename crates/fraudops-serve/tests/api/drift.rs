//! Drift, end to end: a model trained on simulated data carries its reference histograms, a
//! real server scores replayed traffic, and `/metrics` reports the PSI of what it saw.
//!
//! * normal traffic — later days of the same simulation, never seen by training — keeps the score PSI
//!   under 0.1;
//! * the same days with every amount doubled (`fraudops simulate --amount-scale 2`, labels unchanged)
//!   push it over 0.2, the `ScoreDistributionDrift` threshold.
//!
//! * the week — a model trained on traffic with a week of its own (night amounts halved, weekend ones
//!   ×1.5), and a fortnight of the same kind of traffic replayed in event time through a window of 4
//!   hours: compared with the part of the week it holds, no window would fire `ScoreDistributionDrift`
//!   (compared with the whole week, as before, nights and weekends do); doubling the amounts of its second
//!   week still fires from the first window after the change.
//!
//! Transactions are sent in batches with their precomputed windows as `history` (what the stream worker
//! sends), so the served vectors are the batch features; no Redis or Kafka is needed.

use std::sync::OnceLock;

use chrono::NaiveDate;
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_features::{FEATURE_NAMES, batch};
use fraudops_serve::{DriftClock, ModelSource, ServeConfig};
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

/// The week of the seasonal simulations: people spend half at night and half as much again on weekends.
fn seasonal(config: SimulatorConfig) -> SimulatorConfig {
    SimulatorConfig {
        night_amount_scale: 0.5,
        weekend_amount_scale: 1.5,
        ..config
    }
}

/// First replayed day: after the test window (2018-05-23 .. 2018-05-29) and one spare day.
const REPLAY_FROM: &str = "2018-05-31 00:00:00";

/// The model trained on the normal simulation, as artifact JSON (trained once per test binary).
fn model_json() -> &'static str {
    static MODEL: OnceLock<String> = OnceLock::new();
    MODEL.get_or_init(|| trained(&simulation(1.0)))
}

/// A model trained on `config`'s data (days 38–58), as artifact JSON.
fn trained(config: &SimulatorConfig) -> String {
    {
        let txs = generate(config).expect("valid simulator config");
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
    }
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

/// The fortnight's drift window (DRIFT_WINDOW_SECONDS): 4 hours, so that at the replay's 20,000
/// transactions a day most windows hold the 1,000 predictions a PSI needs (production traffic fills the
/// default 10 minutes); a window still holds one part of the day.
const WEEK_WINDOW_SECONDS: u64 = 4 * 3600;

/// One reading of `/metrics` after a half window of event time was replayed.
struct Reading {
    /// The half window's end (event time).
    until: i64,
    /// `ml_model_score_psi`, absent below the minimum of predictions.
    psi: Option<f64>,
}

/// Replays `txs[from..]` in event-time order to a fresh server on `artifact` (DRIFT_CLOCK=event), a
/// half window at a time, reading the score PSI after each.
async fn replay_in_event_time(
    artifact: &str,
    txs: &[fraudops_data::Transaction],
    from: i64,
) -> Vec<Reading> {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("model.json");
    std::fs::write(&path, artifact).expect("model written");
    let config = ServeConfig {
        drift_window_seconds: WEEK_WINDOW_SECONDS,
        drift_clock: DriftClock::Event,
        ..ServeConfig::for_tests()
    };
    let server = TestServer::start(config, ModelSource::File(path)).await;
    let features = batch::compute(txs);
    let half = (WEEK_WINDOW_SECONDS / 2) as i64;
    let mut readings = Vec::new();
    let mut slot: Vec<Value> = Vec::new();
    let mut slot_index = from.div_euclid(half);
    for (i, t) in txs
        .iter()
        .enumerate()
        .filter(|(_, t)| t.tx_datetime >= from)
    {
        let k = t.tx_datetime.div_euclid(half);
        if k != slot_index {
            send_and_read(&server, &mut slot, &mut readings, (slot_index + 1) * half).await;
            slot_index = k;
        }
        slot.push(request(t, features.row(i)));
    }
    send_and_read(&server, &mut slot, &mut readings, (slot_index + 1) * half).await;
    server.shutdown().await;
    readings
}

async fn send_and_read(
    server: &TestServer,
    slot: &mut Vec<Value>,
    readings: &mut Vec<Reading>,
    until: i64,
) {
    for chunk in slot.chunks(1000) {
        let response = server
            .post_for_json("/predict/batch", &json!({ "transactions": chunk }))
            .await;
        assert_eq!(
            response["predictions"].as_array().map(Vec::len),
            Some(chunk.len()),
            "{response}"
        );
    }
    slot.clear();
    let text = server.metrics().await;
    readings.push(Reading {
        until,
        psi: metric(&text, "ml_model_score_psi"),
    });
}

/// What `ScoreDistributionDrift` (PSI over 0.2) would see: the readings over the line, the measured
/// ones, the largest.
fn over_the_line(readings: &[Reading]) -> (usize, usize, f64) {
    let measured: Vec<f64> = readings.iter().filter_map(|r| r.psi).collect();
    let over = measured.iter().filter(|&&p| p > 0.2).count();
    let max = measured.iter().copied().fold(0.0, f64::max);
    (over, measured.len(), max)
}

#[tokio::test]
async fn a_normal_fortnight_with_a_week_of_its_own_raises_no_drift_and_doubled_amounts_still_do() {
    use fraudops_model::ModelArtifact;

    // A population large enough for most 4-hour windows to hold 1,000 predictions (20,000 transactions a
    // day); the fraud scenarios draw a fixed number of terminals and cards a day, so the replayed world has
    // the same size as the trained one.
    let population = |seed: u64, n_days: u32, start: NaiveDate| {
        seasonal(SimulatorConfig {
            n_customers: 10_000,
            n_terminals: 20_000,
            n_days,
            seed,
            start_date: start,
            ..SimulatorConfig::default()
        })
    };
    let april = NaiveDate::from_ymd_opt(2018, 4, 1).expect("valid date");
    let model = trained(&population(3, 60, april));
    let artifact = ModelArtifact::from_json(model.as_bytes()).expect("artifact");
    let reference = artifact.reference.clone().expect("reference");
    assert!(reference.time_of_week.is_some(), "training keeps the week");
    // The same model as an artifact from before the week: its windows are compared with the whole week.
    let week_only = artifact
        .clone()
        .with_reference(fraudops_model::reference::Reference {
            time_of_week: None,
            ..reference
        })
        .to_json();

    // Other cards and terminals than training's, later: 37 days of history, then the fortnight.
    let world = population(
        11,
        51,
        NaiveDate::from_ymd_opt(2018, 7, 2).expect("valid date"),
    );
    let txs = generate(&world).expect("valid simulator config");
    let from = fraudops_data::writer::parse_datetime("2018-08-08 00:00:00").expect("valid time");
    let shift = from + 7 * 86_400;
    // The second week with every amount doubled (prices moved): history is computed from the doubled
    // amounts, as the store would hold them.
    let doubled: Vec<_> = txs
        .iter()
        .map(|t| {
            let mut t = t.clone();
            if t.tx_datetime >= shift {
                t.tx_amount = (t.tx_amount * 200.0).round() / 100.0;
            }
            t
        })
        .collect();

    let normal = replay_in_event_time(&model, &txs, from).await;
    let before = replay_in_event_time(&week_only, &txs, from).await;
    let shifted = replay_in_event_time(&model, &doubled, from).await;

    let (over, measured, max) = over_the_line(&normal);
    let (over_before, measured_before, max_before) = over_the_line(&before);
    println!(
        "fortnight, {} half windows of {} h: against the part of the week {over} of {measured} readings over 0.2 (largest {max:.3}); against the whole week {over_before} of {measured_before} (largest {max_before:.3})",
        normal.len(),
        WEEK_WINDOW_SECONDS / 7200
    );
    assert!(
        measured * 10 >= normal.len() * 7,
        "most windows hold enough predictions: {measured} of {}",
        normal.len()
    );
    assert_eq!(
        over, 0,
        "a normal fortnight fires nothing; largest PSI {max}"
    );
    assert!(
        over_before > 0,
        "the traffic has a week of its own: compared with the whole week, some window drifts (largest {max_before})"
    );

    // Doubled amounts: every window from the first one that lies wholly after the change is over the line
    // (the alert fires 30 minutes after the first, within its for:).
    let after: Vec<&Reading> = shifted
        .iter()
        .filter(|r| r.until >= shift + WEEK_WINDOW_SECONDS as i64)
        .collect();
    let first = shifted
        .iter()
        .find(|r| r.until > shift && r.psi.is_some_and(|p| p > 0.2))
        .map(|r| (r.until - shift) as f64 / 3600.0);
    let lowest_after = after
        .iter()
        .filter_map(|r| r.psi)
        .fold(f64::INFINITY, f64::min);
    println!(
        "amounts doubled from day 8: first reading over 0.2 {first:?} h after the change; lowest PSI of the {} windows wholly after it {lowest_after:.3}",
        after.len()
    );
    assert!(
        after.iter().filter_map(|r| r.psi).all(|p| p > 0.2),
        "every window after the change is over the line (lowest {lowest_after})"
    );
    assert!(
        first.is_some_and(|h| h <= WEEK_WINDOW_SECONDS as f64 / 3600.0),
        "over the line within a window of the change: {first:?} h"
    );
}
