//! `fraudops labels`: the label consumer (SPEC §5). The work is in `fraudops_stream::labels`; this file
//! starts logging and the runtime, and prints what the consumer did when it stops.

/// Options of `fraudops labels` (all from `fraudops_stream::labels::LabelsConfig`, each also an env var).
pub type Args = fraudops_stream::labels::LabelsConfig;

/// Runs the consumer until SIGTERM/SIGINT, then finishes the batch in hand and commits.
pub fn run(config: Args) -> anyhow::Result<()> {
    let summary = super::block_on_service(fraudops_stream::labels::run(
        config,
        fraudops_serve::shutdown_signal(),
    ))??;
    // One greppable line (logs go to stdout as JSON).
    eprintln!(
        "labels summary: consumed={} fraud={} genuine={} invalid={} store_errors={} drained={}",
        summary.consumed,
        summary.fraud,
        summary.genuine,
        summary.invalid,
        summary.store_errors,
        summary.drained
    );
    Ok(())
}
