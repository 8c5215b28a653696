//! `fraudops serve`: the scoring API (SPEC §4). Chooses the model source, then hands over to
//! `fraudops-serve`.

use anyhow::{Context, bail};
use fraudops_serve::ModelSource;
use fraudops_serve::ServeConfig;

/// Options of `fraudops serve` (all from `fraudops_serve::ServeConfig`, each also an env var).
pub type Args = ServeConfig;

/// Picks the model source: the registry when MLFLOW_MODEL_URI is set, a file with MODEL_PATH,
/// otherwise the embedded default model.
fn model_source(config: &ServeConfig) -> anyhow::Result<ModelSource> {
    match (&config.mlflow_model_uri, &config.model_path) {
        (Some(_), Some(_)) => bail!("set either MODEL_PATH or MLFLOW_MODEL_URI, not both"),
        (Some(uri), None) => {
            let tracking = config
                .mlflow_tracking_uri
                .as_deref()
                .context("MLFLOW_MODEL_URI needs MLFLOW_TRACKING_URI")?;
            crate::registry::source(tracking, uri)
        }
        (None, Some(path)) => Ok(ModelSource::File(path.clone())),
        (None, None) => Ok(ModelSource::Embedded),
    }
}

/// Runs the server until SIGTERM/SIGINT, then drains.
pub fn run(config: Args) -> anyhow::Result<()> {
    let _log_guard = fraudops_serve::init_logging();
    let source = model_source(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let server = fraudops_serve::Server::bind(config, source).await?;
        server.run_until(fraudops_serve::shutdown_signal()).await
    })
}
