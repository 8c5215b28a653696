//! `fraudops lake`: the transaction lake from the outside — what it holds (`stats`), a training window
//! copied out of it as a file (`snapshot`, what the retraining DAG's `fetch_data` does), and a file
//! replayed once into the topics the archive reads (`replay`). Also the window reader `train --lake`
//! shares.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use chrono::{NaiveDate, NaiveDateTime};
use fraudops_data::{EpochSeconds, Transaction};
use fraudops_features::definition::{DAY, TERMINAL_RETENTION};
use fraudops_lake::{LabelCutoff, Lake, Synthetic, Table};
use fraudops_train::SplitConfig;
use sha2::{Digest, Sha256};

use crate::cmd::train::SplitArgs;
use crate::progress;

/// `fraudops lake <command>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Rows and files per table.
    Stats(StatsArgs),
    /// A training window (SPEC §3.3 split and its feature history) with the labels known at a cutoff,
    /// written as a transaction CSV that `train --data` and `register --data` read.
    Snapshot(SnapshotArgs),
    /// Every transaction of a file to the transactions topic and its label to the labels topic, once.
    Replay(Box<ReplayArgs>),
}

/// `train`'s lake source. Its own variables (`TRAIN_LAKE`, not the archive's `LAKE_URL`): a step that
/// trains from a snapshot file must not switch to the lake because the environment names one.
#[derive(Debug, Clone, clap::Args)]
pub struct LakeSource {
    /// Train from this lake: a directory, `file:///DIR` or `s3://BUCKET/PREFIX` (credentials from `AWS_*`).
    #[arg(long = "lake", env = "TRAIN_LAKE")]
    pub url: Option<String>,
    /// Labels known at this time exist, later ones do not (`YYYY-MM-DD` = its midnight, or
    /// `YYYY-MM-DD HH:MM:SS`, on the transactions' clock); unset: every label archived.
    #[arg(long, env = "TRAIN_LABELS_AS_OF", value_parser = parse_as_of, requires = "url")]
    pub labels_as_of: Option<EpochSeconds>,
    /// Keep the transactions and labels marked synthetic (an attack's, a drill's), which a window
    /// leaves out by default: for a drill that trains on its own traffic.
    #[arg(long, env = "TRAIN_INCLUDE_SYNTHETIC", requires = "url")]
    pub include_synthetic: bool,
}

impl LakeSource {
    /// What the window does with synthetic traffic.
    pub fn synthetic(&self) -> Synthetic {
        synthetic(self.include_synthetic)
    }
}

fn synthetic(include: bool) -> Synthetic {
    if include {
        Synthetic::Include
    } else {
        Synthetic::Exclude
    }
}

#[derive(Debug, clap::Args)]
struct StatsArgs {
    /// The lake.
    #[arg(long = "lake", env = "LAKE_URL", default_value = "lake")]
    url: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
struct SnapshotArgs {
    /// The lake: a directory, `file:///DIR` or `s3://BUCKET/PREFIX` (credentials from `AWS_*`).
    #[arg(long = "lake", env = "LAKE_URL")]
    url: String,
    /// Labels known at this time exist, later ones do not (`YYYY-MM-DD` = its midnight, or
    /// `YYYY-MM-DD HH:MM:SS`, on the transactions' clock); unset: every label archived.
    #[arg(long, env = "LAKE_LABELS_AS_OF", value_parser = parse_as_of)]
    labels_as_of: Option<EpochSeconds>,
    /// Keep the transactions and labels marked synthetic (an attack's, a drill's), which a snapshot
    /// leaves out by default so a retraining never learns an attack: for a drill that trains on its
    /// own traffic.
    #[arg(long, env = "LAKE_INCLUDE_SYNTHETIC")]
    include_synthetic: bool,
    #[command(flatten)]
    split: SplitArgs,
    /// Where to write the window (CSV, gzipped when the name ends in `.gz`).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// The transaction file (CSV as `train` reads it; its labels become label events).
    #[arg(long)]
    data: PathBuf,
    /// Broker and transactions topic.
    #[command(flatten)]
    kafka: fraudops_stream::KafkaArgs,
    /// The labels topic.
    #[arg(long, env = "LABELS_TOPIC", default_value = "fraud-labels")]
    labels_topic: String,
    /// Each label is known this long after its transaction (event time; `labelled_at`).
    #[arg(long, default_value = "0s", value_parser = fraudops_stream::attack::labels::parse_label_delay)]
    label_delay: EpochSeconds,
    /// Most records per producer batch (1: one record per batch, so a consumer can resume at any
    /// offset on tansu 0.6, whose fetch skips the rest of a batch it is asked to start inside).
    #[arg(long, default_value_t = 10_000)]
    max_batch: usize,
}

/// Runs a `lake` command.
pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Command::Stats(a) => stats(a),
        Command::Snapshot(a) => snapshot(a),
        Command::Replay(a) => replay(*a),
    }
}

