//! The compiled ensemble: every tree's nodes in one contiguous array, walked without allocation.

use fraudops_features::{FeatureVector, N_FEATURES};

use crate::artifact::{ArtifactError, EnsembleSpec, TreeSpec};

/// Trees walked side by side: their node loads are independent, so the CPU overlaps their cache misses
/// instead of waiting for one tree's chain of loads at a time.
const LANES: usize = 8;

/// One node, 24 bytes. A split reads `feature`; a leaf points all three children at itself (and reads
/// feature 0), so a walk can take a fixed number of branch-free steps and rest on its leaf.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Node {
    /// Split threshold, or the leaf's log-odds contribution.
    value: f64,
    feature: u32,
    left: u32,
    right: u32,
    missing: u32,
}

impl Node {
    /// The next node for `features`: `missing` for NaN, else `left` below the threshold, else `right`.
    #[inline(always)]
    fn next(&self, features: &FeatureVector) -> u32 {
        let x = features[self.feature as usize];
        let below = if x < self.value {
            self.left
        } else {
            self.right
        };
        if x.is_nan() { self.missing } else { below }
    }
}

/// A verified tree ensemble ready to score; built only through [`Ensemble::compile`].
#[derive(Debug, Clone, PartialEq)]
pub struct Ensemble {
    nodes: Vec<Node>,
    roots: Vec<u32>,
    base_score: f64,
    /// The longest root-to-leaf path: steps that bring every walk to its leaf.
    max_depth: usize,
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
        let mut max_depth = 0;
        for (t, tree) in spec.trees.iter().enumerate() {
            let offset =
                u32::try_from(nodes.len()).map_err(|_| tree_error(t, "too many nodes".into()))?;
            roots.push(offset);
            max_depth = max_depth.max(compile_tree(t, tree, offset, &mut nodes)?);
        }
        Ok(Self {
            nodes,
            roots,
            base_score: spec.base_score,
            max_depth,
        })
    }

    /// Sum of the base score and every tree's leaf value: the fraud log-odds.
    ///
    /// Trees are walked [`LANES`] at a time, `max_depth` branch-free steps each; leaf values are still
    /// added in tree order, so the sum is bit-identical to walking one tree after another.
    #[inline]
    pub fn log_odds(&self, features: &FeatureVector) -> f64 {
        let mut sum = self.base_score;
        let mut groups = self.roots.chunks_exact(LANES);
        for group in &mut groups {
            let mut at = [0u32; LANES];
            at.copy_from_slice(group);
            for _ in 0..self.max_depth {
                for a in &mut at {
                    *a = self.nodes[*a as usize].next(features);
                }
            }
            for a in at {
                sum += self.nodes[a as usize].value;
            }
        }
        for &root in groups.remainder() {
            let mut a = root;
            for _ in 0..self.max_depth {
                a = self.nodes[a as usize].next(features);
            }
            sum += self.nodes[a as usize].value;
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

/// Appends one verified tree at `offset`; returns its depth (edges on the longest root-to-leaf path).
fn compile_tree(
    t: usize,
    tree: &TreeSpec,
    offset: u32,
    nodes: &mut Vec<Node>,
) -> Result<usize, ArtifactError> {
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
            let me = offset + i as u32;
            Node {
                value,
                feature: 0,
                left: me,
                right: me,
                missing: me,
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
    // Children come after their parent (checked above), so one backward pass finds every depth.
    let tree_nodes = &nodes[offset as usize..];
    let mut depth = vec![0usize; n];
    for i in (0..n).rev() {
        let node = &tree_nodes[i];
        let me = offset + i as u32;
        if node.left != me {
            let d = |c: u32| depth[(c - offset) as usize];
            depth[i] = 1 + d(node.left).max(d(node.right)).max(d(node.missing));
        }
    }
    Ok(depth[0])
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
