//! The served model behind an atomic pointer, where it comes from, and the poller that swaps in a new
//! version without blocking or failing a request. A broken artifact is refused and the old one stays.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use fraudops_model::Model;
use prometheus::IntCounter;

use crate::drift::LiveWindow;
use crate::events::{ModelInstalled, ModelRefused, RegistryUnreachable};
use crate::telemetry::{Metrics, RESULT_FRAUD, RESULT_LEGIT};

/// A model ready to answer, with its per-version prediction counters resolved once.
pub struct ServedModel {
    /// The verified model.
    pub model: Model,
    /// Where it came from (`embedded`, a path, `models:/name/3`).
    pub source: String,
    /// Live score and feature counts against the artifact's drift reference; `None` for artifacts
    /// without one (no PSI is exported then).
    pub drift: Option<LiveWindow>,
    fraud: IntCounter,
    legit: IntCounter,
}

impl ServedModel {
    /// Counts one prediction in `ml_model_predictions_total` without a label lookup.
    #[inline]
    pub fn count(&self, is_fraud: bool) {
        if is_fraud {
            self.fraud.inc()
        } else {
            self.legit.inc()
        }
    }
}

/// Artifact bytes fetched from a registry, with the registry's name for that version.
pub struct Fetched {
    /// Registry version label, e.g. `models:/fraud-detector/3`.
    pub label: String,
    /// The `model.json` bytes.
    pub bytes: Vec<u8>,
    /// `model.json.sig` beside it (hex), if the version has one.
    pub signature: Option<String>,
}

/// Boxed future returned by [`RegistryFetcher::fetch`].
pub type FetchFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<Fetched>, String>> + Send + 'a>>;

/// A model registry the server follows (MLflow in production); `known` is the label already tried,
/// and the fetcher returns `None` when the registry still points at it.
pub trait RegistryFetcher: Send + Sync {
    /// Resolves the followed version and downloads it if it differs from `known`.
    fn fetch(&self, known: Option<String>) -> FetchFuture<'_>;
    /// What is followed, for logs (`models:/fraud-detector@champion`).
    fn describe(&self) -> String;
}

/// Where the served model comes from.
#[derive(Clone)]
pub enum ModelSource {
    /// The model compiled into the binary.
    Embedded,
    /// A `model.json` file, re-read when its size or modification time changes.
    File(PathBuf),
    /// A registry alias or version, re-resolved on every poll.
    Registry(Arc<dyn RegistryFetcher>),
}

/// The one place the current model lives.
pub struct ModelStore {
    current: ArcSwapOption<ServedModel>,
    metrics: Arc<Metrics>,
    replica_id: String,
    /// Half the drift window, seconds (DRIFT_WINDOW_SECONDS / 2): each served model's window gets it.
    drift_half_window_seconds: u64,
    /// DRIFT_CLOCK=event: the windows' halves follow the transactions' time.
    drift_event_clock: bool,
    /// MODEL_TRUSTED_KEYS_FILE: every artifact not compiled in must be signed by one of these.
    trusted: Option<fraudops_model::signing::TrustedKeys>,
}

impl ModelStore {
    /// An empty store: not ready until a model is installed.
    pub fn new(
        metrics: Arc<Metrics>,
        replica_id: String,
        drift_half_window_seconds: u64,
        drift_event_clock: bool,
    ) -> Self {
        Self {
            current: ArcSwapOption::empty(),
            metrics,
            replica_id,
            drift_half_window_seconds,
            drift_event_clock,
            trusted: None,
        }
    }

    /// Requires every artifact from a file or a registry to be signed by one of `keys`.
    pub fn with_trusted_keys(mut self, keys: fraudops_model::signing::TrustedKeys) -> Self {
        self.trusted = Some(keys);
        self
    }

