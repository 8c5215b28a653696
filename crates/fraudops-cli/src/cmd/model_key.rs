//! `fraudops model-key new`: the Ed25519 key pair models are signed with (`train`/`register
//! --signing-key`) and the public half `serve` trusts (MODEL_TRUSTED_KEYS_FILE).

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use fraudops_model::signing::ModelSigner;

/// `fraudops model-key new --out DIR`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// A new key pair: DIR/model-signing.key (the secret seed, mode 0600: put it in the trainer's Secret,
    /// then delete it here) and DIR/model-signing.pub (a line for serve's MODEL_TRUSTED_KEYS_FILE, also
    /// printed). Existing files are never overwritten.
    New {
        /// Where to write the two files.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
}

/// Runs the action.
pub fn run(args: Args) -> anyhow::Result<()> {
    let Action::New { out } = args.action;
    let (secret, public) = ModelSigner::generate();
    let secret_path = out.join("model-signing.key");
    let public_path = out.join("model-signing.pub");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(&secret_path)
        .and_then(|mut f| writeln!(f, "{secret}"))
        .with_context(|| format!("writing {}", secret_path.display()))?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&public_path)
        .and_then(|mut f| writeln!(f, "{public}"))
        .with_context(|| format!("writing {}", public_path.display()))?;
    println!("{public}");
    eprintln!(
        "model-key: secret seed in {} (mode 0600), public key in {}",
        secret_path.display(),
        public_path.display()
    );
    Ok(())
}
