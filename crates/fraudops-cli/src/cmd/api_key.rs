//! `fraudops api-key`: keys for the API's API_KEYS_FILE. The server keeps only digests, so a key is shown
//! once, when it is made; the operator hands it to its client (a Secret) and adds the line to the file.

use std::io::Read;

use anyhow::Context;
use rand::RngCore;

/// `fraudops api-key <action>`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// A new random key: the key on stdout (for the client's Secret), its API_KEYS_FILE line on stderr.
    New(Line),
    /// The API_KEYS_FILE line of an existing key read from stdin (for a key made elsewhere).
    Line(Line),
}

/// What a keys-file line says besides the key's digest.
#[derive(Debug, clap::Args)]
struct Line {
    /// The client id (the quota's key and the `client` label of refusals): 1-64 of [A-Za-z0-9._-].
    #[arg(long)]
    client: String,
    /// Comma-separated scopes: `score` (score only), `record` (direct calls are recorded in the feature
    /// store), `history` (may send precomputed history).
    #[arg(long)]
    scopes: String,
    /// The client's own quota, requests/s per API replica (the server's RATE_LIMIT_RPS otherwise).
    #[arg(long)]
    rps: Option<u32>,
    /// The key of synthetic traffic (an attack, a drill): its direct calls read and write the feature
    /// store's synthetic namespace, never a real card's windows (`ns=synthetic`).
    #[arg(long)]
    synthetic: bool,
}

impl Line {
    /// The line for `key`, checked as the server reads it.
    fn of(&self, key: &str) -> anyhow::Result<String> {
        Ok(fraudops_serve::keys_file_line(
            &self.client,
            &self.scopes,
            key,
            self.rps,
            self.synthetic,
        )?)
    }
}

/// Bytes of randomness in a key: 256 bits, from the operating system.
const KEY_BYTES: usize = 32;

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.action {
        Action::New(line) => {
            let mut bytes = [0u8; KEY_BYTES];
            rand::rngs::OsRng
                .try_fill_bytes(&mut bytes)
                .context("reading randomness from the operating system")?;
            let key = format!("fo_{}", hex::encode(bytes));
            let line = line.of(&key)?;
            println!("{key}");
            eprintln!("{line}");
        }
        Action::Line(line) => {
            let mut key = String::new();
            std::io::stdin()
                .read_to_string(&mut key)
                .context("reading the key from stdin")?;
            let key = key.trim();
            anyhow::ensure!(!key.is_empty(), "no key on stdin");
            println!("{}", line.of(key)?);
        }
    }
    Ok(())
}
