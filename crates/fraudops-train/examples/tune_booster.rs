//! Hyper-parameter search for the booster, tuned on validation windows that end before the test window.
//!
//! ```sh
//! cargo run --release -p fraudops-train --example tune_booster -- data/transactions.csv.gz \
//!     --iterations 200,400 --learning-rate 0.05,0.1 --max-depth 4,6 --min-leaf-weight 1,5 --subsample 0.8,1
//! ```
//!
//! Every combination of the comma-separated values is trained (same seed) on three *validation* splits:
//! the default split (train 7 d, delay 7 d, test 7 d) moved back by 7, 14 and 21 days, so every validation
//! test window ends before the default test window starts (2018-08-08). Candidates are ranked by mean
//! validation Average Precision (the threshold-free metric that matters for a 0.8 % positive class); only
//! the current default and the top three by validation are then scored on the default test window, so the
//! choice never looks at test labels. Metrics are those of the served form (`fraudops_train::train`).

use std::process::ExitCode;
use std::time::Instant;

#[path = "support/cli.rs"]
mod cli;

use fraudops_data::reader::read_transactions;
use fraudops_features::batch;
use fraudops_train::{BoosterParams, Prepared, SplitConfig, TrainConfig, time_split, train};

/// Quality of one candidate: mean over the validation windows, then (for the shortlist) the test window.
struct Outcome {
    params: BoosterParams,
    /// Mean (ROC AUC, AP, CP@100) over the validation windows.
    validation: [f64; 3],
    /// Mean fit seconds over the validation windows.
    fit_seconds: f64,
    /// (ROC AUC, AP, CP@100) on the default test window, for the shortlist only.
    test: Option<[f64; 3]>,
}

fn parse_list<T: std::str::FromStr>(flag: &str, value: &str) -> Result<Vec<T>, String> {
    value
        .split(',')
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| format!("{flag}: cannot parse {v:?}"))
        })
        .collect()
}

