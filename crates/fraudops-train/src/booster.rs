//! Gradient-boosted trees via `forust-ml`, converted to the served [`EnsembleSpec`].
//!
//! forust-ml was chosen over gbdt-rs (see ARCHITECTURE.md and `examples/compare_boosters.rs`): native
//! missing-value handling, histogram splits, deterministic for a seed, and public tree nodes we can
//! export, so serving never links the training library.

use std::collections::BTreeMap;

use forust_ml::Matrix;
use forust_ml::gradientbooster::GradientBooster;
use forust_ml::objective::ObjectiveType;
use fraudops_model::artifact::{EnsembleSpec, TreeSpec};

/// Booster hyper-parameters; each is a `fraudops train` flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoosterParams {
    /// Number of trees.
    pub iterations: usize,
    /// Shrinkage applied to every tree.
    pub learning_rate: f32,
    /// Maximum tree depth.
    pub max_depth: usize,
    /// L2 regularisation on leaf weights.
    pub l2: f32,
    /// Minimum hessian sum in a leaf.
    pub min_leaf_weight: f32,
    /// Histogram bins per feature.
    pub nbins: u16,
    /// Row subsample ratio per tree (1.0 = all rows).
    pub subsample: f32,
    /// Random seed (sampling); equal seeds give equal models.
    pub seed: u64,
}

impl Default for BoosterParams {
    fn default() -> Self {
        Self {
            iterations: 200,
            learning_rate: 0.05,
            max_depth: 5,
            l2: 1.0,
            min_leaf_weight: 1.0,
            nbins: 256,
            subsample: 0.8,
            seed: 42,
        }
    }
}

impl BoosterParams {
    /// The parameters as recorded in the artifact and in MLflow.
    pub fn to_map(&self) -> BTreeMap<String, serde_json::Value> {
        BTreeMap::from([
            ("iterations".to_owned(), self.iterations.into()),
            (
                "learning_rate".to_owned(),
                f64::from(self.learning_rate).into(),
            ),
            ("max_depth".to_owned(), self.max_depth.into()),
            ("l2".to_owned(), f64::from(self.l2).into()),
            (
                "min_leaf_weight".to_owned(),
                f64::from(self.min_leaf_weight).into(),
            ),
            ("nbins".to_owned(), self.nbins.into()),
            ("subsample".to_owned(), f64::from(self.subsample).into()),
            ("seed".to_owned(), self.seed.into()),
        ])
    }
}

/// The training library and its version, recorded in every artifact.
pub const LIBRARY: &str = "forust-ml 0.5.0";

/// Why a fit failed.
#[derive(Debug, thiserror::Error)]
pub enum BoosterError {
    /// The library refused the data or parameters.
    #[error("gradient boosting failed: {0}")]
    Library(String),
}

/// Fits a log-loss booster on row-major `features` (`cols` wide) and returns the served form of it.
pub fn fit(
    features_row_major: &[f64],
    cols: usize,
    labels: &[bool],
    params: &BoosterParams,
) -> Result<EnsembleSpec, BoosterError> {
    Ok(export(&fit_library(
        features_row_major,
        cols,
        labels,
        params,
    )?))
}

/// forust reads column-major data.
fn to_column_major(row_major: &[f64], cols: usize) -> Vec<f64> {
    let rows = row_major.len() / cols;
    let mut column_major = vec![0.0; rows * cols];
    for (r, row) in row_major.chunks_exact(cols).enumerate() {
        for (c, &v) in row.iter().enumerate() {
            column_major[c * rows + r] = v;
        }
    }
    column_major
}

fn fit_library(
    features_row_major: &[f64],
    cols: usize,
    labels: &[bool],
    params: &BoosterParams,
) -> Result<GradientBooster, BoosterError> {
    let rows = labels.len();
    let column_major = to_column_major(features_row_major, cols);
    let matrix = Matrix::new(&column_major, rows, cols);
    let y: Vec<f64> = labels.iter().map(|&l| f64::from(u8::from(l))).collect();
    let weights = vec![1.0; rows];
    let mut booster = GradientBooster::default()
        .set_objective_type(ObjectiveType::LogLoss)
        .set_iterations(params.iterations)
        .set_learning_rate(params.learning_rate)
        .set_max_depth(params.max_depth)
        .set_l2(params.l2)
        .set_min_leaf_weight(params.min_leaf_weight)
        .set_nbins(params.nbins)
        .set_subsample(params.subsample)
        .set_seed(params.seed)
        .set_parallel(true);
    if params.subsample < 1.0 {
        booster = booster.set_sample_method(forust_ml::sampler::SampleMethod::Random);
    }
    booster
        .fit(&matrix, &y, &weights, None)
        .map_err(|e| BoosterError::Library(e.to_string()))?;
    Ok(booster)
}

/// Fits like [`fit`] and scores `probe` with the library itself (log-odds); tests use it to prove the
/// exported ensemble scores exactly as the library does.
pub fn fit_and_predict_with_library(
    features_row_major: &[f64],
    cols: usize,
    labels: &[bool],
    params: &BoosterParams,
    probe_row_major: &[f64],
) -> Result<(EnsembleSpec, Vec<f64>), BoosterError> {
    let booster = fit_library(features_row_major, cols, labels, params)?;
    let probe = to_column_major(probe_row_major, cols);
    let predictions = booster.predict(
        &Matrix::new(&probe, probe_row_major.len() / cols, cols),
        false,
    );
    Ok((export(&booster), predictions))
}

/// Converts forust's trees node for node (same split rule: `x < split_value` goes left, NaN goes to the
/// missing child), so served scores equal the library's own predictions.
fn export(booster: &GradientBooster) -> EnsembleSpec {
    let trees = booster
        .trees
        .iter()
        .map(|tree| {
            let n = tree.nodes.len();
            let mut spec = TreeSpec {
                split_feature: Vec::with_capacity(n),
                split_value: Vec::with_capacity(n),
                left: Vec::with_capacity(n),
                right: Vec::with_capacity(n),
                missing: Vec::with_capacity(n),
                leaf_value: Vec::with_capacity(n),
            };
            for node in &tree.nodes {
                let leaf = node.is_leaf;
                spec.split_feature
                    .push(if leaf { -1 } else { node.split_feature as i32 });
                spec.split_value
                    .push(if leaf { 0.0 } else { node.split_value });
                spec.left
                    .push(if leaf { 0 } else { node.left_child as u32 });
                spec.right
                    .push(if leaf { 0 } else { node.right_child as u32 });
                spec.missing
                    .push(if leaf { 0 } else { node.missing_node as u32 });
                spec.leaf_value.push(if leaf {
                    f64::from(node.weight_value)
                } else {
                    0.0
                });
            }
            spec
        })
        .collect();
    EnsembleSpec {
        base_score: booster.base_score,
        trees,
    }
}