    /// The artifact `bytes` with its `signature`, as a model: verified first when keys are trusted
    /// (refused: `Err(true, reason)`, counted as `model_signature`), then parsed and checked
    /// (`Err(false, reason)`: `model_load`).
    fn admit(&self, bytes: &[u8], signature: Option<&str>) -> Result<Model, (bool, String)> {
        if let Some(trusted) = &self.trusted {
            trusted
                .verify(bytes, signature)
                .map_err(|e| (true, e.to_string()))?;
        }
        Model::from_json(bytes).map_err(|e| (false, e.to_string()))
    }

    /// An artifact file and the `.sig` beside it (absent: unsigned).
    fn admit_file(&self, path: &std::path::Path) -> Result<Model, (bool, String)> {
        let bytes = std::fs::read(path).map_err(|e| (false, format!("{}: {e}", path.display())))?;
        let signature = std::fs::read_to_string(fraudops_model::signing::signature_path(path)).ok();
        self.admit(&bytes, signature.as_deref())
    }

    /// Installs what [`Self::admit`] accepted, or records why not.
    fn install_or_refuse(&self, admitted: Result<Model, (bool, String)>, label: String) {
        match admitted {
            Ok(model) => self.install(model, label),
            Err((true, reason)) => self.refuse_signature(&label, &reason),
            Err((false, reason)) => self.refuse(&label, &reason),
        }
    }

    /// The model serving right now; a request keeps the one it got even if a swap happens meanwhile.
    #[inline]
    pub fn get(&self) -> Option<Arc<ServedModel>> {
        self.current.load_full()
    }

    /// Makes `model` the served one, atomically, and updates `ml_model_info`.
    pub fn install(&self, model: Model, source: String) {
        let version = model.version().to_owned();
        let served = ServedModel {
            fraud: self
                .metrics
                .predictions
                .with_label_values(&[&version, RESULT_FRAUD]),
            legit: self
                .metrics
                .predictions
                .with_label_values(&[&version, RESULT_LEGIT]),
            drift: model.artifact().reference.as_ref().and_then(|r| {
                LiveWindow::new(r, self.drift_half_window_seconds, self.drift_event_clock)
            }),
            model,
            source,
        };
        let library = served.model.artifact().library.clone();
        let source = served.source.clone();
        let info_labels = [
            version.as_str(),
            library.as_str(),
            source.as_str(),
            self.replica_id.as_str(),
        ];
        let offline = served.model.artifact().metrics;
        let previous = self.current.swap(Some(Arc::new(served)));
        if let Some(old) = &previous {
            let old_labels = [
                old.model.version(),
                old.model.artifact().library.as_str(),
                old.source.as_str(),
                self.replica_id.as_str(),
            ];
            if old_labels != info_labels {
                let _ = self.metrics.info.remove_label_values(&old_labels);
            }
            if old.model.version() != version {
                for gauge in &self.metrics.offline {
                    let _ = gauge.remove_label_values(&[old.model.version()]);
                }
            }
        }
        self.metrics.info.with_label_values(&info_labels).set(1);
        for (gauge, value) in self.metrics.offline.iter().zip([
            offline.roc_auc,
            offline.average_precision,
            offline.card_precision_at_100,
        ]) {
            gauge.with_label_values(&[version.as_str()]).set(value);
        }
        ModelInstalled {
            previous: previous.as_ref().map(|old| old.model.version()),
            version: &version,
            source: &source,
            drift_reference: self.get().is_some_and(|m| m.drift.is_some()),
        }
        .emit(&self.metrics);
    }

    /// Records a refused artifact: logged, counted as `model_load`, the served model untouched.
    pub fn refuse(&self, source: &str, reason: &str) {
        let kept = self.get();
        ModelRefused {
            source,
            reason,
            kept: kept.as_ref().map(|m| m.model.version()),
        }
        .emit(&self.metrics);
    }

