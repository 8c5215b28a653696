//! `fraudops archive`: the lake archive (SPEC §6). The work is in `fraudops_stream::archive`; this file
//! starts logging and the runtime, and prints what the archive did when it stops.

/// Options of `fraudops archive` (from `fraudops_stream::archive::ArchiveConfig`, each also an env var).
pub type Args = fraudops_stream::archive::ArchiveConfig;

/// Runs the archive until SIGTERM/SIGINT, then flushes what it read to the lake and commits.
pub fn run(config: Args) -> anyhow::Result<()> {
    let summary = super::block_on_service(fraudops_stream::archive::run(
        config,
        fraudops_serve::shutdown_signal(),
    ))??;
    let rows: Vec<String> = summary
        .rows
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    // One greppable line (logs go to stdout as JSON).
    eprintln!(
        "archive summary: consumed={} redelivered={} rows[{}] files={} compacted={} dead_letters={} write_errors={} drained={}",
        summary.consumed,
        summary.redelivered,
        rows.join(" "),
        summary.files,
        summary.compacted,
        summary.dead_letters,
        summary.write_errors,
        summary.drained
    );
    Ok(())
}
