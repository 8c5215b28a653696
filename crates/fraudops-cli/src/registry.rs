//! The bridge between the MLflow client and the API server's model store: `serve` follows a
//! `models:/NAME@ALIAS` (or `/VERSION`) URI through this [`RegistryFetcher`].

use std::sync::Arc;

use anyhow::Context;
use fraudops_mlflow::{MlflowClient, ModelUri};
use fraudops_serve::{FetchFuture, Fetched, ModelSource, RegistryFetcher};

/// The artifact file every registered version holds at the root of its source (written by
/// `fraudops train`): its logged model's artifacts (`models:/m-...`, beside `MLmodel`) or, for
/// versions registered before logged models, the run's `model/` folder. Both are read the same way.
pub const MODEL_FILE: &str = "model.json";

/// Follows one registry URI on one tracking server.
struct MlflowFetcher {
    client: MlflowClient,
    uri: ModelUri,
}

impl RegistryFetcher for MlflowFetcher {
    fn fetch(&self, known: Option<String>) -> FetchFuture<'_> {
        Box::pin(async move {
            let version = self
                .client
                .resolve(&self.uri)
                .await
                .map_err(|e| e.to_string())?;
            let label = format!("models:/{}/{}", version.name, version.version);
            if known.as_deref() == Some(label.as_str()) {
                return Ok(None);
            }
            let bytes = self
                .client
                .download_artifact(&version, MODEL_FILE)
                .await
                .map_err(|e| format!("{label}: {e}"))?;
            // Absent (an unsigned version) or unreadable: `None`, which a serve that trusts keys refuses.
            let signature = self
                .client
                .download_artifact(&version, crate::publish::SIGNATURE_FILE)
                .await
                .ok()
                .and_then(|b| String::from_utf8(b).ok());
            Ok(Some(Fetched {
                label,
                bytes,
                signature,
            }))
        })
    }

    fn describe(&self) -> String {
        self.uri.to_string()
    }
}

/// A [`ModelSource::Registry`] for `uri` on the tracking server at `tracking_uri`.
pub fn source(tracking_uri: &str, uri: &str) -> anyhow::Result<ModelSource> {
    let client = MlflowClient::new(tracking_uri)
        .with_context(|| format!("MLflow tracking URI {tracking_uri}"))?;
    let uri: ModelUri = uri
        .parse()
        .with_context(|| format!("MLFLOW_MODEL_URI {uri}"))?;
    Ok(ModelSource::Registry(Arc::new(MlflowFetcher {
        client,
        uri,
    })))
}
