//! `fraudops`: the one binary of the project. `main` only parses the command line and dispatches.

mod cmd;
mod progress;

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
    }
}
