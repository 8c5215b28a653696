//! The model artifact: one JSON file that says what it is, how it was made, how good it was, and proves
//! it arrived intact.

use std::collections::BTreeMap;

use fraudops_features::FEATURE_NAMES;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::reference::Reference;

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
    /// The drift reference does not fit the features (wrong count, unordered edges).
    #[error("model artifact has an invalid drift reference: {0}")]
    Reference(String),
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
    /// Score and feature distributions at training time, for drift (PSI) while serving. Absent in
    /// artifacts written before it existed: left out of the JSON when `None`, so their checksums (over the
    /// serialized content) still verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<Reference>,
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
            reference: None,
            ensemble,
            checksum: String::new(),
        };
        artifact.checksum = artifact.compute_checksum();
        artifact
    }

    /// The same artifact with a drift reference, resealed (the version, from the trees, is unchanged).
    pub fn with_reference(mut self, reference: Reference) -> Self {
        self.reference = Some(reference);
        self.checksum = self.compute_checksum();
        self
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
        if let Some(reference) = &self.reference {
            if reference.features.len() != self.feature_names.len() {
                return Err(ArtifactError::Reference(format!(
                    "{} feature histograms for {} features",
                    reference.features.len(),
                    self.feature_names.len()
                )));
            }
            let names = std::iter::once("score").chain(FEATURE_NAMES);
            let hists = std::iter::once(&reference.score).chain(&reference.features);
            if let Some((name, _)) = names.zip(hists).find(|(_, h)| !h.is_consistent()) {
                return Err(ArtifactError::Reference(format!(
                    "the histogram of {name} has unordered edges or bad shares"
                )));
            }
            if reference
                .time_of_week
                .as_ref()
                .is_some_and(|tow| !tow.fits(reference))
            {
                return Err(ArtifactError::Reference(
                    "the time-of-week counts do not match the histograms' bins".into(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Histogram, Reference};

    /// A one-leaf model, as any trainer of format 1 would write it.
    fn tiny() -> ModelArtifact {
        ModelArtifact::seal(
            "test 1.0".into(),
            BTreeMap::new(),
            TrainingWindow {
                train_start: "2018-07-25".into(),
                train_days: 7,
                delay_days: 7,
                test_days: 7,
                data_sha256: "sha".into(),
            },
            ModelMetrics {
                roc_auc: 0.5,
                average_precision: 0.5,
                card_precision_at_100: 0.5,
                train_rows: 1,
                test_rows: 1,
                train_seconds: 1.0,
            },
            0.5,
            EnsembleSpec {
                base_score: -2.0,
                trees: vec![TreeSpec {
                    split_feature: vec![-1],
                    split_value: vec![0.0],
                    left: vec![0],
                    right: vec![0],
                    missing: vec![0],
                    leaf_value: vec![0.25],
                }],
            },
        )
    }

    fn reference() -> Reference {
        let values: Vec<f64> = (0..100).map(f64::from).collect();
        Reference::fit(
            &values,
            "test window",
            &vec![1.0; 100 * FEATURE_NAMES.len()],
            FEATURE_NAMES.len(),
            "training window",
        )
    }

    #[test]
    fn artifacts_without_a_reference_keep_the_format_1_bytes_and_checksum() {
        let old = tiny();
        let json = old.to_json();
        assert!(!json.contains("reference"), "no key at all: {json}");
        // The checksum a format-1 trainer from before drift references computed for these bytes; if this
        // changes, every artifact already in a registry stops verifying.
        assert_eq!(
            old.checksum,
            "ab5445b92b4ef6736b313ada3cb55292d2a4990a65bac1a2fe2ca88f23b74531"
        );
        let loaded = ModelArtifact::from_json(json.as_bytes()).expect("parses");
        assert_eq!(loaded.reference, None);
        loaded.verify().expect("verifies");
    }

    #[test]
    fn a_reference_is_covered_by_the_checksum_and_leaves_the_version_alone() {
        let with = tiny().with_reference(reference());
        assert_eq!(with.model_version, tiny().model_version);
        with.verify().expect("verifies");
        let back = ModelArtifact::from_json(with.to_json().as_bytes()).expect("parses");
        assert_eq!(back, with);

        let mut edited = with.clone();
        if let Some(r) = edited.reference.as_mut() {
            r.score.shares[0] += 0.1;
        }
        assert!(matches!(
            edited.verify(),
            Err(ArtifactError::Checksum { .. })
        ));

        let mut short = with.clone();
        if let Some(r) = short.reference.as_mut() {
            r.features.pop();
        }
        short.checksum = short.compute_checksum();
        assert!(matches!(short.verify(), Err(ArtifactError::Reference(_))));

        let mut unordered = with;
        if let Some(r) = unordered.reference.as_mut() {
            r.score = Histogram {
                edges: vec![2.0, 1.0],
                shares: vec![0.5, 0.25, 0.25, 0.0],
                rows: 4,
            };
        }
        unordered.checksum = unordered.compute_checksum();
        assert!(matches!(
            unordered.verify(),
            Err(ArtifactError::Reference(_))
        ));
    }
}
