//! `fraudops train`: transaction file → features → time split → booster → evaluation → artifact,
//! then, when `MLFLOW_TRACKING_URI` is set, the MLflow run, the registered version and the champion
//! gate (`crate::publish`).

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use chrono::NaiveDate;
use fraudops_data::reader::read_transactions;
use fraudops_train::pipeline::Stage;
use fraudops_train::{BoosterParams, SplitConfig, TrainConfig, prepare, train};
use sha2::{Digest, Sha256};

use crate::progress;
use crate::publish::{MlflowArgs, Tracker, Trained};

/// Data window, hyper-parameters and output; defaults reproduce the embedded model.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Transaction file (CSV, handbook or course format, optionally gzipped).
    #[arg(long, env = "TRAIN_DATA", default_value = "data/transactions.csv.gz")]
    pub data: PathBuf,
    /// Train from the transaction lake instead of `--data`: the split's window and its feature history,
    /// with the labels known at `--labels-as-of`.
    #[command(flatten)]
    pub lake: crate::cmd::lake::LakeSource,
    /// Output directory for `model.json` and `metrics.json`.
    #[arg(long, env = "TRAIN_OUT", default_value = "out/model")]
    pub out: PathBuf,
    /// Train and test windows (SPEC §3.3).
    #[command(flatten)]
    pub split: SplitArgs,
    /// Number of trees.
    #[arg(long, env = "TRAIN_ITERATIONS", default_value_t = BoosterParams::default().iterations)]
    pub iterations: usize,
    /// Learning rate (shrinkage).
    #[arg(long, env = "TRAIN_LEARNING_RATE", default_value_t = BoosterParams::default().learning_rate)]
    pub learning_rate: f32,
    /// Maximum tree depth (at most the deepest tree `serve` compiles, 12).
    #[arg(long, env = "TRAIN_MAX_DEPTH", default_value_t = BoosterParams::default().max_depth,
          value_parser = servable_depth)]
    pub max_depth: usize,
    /// L2 regularisation of leaf weights.
    #[arg(long, env = "TRAIN_L2", default_value_t = BoosterParams::default().l2)]
    pub l2: f32,
    /// Minimum hessian sum per leaf.
    #[arg(long, env = "TRAIN_MIN_LEAF_WEIGHT", default_value_t = BoosterParams::default().min_leaf_weight)]
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    #[arg(long, env = "TRAIN_NBINS", default_value_t = BoosterParams::default().nbins)]
    pub nbins: u16,
    /// Row subsample ratio per tree.
    #[arg(long, env = "TRAIN_SUBSAMPLE", default_value_t = BoosterParams::default().subsample)]
    pub subsample: f32,
    /// Random seed.
    #[arg(long, env = "TRAIN_SEED", default_value_t = BoosterParams::default().seed)]
    pub seed: u64,
    /// Probability at or above which the served model answers `is_fraud: true`.
    #[arg(long, env = "TRAIN_THRESHOLD", default_value_t = 0.5)]
    pub threshold: f64,
    /// Do not log to MLflow even if MLFLOW_TRACKING_URI is set (only write the output directory;
    /// `fraudops register` can publish it later).
    #[arg(long, env = "TRAIN_NO_MLFLOW")]
    pub no_mlflow: bool,
    /// MLflow tracking, registry and champion gate.
    #[command(flatten)]
    pub mlflow: MlflowArgs,
}

/// The time split of SPEC §3.3, shared by `train` and `eval-online` (each also an env var).
#[derive(Debug, Clone, clap::Args)]
pub struct SplitArgs {
    /// First training day.
    #[arg(long, env = "TRAIN_START", default_value = "2018-07-25")]
    pub train_start: NaiveDate,
    /// Training days.
    #[arg(long, env = "TRAIN_DAYS", default_value_t = 7)]
    pub train_days: u32,
    /// Days between training and test (the label delay).
    #[arg(long, env = "TRAIN_DELAY_DAYS", default_value_t = 7)]
    pub delay_days: u32,
    /// Test days.
    #[arg(long, env = "TRAIN_TEST_DAYS", default_value_t = 7)]
    pub test_days: u32,
}

impl SplitArgs {
    /// The split's configuration.
    pub fn config(&self) -> SplitConfig {
        SplitConfig {
            train_start: self.train_start,
            train_days: self.train_days,
            delay_days: self.delay_days,
            test_days: self.test_days,
        }
    }
}

impl Args {
    fn config(&self) -> TrainConfig {
        TrainConfig {
            split: self.split.config(),
            params: BoosterParams {
                iterations: self.iterations,
                learning_rate: self.learning_rate,
                max_depth: self.max_depth,
                l2: self.l2,
                min_leaf_weight: self.min_leaf_weight,
                nbins: self.nbins,
                subsample: self.subsample,
                seed: self.seed,
            },
            decision_threshold: self.threshold,
        }
    }
}

