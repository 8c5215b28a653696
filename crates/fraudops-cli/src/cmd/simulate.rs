//! `fraudops simulate`: write a transaction file from the handbook's simulator.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use chrono::NaiveDate;
use flate2::Compression;
use flate2::write::GzEncoder;
use fraudops_data::simulator::{SimulatorConfig, generate_with_progress};
use fraudops_data::writer::write_csv;

use crate::progress;

/// Simulator parameters; defaults are the handbook's reference scale (~1.75 M transactions).
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Output CSV; a `.gz` suffix writes gzip.
    #[arg(long, env = "SIMULATE_OUT", default_value = "data/transactions.csv.gz")]
    pub out: PathBuf,
    /// Number of customers (cards).
    #[arg(long, env = "SIMULATE_CUSTOMERS", default_value_t = 5_000)]
    pub customers: usize,
    /// Number of terminals.
    #[arg(long, env = "SIMULATE_TERMINALS", default_value_t = 10_000)]
    pub terminals: usize,
    /// Number of simulated days.
    #[arg(long, env = "SIMULATE_DAYS", default_value_t = 183)]
    pub days: u32,
    /// First simulated day.
    #[arg(long, env = "SIMULATE_START_DATE", default_value = "2018-04-01")]
    pub start_date: NaiveDate,
    /// A customer uses the terminals closer than this radius.
    #[arg(long, env = "SIMULATE_RADIUS", default_value_t = 5.0)]
    pub radius: f64,
    /// Random seed; equal seeds give identical files.
    #[arg(long, env = "SIMULATE_SEED", default_value_t = 0)]
    pub seed: u64,
    /// Drift on purpose: multiply every amount by this after the fraud scenarios labelled it (prices
    /// moved, fraud did not). A model trained at 1.0 scores such data with a shifted distribution
    /// (score PSI above 0.2 at 2.0) and a lower precision; see docs/model-monitoring.md.
    #[arg(long, env = "SIMULATE_AMOUNT_SCALE", default_value_t = 1.0)]
    pub amount_scale: f64,
    /// A week of its own: multiply amounts at night (hours 0–6) by this; normal seasonality that drift
    /// monitoring must not take for a shift (docs/model-monitoring.md, "The week").
    #[arg(long, env = "SIMULATE_NIGHT_AMOUNT_SCALE", default_value_t = 1.0)]
    pub night_amount_scale: f64,
    /// Likewise for weekend amounts.
    #[arg(long, env = "SIMULATE_WEEKEND_AMOUNT_SCALE", default_value_t = 1.0)]
    pub weekend_amount_scale: f64,
}

/// Generates and writes the file, with a progress bar over days and a one-line summary.
/// Writes `txs` as the handbook's CSV at `out`, gzipped when the name ends in `.gz` (shared with
/// `lake snapshot`).
pub fn write_transactions(
    out: &std::path::Path,
    txs: &[fraudops_data::Transaction],
) -> anyhow::Result<()> {
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let gzip = out.extension().is_some_and(|e| e == "gz");
    let write = || -> anyhow::Result<()> {
        if gzip {
            let mut encoder = GzEncoder::new(BufWriter::new(file), Compression::fast());
            write_csv(&mut encoder, txs)?;
            encoder.finish()?.flush()?;
        } else {
            let mut writer = BufWriter::new(file);
            write_csv(&mut writer, txs)?;
            writer.flush()?;
        }
        Ok(())
    };
    write().with_context(|| format!("writing {}", out.display()))
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let config = SimulatorConfig {
        n_customers: args.customers,
        n_terminals: args.terminals,
        n_days: args.days,
        start_date: args.start_date,
        radius: args.radius,
        seed: args.seed,
        amount_scale: args.amount_scale,
        night_amount_scale: args.night_amount_scale,
        weekend_amount_scale: args.weekend_amount_scale,
    };
    let started = Instant::now();
    let pb = progress::bar(u64::from(args.days), "simulating", "days");
    let txs = generate_with_progress(&config, |done, _| pb.set_position(u64::from(done)))
        .context("invalid simulator configuration")?;
    pb.finish_and_clear();

    let spinner = progress::spinner(&format!("writing {}", args.out.display()));
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_transactions(&args.out, &txs)?;
    spinner.finish_and_clear();

    let frauds = txs.iter().filter(|t| t.tx_fraud).count();
    println!(
        "simulated {} transactions ({} fraud, {:.3}%) over {} days for {} customers and {} terminals in {:.1} s -> {}",
        txs.len(),
        frauds,
        100.0 * frauds as f64 / txs.len().max(1) as f64,
        args.days,
        args.customers,
        args.terminals,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    Ok(())
}
