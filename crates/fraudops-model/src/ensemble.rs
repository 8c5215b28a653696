//! The compiled ensemble: every tree's nodes in one contiguous array, walked without allocation.

use fraudops_features::{FeatureVector, N_FEATURES};

use crate::artifact::{ArtifactError, EnsembleSpec, TreeSpec};

/// Marks a leaf in [`Node::feature`].
const LEAF: u32 = u32::MAX;

/// One node, 24 bytes: a split (`feature < N_FEATURES`) or a leaf (`feature == LEAF`, value in `value`).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Split threshold, or the leaf's log-odds contribution.
    value: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
}

/// A verified tree ensemble ready to score; built only through [`Ensemble::compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    base_score: f64,
}

impl Ensemble {
    /// Checks every index and value, then lays the trees out flat. Invalid trees are refused, so scoring
    /// can never index out of bounds or loop.
    pub fn compile(spec: &EnsembleSpec) -> Result<Self, ArtifactError> {
        if !spec.base_score.is_finite() {
            return Err(tree_error(0, "base score is not finite".into()));
        }
        let mut nodes = Vec::new();
        let mut roots = Vec::with_capacity(spec.trees.len());
        for (t, tree) in spec.trees.iter().enumerate() {
            let offset =
                u32::try_from(nodes.len()).map_err(|_| tree_error(t, "too many nodes".into()))?;
            roots.push(offset);
            compile_tree(t, tree, offset, &mut nodes)?;
        }
        Ok(Self {
            nodes,
            roots,
            base_score: spec.base_score,
        })
    }

    /// Sum of the base score and every tree's leaf value: the fraud log-odds.
    #[inline]
    pub fn log_odds(&self, features: &FeatureVector) -> f64 {
        let mut sum = self.base_score;
        for &root in &self.roots {
            let mut node = &self.nodes[root as usize];
            while node.feature != LEAF {
                let x = features[node.feature as usize];
                let next = if x.is_nan() {
                    node.missing
                } else if x < node.value {
                    node.left
                } else {
                    node.right
                };
                node = &self.nodes[next as usize];
            }
            sum += node.value;
        }
        sum
    }

    /// Fraud probability, the logistic of [`Ensemble::log_odds`].
    #[inline]
    pub fn probability(&self, features: &FeatureVector) -> f64 {
        1.0 / (1.0 + (-self.log_odds(features)).exp())
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.roots.len()
    }

    /// Number of nodes over all trees.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }
}

fn tree_error(tree: usize, reason: String) -> ArtifactError {
    ArtifactError::Tree { tree, reason }
}

fn compile_tree(
    t: usize,
    tree: &TreeSpec,
    offset: u32,
    nodes: &mut Vec<Node>,
) -> Result<(), ArtifactError> {
    let n = tree.split_feature.len();
    if n == 0 {
        return Err(tree_error(t, "tree has no nodes".into()));
    }
    let lengths = [
        tree.split_value.len(),
        tree.left.len(),
        tree.right.len(),
        tree.missing.len(),
        tree.leaf_value.len(),
    ];
    if lengths.iter().any(|&len| len != n) {
        return Err(tree_error(
            t,
            format!("node arrays differ in length: {n} vs {lengths:?}"),
        ));
    }
    for i in 0..n {
        let node = if tree.split_feature[i] < 0 {
            let value = tree.leaf_value[i];
            if !value.is_finite() {
                return Err(tree_error(t, format!("leaf {i} value is not finite")));
            }
            Node {
                value,
                feature: LEAF,
                left: 0,
                right: 0,
                missing: 0,
            }
        } else {
            let feature = tree.split_feature[i] as usize;
            if feature >= N_FEATURES {
                return Err(tree_error(
                    t,
                    format!("node {i} splits on feature {feature}, only {N_FEATURES} exist"),
                ));
            }
            let threshold = tree.split_value[i];
            if threshold.is_nan() {
                return Err(tree_error(t, format!("node {i} threshold is NaN")));
            }
            let child = |c: u32, which: &str| -> Result<u32, ArtifactError> {
                let c_idx = c as usize;
                if c_idx <= i || c_idx >= n {
                    return Err(tree_error(
                        t,
                        format!("node {i} {which} child {c} is not a later node of the tree"),
                    ));
                }
                Ok(offset + c)
            };
            Node {
                value: threshold,
                feature: feature as u32,
                left: child(tree.left[i], "left")?,
                right: child(tree.right[i], "right")?,
                missing: child(tree.missing[i], "missing")?,
            }
        };
        nodes.push(node);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stump on TX_AMOUNT: amount < 100 → -1, else +1, missing → +0.5.
    fn stump() -> TreeSpec {
        TreeSpec {
            split_feature: vec![0, -1, -1, -1],
            split_value: vec![100.0, 0.0, 0.0, 0.0],
            left: vec![1, 0, 0, 0],
            right: vec![2, 0, 0, 0],
            missing: vec![3, 0, 0, 0],
            leaf_value: vec![0.0, -1.0, 1.0, 0.5],
        }
    }

    #[test]
    fn walks_left_right_and_missing_branches() {
        let e = Ensemble::compile(&EnsembleSpec {
            base_score: 0.25,
            trees: vec![stump(), stump()],
        })
        .unwrap();
        let mut x = [0.0; N_FEATURES];
        x[0] = 99.99;
        assert_eq!(e.log_odds(&x), 0.25 - 2.0);
        x[0] = 100.0;
        assert_eq!(e.log_odds(&x), 0.25 + 2.0);
        x[0] = f64::NAN;
        assert_eq!(e.log_odds(&x), 0.25 + 1.0);
        assert!((e.probability(&x) - 1.0 / (1.0 + (-1.25f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn refuses_trees_that_could_loop_or_overflow() {
        let mut cyclic = stump();
        cyclic.left[0] = 0;
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: 0.0,
                trees: vec![cyclic]
            })
            .is_err()
        );
        let mut out_of_range = stump();
        out_of_range.missing[0] = 9;
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: 0.0,
                trees: vec![out_of_range]
            })
            .is_err()
        );
        let mut bad_feature = stump();
        bad_feature.split_feature[0] = N_FEATURES as i32;
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: 0.0,
                trees: vec![bad_feature]
            })
            .is_err()
        );
        let mut short = stump();
        short.leaf_value.pop();
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: 0.0,
                trees: vec![short]
            })
            .is_err()
        );
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: f64::INFINITY,
                trees: vec![stump()]
            })
            .is_err()
        );
    }
}
