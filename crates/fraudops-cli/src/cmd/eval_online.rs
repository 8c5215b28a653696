//! `fraudops eval-online`: how well the API scores when it is called directly, as a payment flow calls
//! it, against the same model offline.
//!
//! The file is split as training splits it (SPEC §3.3). Offline: the model scores the test transactions
//! with the batch features. Online: the transactions from 37 days before the test window (the longest
//! reach of any window: 30 days of terminal history behind the 7-day delay) to its end are sent to a
//! running API (`--api-url`, with `FEATURE_STORE_URL` set there) as `POST /predict` without history, while
//! their labels go to `fraud-labels` after `--label-delay` and a running `fraudops labels` applies them.
//! Both are measured on the same test transactions (known-compromised cards removed) with the same code
//! (`fraudops_train::evaluate_scores`). The last line printed is the JSON of both.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use fraudops_data::reader::read_transactions;
use fraudops_data::writer::format_datetime;
use fraudops_features::batch::processing_order;
use fraudops_features::definition::{DAY, TERMINAL_RETENTION};
use fraudops_model::Model;
use fraudops_stream::KafkaArgs;
use fraudops_stream::attack::labels::parse_label_delay;
use fraudops_stream::direct::{DirectReplay, replay};
use fraudops_train::pipeline::Evaluation;
use fraudops_train::pipeline::evaluate_scores;
use fraudops_train::{evaluate, prepare};

use crate::cmd::train::SplitArgs;
use crate::progress;

/// What to replay, where, and how labels flow.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Transaction file (CSV, simulator or handbook layout, optionally gzipped).
    #[arg(long)]
    pub data: PathBuf,
    /// The model the API serves (`model.json`); scored offline on the same test transactions.
    #[arg(long)]
    pub model: PathBuf,
    /// The API's base URL (its FEATURE_STORE_URL must be set).
    #[arg(long, env = "API_URL")]
    pub api_url: String,
    /// The replay's API key (scope `record`), for an API with API_KEYS_FILE.
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// The broker carrying the labels.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic of confirmed outcomes.
    #[arg(long, env = "LABELS_TOPIC", default_value = "fraud-labels")]
    pub labels_topic: String,
    /// The label consumer's group (its commits are waited for at each day boundary).
    #[arg(long, env = "LABELS_GROUP", default_value = "fraudops-labels")]
    pub labels_group: String,
    /// Event time between a transaction and its label (under 6 days here, see `fraudops_stream::direct`).
    #[arg(long, default_value = "3d", value_parser = parse_label_delay)]
    pub label_delay: i64,
    /// Cards sent concurrently (each card's transactions stay in order).
    #[arg(long, default_value_t = 32)]
    pub lanes: usize,
    /// Train and test windows (SPEC §3.3), as the model was trained.
    #[command(flatten)]
    pub split: SplitArgs,
}

/// Runs the evaluation and prints the comparison.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model =
        Model::load(&args.model).with_context(|| format!("loading {}", args.model.display()))?;
    let spinner = progress::spinner(&format!("reading {}", args.data.display()));
    let outcome = read_transactions(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    spinner.finish_and_clear();
    println!("read {}: {}", args.data.display(), outcome.report);
    let txs = &outcome.transactions;
    let split = args.split.config();
    let spinner = progress::spinner("computing batch features and the split");
    let prepared = prepare(txs, &split, |_| {})?;
    spinner.finish_and_clear();
    let offline = evaluate(&model, &prepared);

    let test_start = split
        .train_start
        .and_hms_opt(0, 0, 0)
        .map(|d| d.and_utc().timestamp())
        .context("train start")?
        + i64::from(split.train_days + split.delay_days) * DAY;
    let test_end = test_start + i64::from(split.test_days) * DAY;
    let from = test_start - TERMINAL_RETENTION;
    let replayed: Vec<_> = processing_order(txs)
        .into_iter()
        .map(|i| txs[i as usize].clone())
        .filter(|t| (from..test_end).contains(&t.tx_datetime))
        .collect();
    let mut ids = std::collections::HashSet::with_capacity(replayed.len());
    anyhow::ensure!(
        replayed.iter().all(|t| ids.insert(t.transaction_id)),
        "transaction ids repeat in the replayed window; online scores could not be matched"
    );
    println!(
        "replaying {} transactions ({} .. {}) through {} without history; labels after {} s",
        replayed.len(),
        format_datetime(from),
        format_datetime(test_end),
        args.api_url,
        args.label_delay
    );

    let config = DirectReplay {
        api_url: args.api_url.clone(),
        api_key: args.api_key.clone(),
        kafka: args.kafka.clone(),
        labels_topic: args.labels_topic.clone(),
        labels_group: args.labels_group.clone(),
        label_delay: args.label_delay,
        lanes: args.lanes,
        timeout: Duration::from_secs(10),
    };
    let bar = progress::bar(replayed.len() as u64, "direct /predict", "tx");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let started = std::time::Instant::now();
    let result = runtime.block_on(replay(&config, &replayed, |n| bar.set_position(n)))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();

    let scores: Vec<f64> = prepared
        .split
        .test
        .iter()
        .map(|&i| {
            result
                .scores
                .get(&txs[i].transaction_id)
                .copied()
                .with_context(|| {
                    format!("no online score for transaction {}", txs[i].transaction_id)
                })
        })
        .collect::<anyhow::Result<_>>()?;
    let online = evaluate_scores(&scores, &prepared);
    // Bit for bit: the online path is the offline definition, so any difference is a bug to look at.
    let differing: Vec<u64> = prepared
        .split
        .test
        .iter()
        .zip(&scores)
        .filter(|&(&i, &p)| {
            model
                .predict(prepared.features.row(i))
                .fraud_probability
                .to_bits()
                != p.to_bits()
        })
        .map(|(&i, _)| txs[i].transaction_id)
        .collect();
    println!(
        "test transactions scored differently online than offline: {} of {}{}",
        differing.len(),
        scores.len(),
        if differing.is_empty() {
            String::new()
        } else {
            format!(" (first ids: {:?})", &differing[..differing.len().min(10)])
        }
    );
    println!(
        "replayed {} requests in {seconds:.1} s ({:.0}/s), {} retries, {} labels, {:.1} s waiting for labels",
        result.predicted,
        result.predicted as f64 / seconds.max(1e-9),
        result.retries,
        result.labels_sent,
        result.label_wait_seconds
    );
    println!(
        "| on {} test transactions | ROC AUC | AP | CP@100 |",
        scores.len()
    );
    println!("|---|---:|---:|---:|");
    for (name, e) in [
        ("online (direct /predict, feature store)", &online),
        ("offline (batch features)", &offline),
    ] {
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} |",
            e.roc_auc, e.average_precision, e.card_precision_at_100
        );
    }
    println!(
        "{}",
        serde_json::json!({
            "online": metrics(&online),
            "offline": metrics(&offline),
            // Direct calls made (what the store's INFO commandstats time is divided by), and the test
            // transactions whose online score is not the offline one to the bit.
            "events": result.predicted,
            "differing": differing.len(),
        })
    );
    Ok(())
}

fn metrics(e: &Evaluation) -> serde_json::Value {
    serde_json::json!({
        "roc_auc": e.roc_auc,
        "average_precision": e.average_precision,
        "card_precision_at_100": e.card_precision_at_100,
    })
}
