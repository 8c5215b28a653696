//! Which gradient-boosting crate the trainer uses, decided by measurement: forust-ml (the one we ship)
//! against gbdt-rs and hessboost, on the same data, the same features and the same split, judged by the
//! same protocol (SPEC §3.3). The result and the rationale are in `docs/model-choice.md`.
//!
//! ```sh
//! cargo run --release -p fraudops-train --example compare_boosters            # reference-scale data, in memory
//! cargo run --release -p fraudops-train --example compare_boosters -- FILE    # or a transaction file
//! ```
//!
//! Data: the simulator's reference scale with seed 0 (what the embedded model is trained on), features
//! over the whole history, the default split (train 2018-07-25 + 7 d, delay 7 d, test 7 d). Fit seconds
//! are wall time of the library's fit alone on this machine; forust-ml and hessboost use every core
//! (rayon), gbdt-rs is single-threaded by design.

use std::process::ExitCode;
use std::time::Instant;

#[path = "support/cli.rs"]
mod cli;

use fraudops_data::reader::read_transactions;
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_features::N_FEATURES;
use fraudops_train::pipeline::evaluate_scores;
use fraudops_train::{BoosterParams, Evaluation, Prepared, TrainConfig, prepare, train};

/// One row of the result table.
struct Row {
    /// Library and setting.
    name: String,
    /// Test-window quality.
    quality: Evaluation,
    /// Wall seconds of the fit.
    fit_seconds: f64,
    /// What the candidate does with a missing (NaN) feature value.
    missing: &'static str,
}

impl Row {
    /// A candidate scored outside our pipeline: its test-window `scores`, judged by our protocol.
    fn scored(
        name: String,
        scores: &[f64],
        data: &Prepared<'_>,
        fit_seconds: f64,
        missing: &'static str,
    ) -> Row {
        Row {
            name,
            quality: evaluate_scores(scores, data),
            fit_seconds,
            missing,
        }
    }
}

/// `<library> (<n> trees, lr <x>, depth <d>)`.
fn described(library: &str, p: &BoosterParams) -> String {
    format!(
        "{library} ({} trees, lr {}, depth {})",
        p.iterations, p.learning_rate, p.max_depth
    )
}

/// The training matrix (row-major) and labels, and the test rows, of the prepared split.
struct Matrices {
    train_x: Vec<f64>,
    train_y: Vec<bool>,
    test_x: Vec<f64>,
}

fn matrices(data: &Prepared<'_>) -> Matrices {
    let gather = |rows: &[usize]| -> Vec<f64> {
        rows.iter()
            .flat_map(|&i| data.features.row(i).iter().copied())
            .collect()
    };
    Matrices {
        train_x: gather(&data.split.train),
        train_y: data
            .split
            .train
            .iter()
            .map(|&i| data.transactions[i].tx_fraud)
            .collect(),
        test_x: gather(&data.split.test),
    }
}

/// forust-ml through the real pipeline: the exported, served ensemble is what gets scored.
fn forust(data: &Prepared<'_>) -> Result<Row, String> {
    let config = TrainConfig::default();
    let artifact = train(data, "", &config, |_| {}).map_err(|e| e.to_string())?;
    let m = artifact.metrics;
    Ok(Row {
        name: described("forust-ml 0.5", &config.params),
        quality: Evaluation {
            roc_auc: m.roc_auc,
            average_precision: m.average_precision,
            card_precision_at_100: m.card_precision_at_100,
        },
        fit_seconds: m.train_seconds,
        missing: "learned per split (NaN → missing child)",
    })
}

/// gbdt-rs 0.1 with the same tree count, shrinkage, depth and row subsample as our default.
fn gbdt(data: &Prepared<'_>, m: &Matrices) -> Row {
    use gbdt::config::Config;
    use gbdt::decision_tree::{Data, DataVec, VALUE_TYPE_UNKNOWN};
    use gbdt::gradient_boost::GBDT;

    let p = BoosterParams::default();
    // gbdt-rs has no NaN: its only notion of missing is a sentinel value.
    let convert = |v: f64| {
        if v.is_nan() {
            VALUE_TYPE_UNKNOWN
        } else {
            v as f32
        }
    };
    let mut train_data: DataVec = m
        .train_x
        .chunks_exact(N_FEATURES)
        .zip(&m.train_y)
        .map(|(row, &y)| {
            Data::new_training_data(
                row.iter().map(|&v| convert(v)).collect(),
                1.0,
                if y { 1.0 } else { -1.0 },
                None,
            )
        })
        .collect();
    let test_data: DataVec = m
        .test_x
        .chunks_exact(N_FEATURES)
        .map(|row| Data::new_test_data(row.iter().map(|&v| convert(v)).collect(), None))
        .collect();

    let mut cfg = Config::new();
    cfg.set_feature_size(N_FEATURES);
    cfg.set_loss("LogLikelyhood");
    cfg.set_iterations(p.iterations);
    cfg.set_shrinkage(p.learning_rate);
    cfg.set_max_depth(p.max_depth as u32);
    cfg.set_data_sample_ratio(f64::from(p.subsample));
    cfg.set_min_leaf_size(1);
    let mut model = GBDT::new(&cfg);
    let started = Instant::now();
    model.fit(&mut train_data);
    let fit_seconds = started.elapsed().as_secs_f64();
    let scores: Vec<f64> = model
        .predict(&test_data)
        .into_iter()
        .map(f64::from)
        .collect();
    Row::scored(
        described("gbdt 0.1.3", &p),
        &scores,
        data,
        fit_seconds,
        "sentinel value only (node value at prediction)",
    )
}