/// The runtime the lake's object store calls run on (one thread: the commands wait on each call).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn parse_as_of(text: &str) -> Result<EpochSeconds, String> {
    let text = text.trim();
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp())
            .unwrap_or(0));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
        .map(|t| t.and_utc().timestamp())
        .map_err(|_| format!("expected YYYY-MM-DD or YYYY-MM-DD HH:MM:SS, got {text:?}"))
}

/// Days of history before the training window a window read needs: the farthest any feature window
/// reaches back (the terminal windows: 30 days before a 7-day delay), plus one day of margin.
pub const HISTORY_DAYS: i64 = TERMINAL_RETENTION / DAY + 1;

/// A window read from the lake, with what `train` records about its data.
pub struct LakeData {
    /// The transactions, labels joined, in processing order.
    pub transactions: Vec<Transaction>,
    /// SHA-256 of the window's content (what the artifact records as its data's checksum).
    pub sha256: String,
    /// One line on what was read.
    pub description: String,
    /// Synthetic transactions of the days read that were left out (0 when kept).
    pub synthetic_left_out: usize,
}

/// Reads the window `split` needs (its days and their feature history) from the lake at `url`, with
/// synthetic traffic left out or kept as `synthetic` says.
pub fn read_window(
    url: &str,
    as_of: Option<EpochSeconds>,
    synthetic: Synthetic,
    split: &SplitConfig,
) -> anyhow::Result<LakeData> {
    let lake = Lake::open(url).with_context(|| format!("opening the lake {url}"))?;
    let first = split.train_start - chrono::TimeDelta::days(HISTORY_DAYS);
    let end = split.train_start
        + chrono::TimeDelta::days(i64::from(
            split.train_days + split.delay_days + split.test_days,
        ));
    let window = runtime()?
        .block_on(fraudops_lake::read_window(
            &lake,
            first,
            end,
            LabelCutoff { as_of },
            synthetic,
        ))
        .with_context(|| format!("reading days {first}..{end} from {lake}"))?;
    let sha256 = window_sha256(&window.transactions);
    let cutoff = as_of.map_or("every label".to_owned(), |t| {
        format!(
            "labels known at {}",
            fraudops_data::writer::format_datetime(t)
        )
    });
    // Appended after the established wording (scripts match the line's start).
    let synthetic = match synthetic {
        Synthetic::Exclude => format!(
            "{} synthetic transactions and {} synthetic labels left out",
            window.synthetic_left_out, window.synthetic_labels_left_out
        ),
        Synthetic::Include => format!(
            "{} synthetic transactions kept (--include-synthetic)",
            window.synthetic_kept
        ),
    };
    let description = format!(
        "{} transactions of {first}..{end} from {} files ({cutoff}: {} labelled, {} without a label (genuine until a chargeback), {} labels after the cutoff ignored, {} reversed, {} duplicate ids dropped; {synthetic})",
        window.transactions.len(),
        window.files,
        window.labelled,
        window.unlabelled,
        window.labels_after_cutoff,
        window.labels_reversed,
        window.duplicates
    );
    Ok(LakeData {
        transactions: window.transactions,
        sha256,
        description,
        synthetic_left_out: window.synthetic_left_out,
    })
}

