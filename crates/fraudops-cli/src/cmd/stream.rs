//! `fraudops stream`: the Kafka stream worker (SPEC §5). The work is in `fraudops_stream::worker`; this
//! file starts logging and the runtime, and prints what the worker did when it stops.

/// Options of `fraudops stream` (all from `fraudops_stream::worker::WorkerConfig`, each also an env var).
pub type Args = fraudops_stream::worker::WorkerConfig;

/// Runs the worker until SIGTERM/SIGINT (or `--stop-after`), then drains and commits.
pub fn run(config: Args) -> anyhow::Result<()> {
    let summary = super::block_on_service(fraudops_stream::worker::run(
        config,
        fraudops_serve::shutdown_signal(),
    ))??;
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
    Ok(())
}
