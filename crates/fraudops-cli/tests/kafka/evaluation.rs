//! Online evaluation end to end: `fraudops serve` with the feature store scores a simulated
//! file's transactions as direct `POST /predict` calls (`fraudops eval-online`), recording each score in
//! Redis off the response path; the labels go to `fraud-labels` 3 days (event time) later and
//! `fraudops labels` joins each with its recorded score. Its `/metrics` must then show the online metrics
//! of its event-time window equal to the same metrics computed offline (batch features, the same
//! model, training's metric functions) on the same transactions: those labelled on the topic, of the last
//! WINDOW_DAYS event-time days that have labels. Run twice: on normal traffic, and with every amount
//! doubled, where the API's score PSI and the consumer's online AP must show the shift (issue 21's proof
//! through the real servers and `fraud-labels`). The metrics are read for the served model's version (the
//! consumer labels them by the version that scored), and a consumer killed and started again must export
//! the same window, restored from the store, before it reads any label.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fraudops_data::reader::read_transactions;
use fraudops_features::batch;
use fraudops_features::definition::DAY;
use fraudops_model::Model;
use fraudops_train::metrics::{ScoredCard, average_precision, card_precision_at_k, roc_auc};
use fraudops_wire::{LabelEvent, TransactionId};

use crate::common::http_get;
use crate::helpers::{
    Broker, Proc, Redis, fraudops, fraudops_ok, free_port, metric, wait_for, wait_until,
};

const NAME: &str = "online evaluation of direct calls";

/// The evaluation window here: labels come 3 days (event time) after their transaction, so the last
/// labelled day is the test week's fourth (2018-08-11), and a 4-day window is 2018-08-08 .. 08-11: days
/// whose transactions have their full history in the replay (it starts 37 days before the test week, the
/// longest reach of a window; earlier days were scored with part of it, as the replay intends).
const WINDOW_DAYS: i64 = 4;
/// 2018-08-08 00:00:00 UTC, the test week's first second (SPEC §3.3's default split).
const TEST_START: i64 = 1_533_686_400;

/// Simulates the evaluation file (amounts scaled by `amount_scale`) into `path`: SPEC §3.3's default split
/// and the 37 days before its test week (about 30,000 transactions).
fn simulate(path: &Path, amount_scale: f64) {
    fraudops_ok(&[
        "simulate",
        "--out",
        path.to_str().expect("utf-8 path"),
        "--customers",
        "300",
        "--terminals",
        "600",
        "--days",
        "56",
        "--start-date",
        "2018-06-20",
        "--seed",
        "7",
        "--amount-scale",
        &amount_scale.to_string(),
    ]);
}

/// The served model: trained on the normal file's 14 days before the split's delay, so its reference
/// histograms describe this population (the embedded model's describe the default simulation's, ten
/// times larger: a different score distribution, as PSI rightly says).
fn train_model(dir: &Path) -> PathBuf {
    let data = dir.join("normal.csv");
    simulate(&data, 1.0);
    let model_dir = dir.join("model");
    fraudops_ok(&[
        "train",
        "--no-mlflow",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--out",
        model_dir.to_str().expect("utf-8 path"),
        "--train-start",
        "2018-07-18",
        "--train-days",
        "14",
    ]);
    model_dir.join("model.json")
}

/// What a replay showed on the label consumer's and the API's `/metrics`.
struct Replayed {
    /// `ml_model_online_average_precision`: the labelled window's AP.
    online_ap: f64,
    /// `ml_model_offline_average_precision`: the served model's own test AP, what `ModelQualityDegraded`
    /// compares with.
    champion_ap: f64,
    /// `ml_model_score_psi` of the API after the replay.
    score_psi: f64,
}

/// `ModelQualityDegraded`'s tolerance under the champion's offline AP (deploy/monitoring/rules/alerts.yaml).
const AP_TOLERANCE: f64 = 0.05;

/// Normal traffic, then the same file with every amount doubled (`fraudops simulate --amount-scale 2`:
/// prices moved, fraud did not), each through its own real API, feature store, broker and label consumer.
/// Both times the consumer's online metrics equal the offline ones; normal traffic keeps the online AP
/// above `ModelQualityDegraded`'s line; the shifted replay pushes the API's score PSI over
/// `ScoreDistributionDrift`'s 0.2 (and well over normal traffic's) and lowers the online AP the consumer
/// computes from `fraud-labels` by more than that alert's tolerance.
pub fn labels_consumer_exports_online_metrics_equal_to_offline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let model = train_model(dir.path());
    let Some(normal) = replay(1.0, &model) else {
        return;
    };
    let Some(shifted) = replay(2.0, &model) else {
        return;
    };
    assert!(
        normal.online_ap >= normal.champion_ap - AP_TOLERANCE,
        "normal traffic: online AP {} under the champion's {} by more than {AP_TOLERANCE}",
        normal.online_ap,
        normal.champion_ap
    );
    // The API's PSI here covers the whole replay, five weeks of it scored while the store still filled
    // (part of their history), so normal traffic's level is not steady traffic's; tests/api/drift.rs
    // shows that under 0.1. What doubling the amounts does to it is the point here.
    assert!(
        shifted.score_psi > 0.2 && shifted.score_psi > 2.0 * normal.score_psi,
        "amounts doubled: score PSI {} (normal traffic {}): not above 0.2 and twice the normal level",
        shifted.score_psi,
        normal.score_psi
    );
    assert!(
        shifted.online_ap < normal.online_ap - AP_TOLERANCE,
        "amounts doubled: online AP {} not under normal traffic's {} by {AP_TOLERANCE}",
        shifted.online_ap,
        normal.online_ap
    );
}