/// A checksum of a window's content: the same rows and labels give the same value wherever they were
/// read from.
fn window_sha256(transactions: &[Transaction]) -> String {
    let mut hasher = Sha256::new();
    for tx in transactions {
        hasher.update(tx.transaction_id.to_le_bytes());
        hasher.update(tx.tx_datetime.to_le_bytes());
        hasher.update(tx.customer_id.to_le_bytes());
        hasher.update(tx.terminal_id.to_le_bytes());
        hasher.update(tx.tx_amount.to_bits().to_le_bytes());
        hasher.update([u8::from(tx.tx_fraud)]);
        hasher.update(tx.merchant_category.map_or("", |m| m.as_str()).as_bytes());
        hasher.update(tx.user_age.map_or(u32::MAX, f32::to_bits).to_le_bytes());
        hasher.update(
            tx.account_balance
                .map_or(u64::MAX, f64::to_bits)
                .to_le_bytes(),
        );
    }
    hex::encode(hasher.finalize())
}

fn stats(args: StatsArgs) -> anyhow::Result<()> {
    let lake = Lake::open(&args.url).with_context(|| format!("opening the lake {}", args.url))?;
    let runtime = runtime()?;
    let mut counts = Vec::new();
    for table in Table::ALL {
        let (rows, files) = runtime
            .block_on(fraudops_lake::count_rows(&lake, table))
            .with_context(|| format!("counting {table}"))?;
        counts.push((table, rows, files));
    }
    if args.json {
        let object: serde_json::Map<String, serde_json::Value> = counts
            .iter()
            .map(|(t, rows, files)| {
                (
                    t.name().to_owned(),
                    serde_json::json!({"rows": rows, "files": files}),
                )
            })
            .collect();
        println!("{}", serde_json::Value::Object(object));
    } else {
        println!("lake {lake}");
        println!("  {:<14} {:>12} {:>8}", "table", "rows", "files");
        for (table, rows, files) in counts {
            println!("  {:<14} {:>12} {:>8}", table.name(), rows, files);
        }
    }
    Ok(())
}

fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let url = args.url.as_str();
    let spinner = progress::spinner(&format!("reading the window from {url}"));
    let data = read_window(
        url,
        args.labels_as_of,
        synthetic(args.include_synthetic),
        &args.split.config(),
    )?;
    spinner.finish_and_clear();
    println!("read {}", data.description);
    if data.transactions.is_empty() {
        anyhow::ensure!(
            data.synthetic_left_out == 0,
            "the lake holds no real transaction of the window ({} synthetic ones left out; \
             --include-synthetic keeps them): nothing to train on",
            data.synthetic_left_out
        );
        anyhow::bail!("the lake holds no transaction of the window: nothing to train on");
    }
    if let Some(parent) = args.out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    crate::cmd::simulate::write_transactions(&args.out, &data.transactions)?;
    println!(
        "wrote {} ({} transactions)",
        args.out.display(),
        data.transactions.len()
    );
    Ok(())
}

fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let outcome = fraudops_data::reader::read_transactions(&args.data)
        .with_context(|| format!("reading {}", args.data.display()))?;
    println!("read {}: {}", args.data.display(), outcome.report);
    let total = outcome.transactions.len() as u64 * 2;
    let bar = progress::bar(total, "replaying to Kafka", "msg");
    runtime()?.block_on(fraudops_stream::ensure_topics(
        &args.kafka,
        &[
            (&args.kafka.topic, args.kafka.partitions),
            (&args.labels_topic, args.kafka.partitions),
        ],
    ))?;
    let summary = fraudops_stream::archive::replay_file(
        &args.kafka,
        &args.labels_topic,
        &outcome.transactions,
        args.label_delay,
        args.max_batch,
        Duration::from_secs(300),
        |n| bar.set_position(n),
    )?;
    bar.finish_and_clear();
    println!(
        "replayed {} transactions and {} labels in {} s ({} not acknowledged)",
        summary.transactions, summary.labels, summary.seconds, summary.failed
    );
    anyhow::ensure!(
        summary.failed == 0,
        "{} messages were not acknowledged",
        summary.failed
    );
    Ok(())
}
