//! The fraud model as it is shipped and served.
//!
//! * [`artifact`] — the versioned, self-describing, checksummed file a trainer writes and a server loads;
//! * [`ensemble`] — the compiled tree ensemble: complete trees walked eight at a time, without allocation;
//! * [`reference`] — the score and feature distributions at training time, and the PSI against them;
//! * [`Model`] — both together, plus the decision rule, ready to score a [`FeatureVector`].
//!
//! Architecture invariant: this crate knows nothing about training libraries, HTTP, Kafka or MLflow; the
//! trainer converts its library's trees into an [`artifact::EnsembleSpec`], so serving never links it.

pub mod artifact;
pub mod ensemble;
pub mod reference;
pub mod signing;

use std::path::Path;

pub use artifact::{ArtifactError, ModelArtifact, ModelMetrics, TrainingWindow};
pub use ensemble::Ensemble;
use fraudops_features::FeatureVector;
pub use reference::{Histogram, Reference};

/// The model the binary was built with, trained by `fraudops train` on simulated data (see README).
pub const EMBEDDED_MODEL_JSON: &str = include_str!("../../../models/default/model.json");

/// One scored transaction.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prediction {
    /// Calibrated-by-training probability that the transaction is fraud, in [0, 1].
    pub fraud_probability: f64,
    /// `fraud_probability >= threshold`.
    pub is_fraud: bool,
    /// Probability of the predicted class, `max(p, 1 - p)`: how sure the model is of `is_fraud`.
    pub confidence: f64,
}

/// A loaded, verified model: what `serve` and `stream --in-process` hold behind an atomic pointer.
#[derive(Debug, Clone)]
pub struct Model {
    artifact: ModelArtifact,
    ensemble: Ensemble,
}

impl Model {
    /// Verifies and compiles an artifact; refuses corrupt or incompatible ones.
    pub fn from_artifact(artifact: ModelArtifact) -> Result<Self, ArtifactError> {
        artifact.verify()?;
        let ensemble = Ensemble::compile(&artifact.ensemble)?;
        Ok(Self { artifact, ensemble })
    }

    /// Parses, verifies and compiles artifact JSON.
    pub fn from_json(json: &[u8]) -> Result<Self, ArtifactError> {
        Self::from_artifact(ModelArtifact::from_json(json)?)
    }

    /// Loads an artifact file (`model.json`).
    pub fn load(path: &Path) -> Result<Self, ArtifactError> {
        let bytes = std::fs::read(path).map_err(|source| ArtifactError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_json(&bytes)
    }

    /// The model compiled into the binary; always valid (a test guards it).
    pub fn embedded() -> Result<Self, ArtifactError> {
        Self::from_json(EMBEDDED_MODEL_JSON.as_bytes())
    }

    /// Scores one feature row. Never allocates and never fails: any finite or NaN input has a leaf.
    #[inline]
    pub fn predict(&self, features: &FeatureVector) -> Prediction {
        let p = self.ensemble.probability(features);
        let is_fraud = p >= self.artifact.decision_threshold;
        Prediction {
            fraud_probability: p,
            is_fraud,
            confidence: p.max(1.0 - p),
        }
    }

    /// Scores many rows into `out` (same order); `out` must be as long as `rows`.
    pub fn predict_batch(&self, rows: &[FeatureVector], out: &mut [Prediction]) {
        for (row, slot) in rows.iter().zip(out.iter_mut()) {
            *slot = self.predict(row);
        }
    }

    /// The artifact's content-derived version, e.g. `gbdt-3f2a9c01b7de`.
    pub fn version(&self) -> &str {
        &self.artifact.model_version
    }

    /// Everything the artifact says about itself (training window, metrics, hyper-parameters).
    pub fn artifact(&self) -> &ModelArtifact {
        &self.artifact
    }

    /// The compiled ensemble (for benchmarks and diagnostics).
    pub fn ensemble(&self) -> &Ensemble {
        &self.ensemble
    }
}
