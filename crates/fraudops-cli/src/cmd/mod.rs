//! One module per subcommand: its clap arguments (the `///` lines are the help) and its `run`.

pub mod api_key;
pub mod archive;
pub mod attack;
pub mod drill;
pub mod eval_online;
pub mod labels;
pub mod lake;
pub mod model_key;
pub mod register;
pub mod retrain_trigger;
pub mod serve;
pub mod simulate;
pub mod stream;
pub mod train;
pub mod validate;

/// Runs a long-lived service's future (`stream`, `labels`; it takes `fraudops_serve::shutdown_signal()`
/// to stop on SIGTERM/SIGINT) with JSON logging on a multi-threaded runtime. Tasks still running after it
/// (retries against a dead dependency) get one second, then are abandoned: their input was not committed.
pub(crate) fn block_on_service<F: std::future::Future>(service: F) -> anyhow::Result<F::Output> {
    use anyhow::Context;
    let _log_guard = fraudops_serve::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let output = runtime.block_on(service);
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(output)
}
