//! `fraudops`: the one binary of the project. `main` only parses the command line and dispatches.

mod cmd;
mod mlmodel;
mod progress;
mod publish;
mod pushgateway;
mod registry;
mod retrain_trigger;

/// The metric names `deploy/monitoring/metrics-contract.txt` lists that start with `prefix`, in its
/// order: what each of the CLI's own exporters (the Pushgateway push, the retraining bridge) must export,
/// since dashboards and rules may read only the contract's names.
#[cfg(test)]
fn contract_names(prefix: &str) -> Vec<&'static str> {
    include_str!("../../../deploy/monitoring/metrics-contract.txt")
        .lines()
        .map(str::trim)
        .filter(|line| line.starts_with(prefix))
        .collect()
}

/// musl's allocator serialises threads; mimalloc keeps the static binary as fast as a glibc build.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

/// Credit-card fraud scoring: simulate data, train, serve, stream and attack.
///
/// Every option can also be set by the environment variable shown in its help; a `.env` file in the
/// working directory is read first.
#[derive(Debug, Parser)]
#[command(name = "fraudops", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate transactions with the handbook's simulator (training, replay and load data).
    Simulate(cmd::simulate::Args),
    /// Train and evaluate a model on a transaction file; write the artifact and metrics.
    Train(cmd::train::Args),
    /// Check a trained artifact against quality floors before it may be registered.
    Validate(cmd::validate::Args),
    /// Publish a trained artifact to MLflow: run, registered version, champion gate.
    Register(cmd::register::Args),
    /// Serve the scoring API (SPEC §4): predictions, health, readiness, metrics, OpenAPI docs.
    Serve(cmd::serve::Args),
    /// Kafka stream worker (SPEC §5): transactions-input → online features → score → fraud-predictions.
    Stream(cmd::stream::Args),
    /// Label consumer (SPEC §5): fraud-labels → the feature store's terminal risk, at-least-once.
    Labels(cmd::labels::Args),
    /// Lake archive (SPEC §6): transactions-input, fraud-predictions and fraud-labels → Parquet files by
    /// event day on object storage, exactly once.
    Archive(cmd::archive::Args),
    /// The transaction lake: what it holds, a training window copied out, a file replayed into its topics.
    Lake(cmd::lake::Args),
    /// Online quality: a file replayed as direct `/predict` calls without history (labels through
    /// `fraud-labels`) against the same model offline, on the same test transactions.
    EvalOnline(cmd::eval_online::Args),
    /// Escalating load into Kafka (or straight into the API), phase by phase, optionally until an alert fires.
    Attack(cmd::attack::Args),
    /// The local attack drill (SPEC §7.1): replicas under real CPU limits, the deployed HPA, Prometheus
    /// and Alertmanager, escalation until the administrator is notified; writes a report.
    Drill(cmd::drill::Args),
    /// The Alertmanager → Airflow bridge: a model alert's webhook starts `ml_model_retrain` (one run per
    /// incident) with the alert in the run's conf.
    RetrainTrigger(cmd::retrain_trigger::Args),
    /// API keys for `serve`'s API_KEYS_FILE: a new key and its line (the file holds digests only).
    ApiKey(cmd::api_key::Args),
    /// The key pair models are signed with (`--signing-key`) and `serve` trusts (MODEL_TRUSTED_KEYS_FILE).
    ModelKey(cmd::model_key::Args),
}

fn main() -> anyhow::Result<()> {
    // A missing .env is normal; a malformed one is worth failing on.
    match dotenvy::dotenv() {
        Ok(_) => {}
        Err(e) if e.not_found() => {}
        Err(e) => return Err(anyhow::Error::new(e).context("reading .env")),
    }
    match Cli::parse().command {
        Command::Simulate(args) => cmd::simulate::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Validate(args) => cmd::validate::run(args),
        Command::Register(args) => cmd::register::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Stream(args) => cmd::stream::run(args),
        Command::Labels(args) => cmd::labels::run(args),
        Command::Archive(args) => cmd::archive::run(args),
        Command::Lake(args) => cmd::lake::run(args),
        Command::EvalOnline(args) => cmd::eval_online::run(args),
        Command::Attack(args) => cmd::attack::run(args),
        Command::Drill(args) => cmd::drill::run(args),
        Command::RetrainTrigger(args) => cmd::retrain_trigger::run(args),
        Command::ApiKey(args) => cmd::api_key::run(args),
        Command::ModelKey(args) => cmd::model_key::run(args),
    }
}