/// SHA-256 of a file, streamed.
pub(crate) fn file_sha256(path: &Path) -> anyhow::Result<String> {
    let mut file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Runs the whole job and prints a summary table.
pub fn run(args: Args) -> anyhow::Result<()> {
    anyhow::ensure!(
        (0.0..=1.0).contains(&args.threshold),
        "--threshold must be within [0, 1], got {}",
        args.threshold
    );
    let config = args.config();
    // Reach MLflow before the expensive part: a missing server fails the job in seconds.
    let tracker = match (&args.mlflow.tracking_uri, args.no_mlflow) {
        (Some(uri), false) => Some(Tracker::connect(uri, &args.mlflow)?),
        (Some(_), true) => {
            println!("mlflow: off (--no-mlflow)");
            None
        }
        (None, _) => None,
    };
    let source = match &args.lake.url {
        Some(url) => {
            let spinner = progress::spinner(&format!("reading the window from {url}"));
            let data = crate::cmd::lake::read_window(
                url,
                args.lake.labels_as_of,
                args.lake.synthetic(),
                &config.split,
            )?;
            spinner.finish_and_clear();
            println!("read lake {url}: {}", data.description);
            Source {
                rows_seen: data.transactions.len() as u64,
                rows_skipped: 0,
                transactions: data.transactions,
                sha: data.sha256,
                path: PathBuf::from(url),
            }
        }
        None => {
            let spinner = progress::spinner(&format!("reading {}", args.data.display()));
            let outcome = read_transactions(&args.data)
                .with_context(|| format!("reading {}", args.data.display()))?;
            let sha = file_sha256(&args.data)?;
            spinner.finish_and_clear();
            println!("read {}: {}", args.data.display(), outcome.report);
            Source {
                rows_seen: outcome.report.rows_seen,
                rows_skipped: outcome.report.total_skipped(),
                transactions: outcome.transactions,
                sha,
                path: args.data.clone(),
            }
        }
    };

    let mut current = progress::spinner("preparing");
    let mut stage = |s: Stage| {
        current.finish_and_clear();
        current = progress::spinner(&match s {
            Stage::Features(n) => format!("computing features for {n} transactions"),
            Stage::Fit(n) => format!("fitting {} trees on {n} rows", config.params.iterations),
            Stage::Evaluate(n) => format!("evaluating on {n} test rows"),
        });
    };
    let prepared = prepare(&source.transactions, &config.split, &mut stage)?;
    let artifact = train(&prepared, &source.sha, &config, &mut stage)?;
    current.finish_and_clear();

    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let model_path = args.out.join("model.json");
    let json = artifact.to_json();
    fs::write(&model_path, &json).with_context(|| format!("writing {}", model_path.display()))?;
    // Signed beside it when a key is given (`serve` with MODEL_TRUSTED_KEYS_FILE loads only signed files).
    if let Some(signer) = crate::publish::load_signer(args.mlflow.signing_key.as_deref())? {
        let sig_path = fraudops_model::signing::signature_path(&model_path);
        fs::write(&sig_path, signer.sign(json.as_bytes()))
            .with_context(|| format!("writing {}", sig_path.display()))?;
    }
    let metrics_path = args.out.join("metrics.json");
    fs::write(
        &metrics_path,
        serde_json::to_string_pretty(&artifact.metrics)?,
    )
    .with_context(|| format!("writing {}", metrics_path.display()))?;

    let m = &artifact.metrics;
    println!();
    println!(
        "  model {}  ({} trees, {})",
        artifact.model_version,
        artifact.ensemble.trees.len(),
        artifact.library
    );
    println!(
        "  train {} +{}d, delay {}d, test {}d",
        artifact.training.train_start,
        artifact.training.train_days,
        artifact.training.delay_days,
        artifact.training.test_days
    );
    println!("  ┌──────────────────────┬──────────┐");
    println!("  │ metric               │    value │");
    println!("  ├──────────────────────┼──────────┤");
    println!("  │ roc_auc              │ {:>8.4} │", m.roc_auc);
    println!("  │ average_precision    │ {:>8.4} │", m.average_precision);
    println!(
        "  │ card_precision_at_100│ {:>8.4} │",
        m.card_precision_at_100
    );
    println!("  │ train_rows           │ {:>8} │", m.train_rows);
    println!("  │ test_rows            │ {:>8} │", m.test_rows);
    println!("  │ train_seconds        │ {:>8.2} │", m.train_seconds);
    println!("  └──────────────────────┴──────────┘");
    println!(
        "  wrote {} and {}",
        model_path.display(),
        metrics_path.display()
    );

    if let Some(tracker) = tracker {
        tracker.publish(&Trained {
            artifact: &artifact,
            data: &prepared,
            data_path: &source.path,
            rows_seen: source.rows_seen,
            rows_skipped: source.rows_skipped,
            command: "train",
        })?;
    }
    Ok(())
}

/// The training data, from a file or the lake.
struct Source {
    transactions: Vec<fraudops_data::Transaction>,
    /// The checksum the artifact records (of the file's bytes, or of the lake window's content).
    sha: String,
    /// Where it came from (MLflow's `data_path` param).
    path: PathBuf,
    rows_seen: u64,
    rows_skipped: u64,
}

/// A depth the served ensemble can compile: refused before training, not after minutes of it.
fn servable_depth(value: &str) -> Result<usize, String> {
    let max = fraudops_model::ensemble::MAX_TREE_DEPTH;
    match value.parse::<usize>() {
        Ok(depth) if (1..=max).contains(&depth) => Ok(depth),
        _ => Err(format!("expected a tree depth from 1 to {max}")),
    }
}
