//! The model artifact: one JSON file that says what it is, how it was made, how good it was, and proves
//! it arrived intact.

use std::collections::BTreeMap;

use fraudops_features::FEATURE_NAMES;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Artifact layout version; a server refuses layouts it does not know.
pub const ARTIFACT_FORMAT: u32 = 1;

/// Why an artifact cannot be served. Every variant leaves the currently served model untouched.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The file could not be read.
    #[error("cannot read model artifact {path}: {source}")]
    Io {
        /// The path that failed.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The bytes are not an artifact (truncated, not JSON, missing fields).
    #[error("model artifact is not valid JSON of the expected shape: {0}")]
    Parse(#[from] serde_json::Error),
    /// Written by a newer or older trainer with a different layout.
    #[error(
        "model artifact format {found} is not supported (this build reads format {ARTIFACT_FORMAT})"
    )]
    Format {
        /// The format the file declares.
        found: u32,
    },
    /// The content does not match its checksum: corrupted or edited.
    #[error("model artifact checksum mismatch: recorded {recorded}, computed {computed}")]
    Checksum {
        /// Checksum stored in the file.
        recorded: String,
        /// Checksum of the content as read.
        computed: String,
    },
    /// Trained on different features than this build computes.
    #[error("model artifact expects features {found:?}, this build computes {expected:?}")]
    Features {
        /// Feature names in the artifact.
        found: Vec<String>,
        /// Feature names of this build.
        expected: Vec<String>,
    },
    /// The trees are malformed (bad indices, cycles, non-finite values).
    #[error("model artifact has an invalid tree {tree}: {reason}")]
    Tree {
        /// Index of the offending tree.
        tree: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Quality on the held-out test window, with the keys `metrics.json` and MLflow use.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ModelMetrics {
    /// Area under the ROC curve.
    pub roc_auc: f64,
    /// Average precision (area under the precision-recall curve, step-wise).
    pub average_precision: f64,
    /// Card Precision@100 averaged over test days (handbook protocol).
    pub card_precision_at_100: f64,
    /// Transactions in the training window.
    pub train_rows: u64,
    /// Transactions in the test window after dropping known compromised cards.
    pub test_rows: u64,
    /// Wall time of the fit, seconds.
    pub train_seconds: f64,
}

/// Which data the model learned from and was tested on, so a registry entry can be reproduced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingWindow {
    /// First training day (`YYYY-MM-DD`).
    pub train_start: String,
    /// Training days.
    pub train_days: u32,
    /// Days skipped between training and test (label delay).
    pub delay_days: u32,
    /// Test days.
    pub test_days: u32,
    /// SHA-256 of the input file, hex.
    pub data_sha256: String,
}

/// One tree in flat form: node `i` is a leaf when `split_feature[i] < 0`.
///
/// Children always have larger indices than their parent, so walking a tree always terminates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeSpec {
    /// Feature index per node, or -1 for a leaf.
    pub split_feature: Vec<i32>,
    /// Go left when `value < split_value`.
    pub split_value: Vec<f64>,
    /// Left child per node (unused for leaves).
    pub left: Vec<u32>,
    /// Right child per node (unused for leaves).
    pub right: Vec<u32>,
    /// Child for a missing (NaN) value (unused for leaves).
    pub missing: Vec<u32>,
    /// Leaf value in log-odds (learning rate already applied).
    pub leaf_value: Vec<f64>,
}

/// A whole additive ensemble: `p = sigmoid(base_score + Σ leaf values)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleSpec {
    /// Starting log-odds.
    pub base_score: f64,
    /// The trees.
    pub trees: Vec<TreeSpec>,
}

impl EnsembleSpec {
    /// Content hash of the trees alone: the model's identity, independent of when it was written.
    pub fn content_sha256(&self) -> String {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(bytes))
    }
}

/// The file `fraudops train` writes and `serve` loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Layout version ([`ARTIFACT_FORMAT`]).
    pub format_version: u32,
    /// Content-derived version (`gbdt-` + 12 hex of the ensemble hash); equal models have equal versions.
    pub model_version: String,
    /// Feature names in input order; must equal this build's [`FEATURE_NAMES`].
    pub feature_names: Vec<String>,
    /// Training library and version, e.g. `forust-ml 0.5.0`.
    pub library: String,
    /// Hyper-parameters as given to the library.
    pub hyperparameters: BTreeMap<String, serde_json::Value>,
    /// Data window and source.
    pub training: TrainingWindow,
    /// Test-window quality.
    pub metrics: ModelMetrics,
    /// Probability at or above which a transaction is flagged.
    pub decision_threshold: f64,
    /// The trees.
    pub ensemble: EnsembleSpec,
    /// SHA-256 of this artifact serialized with an empty `checksum`, hex.
    pub checksum: String,
}

impl ModelArtifact {
    /// Builds an artifact and seals it: version from the trees, checksum over everything.
    pub fn seal(
        library: String,
        hyperparameters: BTreeMap<String, serde_json::Value>,
        training: TrainingWindow,
        metrics: ModelMetrics,
        decision_threshold: f64,
        ensemble: EnsembleSpec,
    ) -> Self {
        let model_version = format!("gbdt-{}", &ensemble.content_sha256()[..12]);
        let mut artifact = Self {
            format_version: ARTIFACT_FORMAT,
            model_version,
            feature_names: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            library,
            hyperparameters,
            training,
            metrics,
            decision_threshold,
            ensemble,
            checksum: String::new(),
        };
        artifact.checksum = artifact.compute_checksum();
        artifact
    }

    /// Parses artifact JSON without verifying it (see [`ModelArtifact::verify`]).
    pub fn from_json(json: &[u8]) -> Result<Self, ArtifactError> {
        Ok(serde_json::from_slice(json)?)
    }

    /// Compact JSON, as written to `model.json` (the trees dominate its size).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The checksum this artifact's content should carry.
    pub fn compute_checksum(&self) -> String {
        let unsealed = Self {
            checksum: String::new(),
            ..self.clone()
        };
        hex::encode(Sha256::digest(
            serde_json::to_vec(&unsealed).unwrap_or_default(),
        ))
    }

    /// Checks format, checksum and feature compatibility (tree shape is checked when compiling).
    pub fn verify(&self) -> Result<(), ArtifactError> {
        if self.format_version != ARTIFACT_FORMAT {
            return Err(ArtifactError::Format {
                found: self.format_version,
            });
        }
        let computed = self.compute_checksum();
        if computed != self.checksum {
            return Err(ArtifactError::Checksum {
                recorded: self.checksum.clone(),
                computed,
            });
        }
        if self
            .feature_names
            .iter()
            .map(String::as_str)
            .ne(FEATURE_NAMES)
        {
            return Err(ArtifactError::Features {
                found: self.feature_names.clone(),
                expected: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            });
        }
        Ok(())
    }
}