/// The candidate grid from the command line; each axis defaults to the trainer's default value.
fn grid(args: &[String]) -> Result<Vec<BoosterParams>, String> {
    let d = BoosterParams::default();
    let (mut it, mut lr, mut depth, mut mlw, mut sub, mut l2) = (
        vec![d.iterations],
        vec![d.learning_rate],
        vec![d.max_depth],
        vec![d.min_leaf_weight],
        vec![d.subsample],
        vec![d.l2],
    );
    let mut pairs = args.chunks_exact(2);
    for pair in &mut pairs {
        let (flag, value) = (pair[0].as_str(), pair[1].as_str());
        match flag {
            "--iterations" => it = parse_list(flag, value)?,
            "--learning-rate" => lr = parse_list(flag, value)?,
            "--max-depth" => depth = parse_list(flag, value)?,
            "--min-leaf-weight" => mlw = parse_list(flag, value)?,
            "--subsample" => sub = parse_list(flag, value)?,
            "--l2" => l2 = parse_list(flag, value)?,
            other => return Err(format!("unknown flag {other}")),
        }
    }
    if !pairs.remainder().is_empty() {
        return Err("every flag needs a value".into());
    }
    let mut out = vec![d];
    for &iterations in &it {
        for &learning_rate in &lr {
            for &max_depth in &depth {
                for &min_leaf_weight in &mlw {
                    for &subsample in &sub {
                        for &l2 in &l2 {
                            let p = BoosterParams {
                                iterations,
                                learning_rate,
                                max_depth,
                                min_leaf_weight,
                                subsample,
                                l2,
                                ..d
                            };
                            if !out.contains(&p) {
                                out.push(p);
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

fn shifted(days_back: u64) -> SplitConfig {
    let d = SplitConfig::default();
    SplitConfig {
        train_start: d.train_start - chrono::Days::new(days_back),
        ..d
    }
}

/// Trains `params` on `split` and returns (AUC, AP, CP@100) and the fit seconds.
fn run(
    data: &mut Prepared<'_>,
    split: SplitConfig,
    params: BoosterParams,
) -> Result<([f64; 3], f64), String> {
    data.split = time_split(data.transactions, &split).map_err(|e| e.to_string())?;
    let config = TrainConfig {
        split,
        params,
        ..TrainConfig::default()
    };
    let artifact = train(data, "", &config, |_| {}).map_err(|e| e.to_string())?;
    let m = artifact.metrics;
    Ok((
        [m.roc_auc, m.average_precision, m.card_precision_at_100],
        m.train_seconds,
    ))
}

fn describe(p: &BoosterParams) -> String {
    format!(
        "it={:<4} lr={:<5} depth={:<2} mlw={:<4} sub={:<4} l2={:<4}",
        p.iterations, p.learning_rate, p.max_depth, p.min_leaf_weight, p.subsample, p.l2
    )
}

fn main() -> ExitCode {
    cli::exit_code("tune_booster", real_main)
}

fn real_main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.first() else {
        return Err("usage: tune_booster DATA_FILE [--iterations 200,400 ...]".into());
    };
    let candidates = grid(&args[1..])?;
    let outcome = read_transactions(path.as_ref()).map_err(|e| format!("reading {path}: {e}"))?;
    let txs = outcome.transactions;
    let started = Instant::now();
    let features = batch::compute(&txs);
    eprintln!(
        "{} transactions, features in {:.1} s; {} candidates x 3 validation windows",
        txs.len(),
        started.elapsed().as_secs_f64(),
        candidates.len()
    );
    let validation = [shifted(7), shifted(14), shifted(21)];
    let test = SplitConfig::default();
    let mut data = Prepared {
        transactions: &txs,
        features,
        split: time_split(&txs, &test).map_err(|e| e.to_string())?,
    };

    let mut outcomes = Vec::new();
    for (n, params) in candidates.into_iter().enumerate() {
        let (mut sum, mut secs) = ([0.0; 3], 0.0);
        for split in validation {
            let (m, s) = run(&mut data, split, params)?;
            for k in 0..3 {
                sum[k] += m[k] / validation.len() as f64;
            }
            secs += s / validation.len() as f64;
        }
        eprintln!(
            "[{n}] {}  val AUC {:.4} AP {:.4} CP@100 {:.4}  fit {:.1} s",
            describe(&params),
            sum[0],
            sum[1],
            sum[2],
            secs
        );
        outcomes.push(Outcome {
            params,
            validation: sum,
            fit_seconds: secs,
            test: None,
        });
    }

    // Shortlist by validation AP only; the default (index 0) is always scored for comparison.
    let mut order: Vec<usize> = (1..outcomes.len()).collect();
    order.sort_by(|&a, &b| outcomes[b].validation[1].total_cmp(&outcomes[a].validation[1]));
    let shortlist: Vec<usize> = std::iter::once(0)
        .chain(order.iter().copied().take(3))
        .collect();
    for &i in &shortlist {
        outcomes[i].test = Some(run(&mut data, test, outcomes[i].params)?.0);
    }

    let mut rows: Vec<usize> = (0..outcomes.len()).collect();
    rows.sort_by(|&a, &b| outcomes[b].validation[1].total_cmp(&outcomes[a].validation[1]));
    println!(
        "| {:<62} | val AUC | val AP | val CP@100 | test AUC | test AP | test CP@100 | fit s |",
        "candidate (ranked by mean validation AP)"
    );
    println!(
        "|{:-<64}|---------|--------|------------|----------|---------|-------------|-------|",
        ""
    );
    for i in rows {
        let o = &outcomes[i];
        let t = o.test.map_or_else(
            || format!("{:>8} | {:>7} | {:>11}", "-", "-", "-"),
            |t| format!("{:>8.4} | {:>7.4} | {:>11.4}", t[0], t[1], t[2]),
        );
        let label = if i == 0 {
            format!("{} (default)", describe(&o.params))
        } else {
            describe(&o.params)
        };
        println!(
            "| {:<62} | {:>7.4} | {:>6.4} | {:>10.4} | {} | {:>5.1} |",
            label, o.validation[0], o.validation[1], o.validation[2], t, o.fit_seconds
        );
    }
    Ok(())
}