/// Simulates the evaluation file with amounts scaled by `amount_scale`, replays it as direct calls to a
/// real API with the feature store, labels through `fraud-labels` to a real label consumer, and checks the
/// consumer's online metrics equal the offline ones on the same labelled window. `None` when skipped.
fn replay(amount_scale: f64, model_path: &Path) -> Option<Replayed> {
    let model_path = || model_path.to_str().expect("utf-8 path").to_owned();
    let broker = Broker::start();
    let redis = Redis::start_or_skip(&broker, NAME)?;
    // The file of scripts/test-eval-online.sh: it covers SPEC §3.3's default split and the 37 days before
    // its test week (about 30,000 transactions replayed).
    let data = broker.path("small.csv");
    simulate(&data, amount_scale);

    let api_port = free_port();
    let mut cmd = fraudops(&[
        "serve",
        "--bind",
        "127.0.0.1",
        "--port",
        &api_port.to_string(),
    ]);
    cmd.env("RUST_LOG", "warn")
        .env("MODEL_PATH", model_path())
        .env("FEATURE_STORE_URL", redis.url())
        .env("FEATURE_STORE_TIMEOUT", "5s")
        .env("MAX_IN_FLIGHT", "4096");
    let _api = Proc::spawn(cmd, "api", broker.dir.path());
    let api = format!("127.0.0.1:{api_port}");
    wait_for("the API to be ready", Duration::from_secs(20), || {
        http_get(&api, "/ready").starts_with("HTTP/1.1 200")
    });
    let start_labels = |name: &str, port: u16| {
        broker.spawn(
            name,
            &[
                "labels",
                "--metrics-port",
                &port.to_string(),
                "--feature-store-timeout",
                "5s",
                "--eval-interval",
                "200ms",
                "--eval-window-days",
                &WINDOW_DAYS.to_string(),
            ],
            &[
                ("FEATURE_STORE_URL", redis.url().as_str()),
                ("RUST_LOG", "warn"),
            ],
        )
    };
    let labels_port = free_port();
    let mut labels_proc = start_labels("labels", labels_port);
    wait_for(
        "the label consumer's /metrics",
        Duration::from_secs(20),
        || metric(labels_port, "ml_model_online_labelled_total", &[]).is_some(),
    );

    let mut replay = fraudops(&[
        "eval-online",
        "--data",
        data.to_str().expect("utf-8 path"),
        "--model",
        &model_path(),
        "--api-url",
        &format!("http://{api}"),
    ]);
    replay.env("KAFKA_BOOTSTRAP_SERVERS", &broker.addr);
    let out = replay.output().expect("run fraudops eval-online");
    let score_psi = metric(api_port, "ml_model_score_psi", &[])
        .expect("the API exports its score PSI right after the replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "eval-online failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in stdout
        .lines()
        .filter(|l| l.contains("differently") || l.starts_with('|'))
    {
        println!("    eval-online: {line}");
    }
    let labels_sent: f64 = stdout
        .lines()
        .find_map(|l| {
            let rest = l.split(" labels, ").next()?;
            rest.rsplit(", ").next()?.parse().ok()
        })
        .unwrap_or(0.0);

    // Offline: the transactions whose labels reached `fraud-labels` (the replay's last 3 days have none
    // yet), of the last WINDOW_DAYS event-time days that have labels: the consumer's window. Scored with
    // batch features.
    let labelled: HashMap<u64, i64> = broker
        .read("fraud-labels")
        .iter()
        .map(|r| serde_json::from_slice::<LabelEvent>(&r.payload).expect("label JSON"))
        .map(|l| {
            let id = match &l.transaction_id {
                TransactionId::Number(n) => *n,
                TransactionId::Text(t) => t.parse().expect("numeric id"),
            };
            (id, l.time().expect("label time").div_euclid(DAY))
        })
        .collect();
    let newest = labelled.values().copied().max().expect("labels were sent");
    let first_day = newest - (WINDOW_DAYS - 1);
    assert!(
        first_day >= TEST_START / DAY,
        "the window starts on day {first_day}, before the test week: those days lack history"
    );
    let txs = read_transactions(&data).expect("read").transactions;
    let features = batch::compute(&txs);
    let model = Model::load(std::path::Path::new(&model_path())).expect("model");
    // The consumer's gauges are per version of the model that scored; one version served here.
    let version_label = format!("model_version=\"{}\"", model.version());
    let (mut scores, mut labels, mut flagged, mut cards) = (vec![], vec![], vec![], vec![]);
    for (i, t) in txs.iter().enumerate() {
        let Some(&day) = labelled.get(&t.transaction_id) else {
            continue;
        };
        if day < first_day {
            continue;
        }
        let p = model.predict(features.row(i));
        scores.push(p.fraud_probability);
        labels.push(t.tx_fraud);
        flagged.push(p.is_fraud);
        cards.push(ScoredCard {
            day: (day - first_day) as u32,
            customer_id: t.customer_id,
            score: p.fraud_probability,
            fraud: t.tx_fraud,
        });
    }
    let n = scores.len() as f64;
    let tp = (0..scores.len())
        .filter(|&i| labels[i] && flagged[i])
        .count() as f64;
    let expected: HashMap<&str, f64> = HashMap::from([
        (
            "ml_model_online_roc_auc",
            roc_auc(&scores, &labels).expect("both classes"),
        ),
        (
            "ml_model_online_average_precision",
            average_precision(&scores, &labels).expect("frauds"),
        ),
        (
            "ml_model_online_card_precision_at_100",
            card_precision_at_k(&cards, 100),
        ),
        (
            "ml_model_online_precision",
            tp / flagged.iter().filter(|&&f| f).count() as f64,
        ),
        (
            "ml_model_online_recall",
            tp / labels.iter().filter(|&&f| f).count() as f64,
        ),
        ("ml_model_online_window_samples", n),
        (
            "ml_model_online_window_frauds",
            labels.iter().filter(|&&f| f).count() as f64,
        ),
    ]);

    // Every label joined with its score, none unscored, the window the last 7 labelled days.
    let window_is_offline_s = |port: u16| -> Result<(), String> {
        let mut off = Vec::new();
        for (name, want) in &expected {
            let v = metric(port, name, &[&version_label]).unwrap_or(f64::NAN);
            if (v - want).abs().is_nan() || (v - want).abs() > 1e-9 {
                off.push(format!("{name}{{{version_label}}} = {v}, offline {want}"));
            }
        }
        if off.is_empty() {
            Ok(())
        } else {
            Err(off.join("; "))
        }
    };
    wait_until(
        "the online metrics of the labelled window",
        Duration::from_secs(60),
        || {
            let got = |name: &str| metric(labels_port, name, &[]).unwrap_or(f64::NAN);
            let mut off: Vec<String> = window_is_offline_s(labels_port).err().into_iter().collect();
            let (joined, unscored) = (
                got("ml_model_online_labelled_total"),
                got("ml_model_online_unscored_total"),
            );
            if unscored != 0.0 {
                off.push(format!("{unscored} labels without a score"));
            }
            if labels_sent > 0.0 && joined < labels_sent {
                off.push(format!("{joined} of {labels_sent} labels joined"));
            }
            if off.is_empty() {
                Ok(())
            } else {
                Err(off.join("; "))
            }
        },
    );
    // A restart (SIGKILL: no goodbye) keeps the window: the new consumer restores it from the store and
    // exports the same metrics before any label arrives (its group has committed every label, so none is
    // read again).
    labels_proc.kill();
    let restarted_port = free_port();
    let _restarted = start_labels("labels-restarted", restarted_port);
    wait_until(
        "the restarted consumer's restored window",
        Duration::from_secs(60),
        || window_is_offline_s(restarted_port),
    );
    assert_eq!(
        metric(restarted_port, "ml_model_online_labelled_total", &[]),
        Some(0.0),
        "the restored window came from the store, not from labels read again"
    );
    let replayed = Replayed {
        online_ap: expected["ml_model_online_average_precision"],
        champion_ap: metric(
            api_port,
            "ml_model_offline_average_precision",
            &[&version_label],
        )
        .expect("the API exports its model's offline AP"),
        score_psi,
    };
    println!(
        "    amounts ×{amount_scale}: online = offline on {n} labelled transactions of {WINDOW_DAYS} days: AP {:.4} (champion offline {:.4}), ROC AUC {:.4}, CP@100 {:.4}; API score PSI {:.3}",
        replayed.online_ap,
        replayed.champion_ap,
        expected["ml_model_online_roc_auc"],
        expected["ml_model_online_card_precision_at_100"],
        replayed.score_psi
    );
    // The scores were recorded by the API off the response path, without a failure.
    let api_port_metrics = metric(
        api_port,
        "ml_model_feature_store_errors_total",
        &["op=\"record\""],
    )
    .unwrap_or(0.0);
    assert_eq!(api_port_metrics, 0.0, "scores the API could not record");
    Some(replayed)
}
