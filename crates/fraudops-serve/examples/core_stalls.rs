//! Measures how much of its core the machine takes away: spins for `--seconds`, reading the clock,
//! and reports the gaps (turns over 100 µs). `scripts/bench-serve.sh` runs it on the server's core,
//! while the server is idle, before each open-model round: a latency goal below a millisecond can
//! only hold where the core itself is not taken away for milliseconds, and the report says whether
//! it was.
//!
//! `taskset -c 0 cargo run --release -p fraudops-serve --example core_stalls -- --seconds 3`

use std::time::{Duration, Instant};

use clap::Parser;

#[path = "support/stalls.rs"]
mod stalls;

/// Command line.
#[derive(Parser)]
struct Args {
    /// How long to spin.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let length = Duration::try_from_secs_f64(args.seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--seconds must be a positive number"))?;
    let start = Instant::now();
    let mut last = start;
    let mut seen = stalls::Stalls::default();
    while last.duration_since(start) < length {
        let now = Instant::now();
        seen.saw(now.duration_since(last));
        last = now;
    }
    let elapsed = last.duration_since(start).as_secs_f64();
    println!(
        "{{\"seconds\":{elapsed:.3},\"stalled_ms_per_s\":{:.2},\"longest_ms\":{:.3},\"over_1ms_per_s\":{:.2}}}",
        seen.total.as_secs_f64() * 1e3 / elapsed,
        seen.longest.as_secs_f64() * 1e3,
        seen.over_1ms as f64 / elapsed,
    );
    Ok(())
}
