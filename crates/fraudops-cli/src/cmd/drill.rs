//! `fraudops drill`: the local attack drill (SPEC §7.1). The drill is `fraudops_drill`; this file sends
//! its JSON log to the report directory, prints progress on stderr, and turns a failed check into a
//! non-zero exit status.

use std::io::IsTerminal;
use std::sync::Mutex;

use anyhow::{Context, bail};
use fraudops_drill::Progress;

/// Options of `fraudops drill` (all from `fraudops_drill::DrillArgs`, each also an env var).
pub type Args = fraudops_drill::DrillArgs;

/// On a log (not a terminal), one status line per this many seconds of drill time.
const LOG_STATUS_EVERY_S: f64 = 10.0;

/// A line above the spinner on a terminal, a plain line in a log.
fn say(bar: &indicatif::ProgressBar, terminal: bool, line: String) {
    if terminal {
        bar.println(line);
    } else {
        eprintln!("{line}");
    }
}

/// Runs the drill; exits non-zero if a check failed or it was interrupted.
pub fn run(args: Args) -> anyhow::Result<()> {
    let logs = args.report.join("logs");
    std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
    let log = std::fs::File::create(logs.join("drill.log")).context("creating logs/drill.log")?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_env_filter(filter)
        .with_writer(Mutex::new(log))
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    let terminal = std::io::stderr().is_terminal();
    let bar = crate::progress::spinner("starting the drill");
    if !terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut next_status = 0.0;
    let outcome = runtime.block_on(fraudops_drill::run(
        args,
        fraudops_serve::shutdown_signal(),
        |p| match p {
            Progress::Step(s) => say(&bar, terminal, format!("==> {s}")),
            Progress::Milestone { t_seconds, message } => {
                say(&bar, terminal, format!("[{t_seconds:>7.1} s] {message}"));
            }
            Progress::Sample(s) => {
                let line = format!(
                    "t={:.0}s target={:.0} achieved={:.0} scored={:.0} tx/s p95={} replicas={}/{} (ready {}) cpu_max={} rule_cpu_max={} alert={}",
                    s.t_seconds,
                    s.target_tps,
                    s.achieved_tps,
                    s.scored_tps,
                    s.p95_ms.map_or("-".into(), |p| format!("{p:.0}ms")),
                    s.replicas_current,
                    s.replicas_desired,
                    s.replicas_ready,
                    s.cpu_ratio_max.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
                    s.rule_cpu_ratio_max.map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
                    s.alert_state.as_str(),
                );
                if !terminal && s.t_seconds >= next_status {
                    next_status = s.t_seconds + LOG_STATUS_EVERY_S;
                    eprintln!("{line}");
                }
                bar.set_message(line);
            }
        },
    ))?;
    bar.finish_and_clear();
    // Children still exiting are not waited for by the runtime's drop.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));

    let s = &outcome.summary;
    println!(
        "drill {} ({}): report in {}",
        s.verdict.to_uppercase(),
        s.mode,
        outcome.report.display()
    );
    println!(
        "  overlay {}, CPU {}",
        s.overlay,
        if s.cpu_scaled {
            format!(
                "SCALED ×{} (a deployment that does not exist)",
                s.cpu_factor
            )
        } else {
            "as deployed".to_owned()
        }
    );
    println!("  CPU limits: {}", s.cpu_mechanism_description);
    for e in &s.scaling_events {
        println!(
            "  t={:>7.1}s scaling_event {} → {}: {}",
            e.t_seconds.unwrap_or_default(),
            e.from,
            e.to,
            e.reason
        );
    }
    let t = |v: Option<f64>| v.map_or("–".to_owned(), |v| format!("{v:.1}s"));
    println!(
        "  alert pending {} · firing {} · admin notified {}",
        t(s.alert_pending_s),
        t(s.alert_firing_s),
        t(s.notification_s)
    );
    if let Some(c) = &s.capacity {
        println!(
            "  capacity: {:.0} µs of CPU per prediction (+{:.1}m idle per replica)",
            c.cpu_seconds_per_request * 1e6,
            c.idle_cpu_cores * 1000.0
        );
        for o in &c.overlays {
            println!(
                "    {}: {:.0}m/{:.0}m per replica; HPA target crossed at {:.0} tx/s, admin alert's line at {:.0} tx/s",
                o.overlay,
                o.cpu_request_cores * 1000.0,
                o.cpu_limit_cores * 1000.0,
                o.hpa_scale_up_tps,
                o.admin_alert_tps
            );
        }
    }
    for c in &s.checks {
        println!(
            "  [{}] {} — {}",
            if c.passed { "pass" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    if !outcome.passed() {
        bail!(
            "the drill {} (see {}/summary.md)",
            s.verdict,
            outcome.report.display()
        );
    }
    Ok(())
}
