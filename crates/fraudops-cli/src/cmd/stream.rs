//! `fraudops stream`: the Kafka stream worker (SPEC §5). The work is in `fraudops_stream::worker`; this
//! file starts logging and the runtime, and prints what the worker did when it stops.

use anyhow::Context;

/// Options of `fraudops stream` (all from `fraudops_stream::worker::WorkerConfig`, each also an env var).
pub type Args = fraudops_stream::worker::WorkerConfig;

/// Runs the worker until SIGTERM/SIGINT (or `--stop-after`), then drains and commits.
pub fn run(config: Args) -> anyhow::Result<()> {
    let _log_guard = fraudops_serve::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let summary = runtime.block_on(fraudops_stream::worker::run(
        config,
        fraudops_serve::shutdown_signal(),
    ))?;
    // One greppable line for people and benchmark scripts alike (logs go to stdout as JSON).
    eprintln!(
        "stream summary: consumed={} predicted={} dead_lettered={} busy_s={:.3} events_per_s={:.0} \
         cpu_s={:.3} events_per_cpu_s={:.0} drained={}",
        summary.consumed,
        summary.predicted,
        summary.dead_lettered,
        summary.busy_seconds,
        summary.events_per_second(),
        summary.cpu_seconds,
        summary.events_per_cpu_second(),
        summary.drained
    );
    // Tasks still retrying an unreachable API are abandoned; their events were not committed.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(())
}
