//! `fraudops attack`: the escalating load of SPEC §5. The pacing is in `fraudops_stream::attack`; this
//! file draws the live progress line, prints the final table and writes `--results`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Options of `fraudops attack` (all from `fraudops_stream::attack::AttackConfig`, each also an env var).
pub type Args = fraudops_stream::attack::AttackConfig;

/// How often the progress line is repeated when stderr is a log file rather than a terminal.
const LOG_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Runs the attack; prints the per-phase table on stdout. Exits non-zero when `--until-alert` was given
/// and the alert never fired.
pub fn run(config: Args) -> anyhow::Result<()> {
    // Warnings only, on stderr: stdout is the results table.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let results = config.results.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    let terminal = std::io::stderr().is_terminal();
    let bar = crate::progress::spinner("starting");
    if !terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_line = Instant::now();
    let report = runtime.block_on(fraudops_stream::attack::run(
        config,
        fraudops_serve::shutdown_signal(),
        |progress| {
            let line = progress.line();
            if !terminal && last_line.elapsed() >= LOG_PROGRESS_EVERY {
                last_line = Instant::now();
                eprintln!("{line}");
            }
            bar.set_message(line);
        },
    ))?;
    bar.finish_and_clear();
    print!("{}", report.table());

    if let Some(path) = results {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(&report).context("encoding the results")?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(alert) = report
        .alert
        .as_ref()
        .filter(|a| !a.fired && !report.interrupted)
    {
        bail!(
            "alert {} did not fire before the escalation ended (raise --max-rate or check {})",
            alert.alert,
            alert.alertmanager
        );
    }
    Ok(())
}