    /// Records an artifact refused for its signature: logged, counted as `model_signature`, the served
    /// model untouched.
    pub fn refuse_signature(&self, source: &str, reason: &str) {
        let kept = self.get();
        tracing::error!(
            event = "model_refused",
            error_type = crate::telemetry::ERROR_MODEL_SIGNATURE,
            source,
            reason,
            kept = kept.as_ref().map(|m| m.model.version())
        );
        self.metrics
            .errors
            .with_label_values(&[crate::telemetry::ERROR_MODEL_SIGNATURE])
            .inc();
        self.metrics
            .reloads
            .with_label_values(&[crate::telemetry::RELOAD_FAILURE])
            .inc();
    }

    /// Loads the first model synchronously where that can fail fast (embedded, file): a file that is not
    /// signed by a trusted key stops the start, as a bad checksum does.
    pub fn load_initial(&self, source: &ModelSource) -> Result<(), anyhow::Error> {
        match source {
            ModelSource::Embedded => self.install(Model::embedded()?, "embedded".into()),
            ModelSource::File(path) => {
                let model = self
                    .admit_file(path)
                    .map_err(|(_, reason)| anyhow::anyhow!("{}: {reason}", path.display()))?;
                self.install(model, path.display().to_string())
            }
            // Registries are loaded by the poller; until then the server is not ready.
            ModelSource::Registry(_) => {}
        }
        Ok(())
    }
}

/// Every `half_window` of wall time, starts a new half of the served model's drift window unless event
/// time started one meanwhile (see `drift`, "Whose clock").
pub async fn rotate_drift(store: Arc<ModelStore>, half_window: Duration) {
    let mut rotations = 0;
    loop {
        tokio::time::sleep(half_window).await;
        if let Some(window) = store.get().as_ref().and_then(|m| m.drift.as_ref()) {
            rotations = window.tick(rotations);
        }
    }
}

/// Refreshes the drift gauges from the served model's window (called when `/metrics` is read).
pub fn export_drift(store: &ModelStore) {
    match store.get().as_ref().and_then(|m| m.drift.as_ref()) {
        Some(window) => {
            let reading = window.reading();
            store
                .metrics
                .set_drift(reading.samples, reading.psi.as_ref().map(|(s, f)| (*s, f)));
        }
        None => store.metrics.set_drift(0, None),
    }
}

/// File identity used to notice a new artifact without reading it.
fn fingerprint(path: &PathBuf) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Polls `source` every `interval` and swaps in new, valid models until the task is dropped.
pub async fn watch(store: Arc<ModelStore>, source: ModelSource, interval: Duration) {
    match source {
        ModelSource::Embedded => {}
        ModelSource::File(path) => {
            let mut seen = fingerprint(&path);
            loop {
                tokio::time::sleep(interval).await;
                let now = fingerprint(&path);
                if now.is_none() || now == seen {
                    continue;
                }
                seen = now;
                let label = path.display().to_string();
                let path = path.clone();
                let checker = store.clone();
                match tokio::task::spawn_blocking(move || checker.admit_file(&path)).await {
                    Ok(admitted) => store.install_or_refuse(admitted, label),
                    Err(e) => store.refuse(&label, &e.to_string()),
                }
            }
        }
        ModelSource::Registry(fetcher) => {
            let mut known: Option<String> = None;
            let mut first = true;
            loop {
                if !first {
                    tokio::time::sleep(interval).await;
                }
                first = false;
                match fetcher.fetch(known.clone()).await {
                    Ok(None) => {}
                    Ok(Some(fetched)) => {
                        // Remember the label whether or not it loads: a broken version is refused once.
                        known = Some(fetched.label.clone());
                        let admitted = store.admit(&fetched.bytes, fetched.signature.as_deref());
                        store.install_or_refuse(admitted, fetched.label);
                    }
                    Err(e) => RegistryUnreachable {
                        registry: &fetcher.describe(),
                        error: &e,
                    }
                    .emit(&store.metrics),
                }
            }
        }
    }
}