/// hessboost 0.4, a pure-Rust reimplementation of XGBoost (the handbook's booster), `hist` trees with
/// the same tree count, shrinkage, depth, row subsample, L2 and minimum child weight as our default.
fn hessboost(data: &Prepared<'_>, m: &Matrices) -> Result<Row, String> {
    use hessboost::prelude::{
        DMatrix, HessboostError, Iterations, Objective, RegLoss, TrainingParams, TreeMethod,
    };

    let p = BoosterParams::default();
    let err = |e: HessboostError| e.to_string();
    let to_f32 = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
    let y: Vec<f32> = m.train_y.iter().map(|&l| f32::from(u8::from(l))).collect();
    let dtrain = DMatrix::from_dense(&to_f32(&m.train_x), y.len(), N_FEATURES)
        .and_then(|d| d.with_labels(&y))
        .map_err(err)?;
    let dtest = DMatrix::from_dense(&to_f32(&m.test_x), m.test_x.len() / N_FEATURES, N_FEATURES)
        .map_err(err)?;
    let params = TrainingParams::builder()
        .objective(Objective::BinaryLogistic(RegLoss::default()))
        .tree_method(TreeMethod::Hist)
        .max_depth(p.max_depth)
        .eta(f64::from(p.learning_rate))
        .subsample(f64::from(p.subsample))
        .lambda(f64::from(p.l2))
        .min_child_weight(f64::from(p.min_leaf_weight))
        .seed(p.seed)
        .build()
        .map_err(err)?;
    let started = Instant::now();
    let model = hessboost::prelude::train(&params, &dtrain, p.iterations).map_err(err)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let scores: Vec<f64> = model
        .predict(&dtest, Iterations::Best)
        .map_err(err)?
        .as_slice()
        .iter()
        .map(|&s| f64::from(s))
        .collect();
    Ok(Row::scored(
        described("hessboost 0.4", &p),
        &scores,
        data,
        fit_seconds,
        "learned default direction (XGBoost-style)",
    ))
}

fn main() -> ExitCode {
    cli::exit_code("compare_boosters", real_main)
}

fn real_main() -> Result<(), String> {
    let txs = match std::env::args().nth(1) {
        Some(path) => {
            read_transactions(path.as_ref())
                .map_err(|e| format!("reading {path}: {e}"))?
                .transactions
        }
        None => generate(&SimulatorConfig::default()).map_err(|e| e.to_string())?,
    };
    let config = TrainConfig::default();
    let data = prepare(&txs, &config.split, |_| {}).map_err(|e| e.to_string())?;
    let m = matrices(&data);
    eprintln!(
        "{} transactions; train {} rows ({} fraud), test {} rows",
        txs.len(),
        m.train_y.len(),
        m.train_y.iter().filter(|&&y| y).count(),
        data.split.test.len()
    );

    let mut rows = Vec::new();
    eprintln!("fitting forust-ml ...");
    rows.push(forust(&data)?);
    eprintln!("fitting hessboost ...");
    rows.push(hessboost(&data, &m)?);
    eprintln!("fitting gbdt ...");
    rows.push(gbdt(&data, &m));

    println!(
        "| {:<44} | ROC AUC | AP     | CP@100 | fit s  | missing values |",
        "booster"
    );
    println!(
        "|{:-<46}|---------|--------|--------|--------|----------------|",
        ""
    );
    for r in &rows {
        println!(
            "| {:<44} | {:>7.4} | {:>6.4} | {:>6.4} | {:>6.1} | {} |",
            r.name,
            r.quality.roc_auc,
            r.quality.average_precision,
            r.quality.card_precision_at_100,
            r.fit_seconds,
            r.missing
        );
    }
    Ok(())
}
