//! The compiled ensemble: every tree padded to one complete binary tree, walked without allocation.
//!
//! A complete tree needs no child pointers: node `i`'s children are `2i` and `2i + 1` (root at 1), so a step
//! is one node load, one feature load and arithmetic. Shallow leaves are pushed down to the common depth
//! (their value repeated under padding splits), so every walk takes exactly `depth` steps, without
//! branches. A three-way split (a missing-value child of its own) becomes two levels: "is it missing?",
//! then the threshold test.

use fraudops_features::{FeatureVector, N_FEATURES};

use crate::artifact::{ArtifactError, EnsembleSpec, TreeSpec};

/// Trees walked side by side: their node loads are independent, so the CPU overlaps their latencies
/// instead of waiting for one tree's chain of loads at a time.
const LANES: usize = 8;

/// The deepest tree served (after three-way splits become two levels): a complete tree of this depth
/// takes `2^depth × 17` bytes (threshold, feature byte, leaf), 68 KiB per tree at 12.
pub const MAX_TREE_DEPTH: usize = 12;

/// Compiled models larger than this are refused rather than allocated (a corrupt or hostile artifact
/// must not take the server's memory).
const MAX_COMPILED_BYTES: usize = 256 << 20;

/// Bytes per slot of a compiled tree: a threshold, a feature byte and a leaf value.
const BYTES_PER_SLOT: usize = 8 + 1 + 8;

/// Set in a split's feature byte when a missing (NaN) value goes right.
const MISSING_RIGHT: u8 = 0x80;
const _: () = assert!(
    N_FEATURES < MISSING_RIGHT as usize,
    "feature indices fit below the flag"
);

/// The feature row padded to a power of two, so a masked index needs no bounds check (and drops
/// [`MISSING_RIGHT`] on the way).
const FEATURE_SLOTS: usize = N_FEATURES.next_power_of_two();
type PaddedFeatures = [f64; FEATURE_SLOTS];

/// One split of a complete tree, as laid out: 9 bytes, kept in two arrays.
#[derive(Debug, Clone, Copy)]
struct Split {
    /// Go right when `x >= threshold` (never, for NaN thresholds: a pure missing-value test).
    threshold: f64,
    /// Feature index, plus [`MISSING_RIGHT`].
    feature: u8,
}

/// 1 to go right, 0 to go left. `MAY_BE_MISSING` is false for rows without NaN: one comparison then
/// decides, and the missing-value rule costs nothing on the common path.
#[inline(always)]
fn go_right<const MAY_BE_MISSING: bool>(
    threshold: f64,
    feature: u8,
    features: &PaddedFeatures,
) -> usize {
    let x = features[usize::from(feature) & (FEATURE_SLOTS - 1)];
    let right = x >= threshold;
    if MAY_BE_MISSING {
        let missing_right = feature & MISSING_RIGHT != 0;
        usize::from(right | (x.is_nan() & missing_right))
    } else {
        usize::from(right)
    }
}

/// A verified tree ensemble ready to score; built only through [`Ensemble::compile`].
#[derive(Debug, Clone)]
pub struct Ensemble {
    /// Per group of [`LANES`] trees, `2^depth` slots of `LANES` split thresholds: slot `i` holds each
    /// tree's split at heap position `i` (slot 0 unused), so one base address and the lane reach every
    /// tree of a group.
    thresholds: Vec<f64>,
    /// The splits' feature bytes, laid out as `thresholds`.
    split_features: Vec<u8>,
    /// Per group, `2^depth` slots of `LANES` leaf values, left to right.
    leaves: Vec<f64>,
    base_score: f64,
    /// Depth of every (padded) tree; 0 for an ensemble of single leaves.
    depth: usize,
    n_trees: usize,
    /// Nodes in the artifact's trees (before padding), for diagnostics.
    n_nodes: usize,
}

impl Ensemble {
    /// Checks every index and value, then lays the trees out as complete trees. Invalid trees are
    /// refused, so scoring can never index out of bounds or loop.
    pub fn compile(spec: &EnsembleSpec) -> Result<Self, ArtifactError> {
        if !spec.base_score.is_finite() {
            return Err(tree_error(0, "base score is not finite".into()));
        }
        let mut depth = 0;
        for (t, tree) in spec.trees.iter().enumerate() {
            depth = depth.max(verify_tree(t, tree)?);
        }
        let n_trees = spec.trees.len();
        let width = 1usize << depth;
        // The last group is filled up with single-leaf trees that are walked but never added.
        let n_groups = n_trees.div_ceil(LANES);
        let bytes = (n_groups * LANES)
            .saturating_mul(width)
            .saturating_mul(BYTES_PER_SLOT);
        if bytes > MAX_COMPILED_BYTES {
            return Err(tree_error(
                0,
                format!(
                    "{} trees of depth {depth} would take {} MiB compiled, over the {} MiB limit",
                    n_trees,
                    bytes >> 20,
                    MAX_COMPILED_BYTES >> 20
                ),
            ));
        }
        let group = width * LANES;
        let mut thresholds = vec![0.0; n_groups * group];
        let mut split_features = vec![0u8; n_groups * group];
        let mut leaves = vec![0.0; n_groups * group];
        for (t, tree) in spec.trees.iter().enumerate() {
            let (g, lane) = (t / LANES, t % LANES);
            let mut layout = Layout {
                tree,
                thresholds: &mut thresholds[g * group..(g + 1) * group],
                split_features: &mut split_features[g * group..(g + 1) * group],
                leaves: &mut leaves[g * group..(g + 1) * group],
                lane,
                depth,
            };
            layout.place(Virtual::Node(0), 1, 0);
        }
        Ok(Self {
            thresholds,
            split_features,
            leaves,
            base_score: spec.base_score,
            depth,
            n_trees,
            n_nodes: spec.trees.iter().map(|t| t.split_feature.len()).sum(),
        })
    }

    /// Sum of the base score and every tree's leaf value: the fraud log-odds.
    ///
    /// Trees are walked [`LANES`] at a time, `depth` branch-free steps each; leaf values are still added
    /// in tree order, so the sum is bit-identical to walking one tree after another.
    #[inline]
    pub fn log_odds(&self, features: &FeatureVector) -> f64 {
        let mut padded = [0.0; FEATURE_SLOTS];
        padded[..N_FEATURES].copy_from_slice(features);
        if features.iter().any(|x| x.is_nan()) {
            self.sum_trees::<true>(&padded)
        } else {
            self.sum_trees::<false>(&padded)
        }
    }

    #[inline(always)]
    fn sum_trees<const MAY_BE_MISSING: bool>(&self, features: &PaddedFeatures) -> f64 {
        let group = LANES << self.depth;
        let full_groups = self.n_trees / LANES;
        let mut groups = self
            .thresholds
            .chunks_exact(group)
            .zip(self.split_features.chunks_exact(group))
            .zip(self.leaves.chunks_exact(group));
        let mut sum = self.base_score;
        for ((thresholds, split_features), leaves) in (&mut groups).take(full_groups) {
            let at = self.walk_group::<MAY_BE_MISSING>(thresholds, split_features, features);
            for (lane, a) in at.into_iter().enumerate() {
                sum += leaves[self.leaf_slot(a, lane, group)];
            }
        }
        // The last group's filler trees are walked but not added.
        if let Some(((thresholds, split_features), leaves)) = groups.next() {
            let at = self.walk_group::<MAY_BE_MISSING>(thresholds, split_features, features);
            for (lane, a) in at.into_iter().enumerate().take(self.n_trees % LANES) {
                sum += leaves[self.leaf_slot(a, lane, group)];
            }
        }
        sum
    }

    /// Walks a group's trees to their leaves: heap positions in `2^depth..2^(depth + 1)`.
    #[inline(always)]
    fn walk_group<const MAY_BE_MISSING: bool>(
        &self,
        thresholds: &[f64],
        split_features: &[u8],
        features: &PaddedFeatures,
    ) -> [usize; LANES] {
        // Both slices are as long, a power of two, and every position stays below it: the mask changes
        // no index, but lets the compiler drop the bounds checks.
        let mask = thresholds.len() - 1;
        let split_features = &split_features[..thresholds.len()];
        let mut at = [1usize; LANES];
        for _ in 0..self.depth {
            for (lane, a) in at.iter_mut().enumerate() {
                let i = (*a * LANES + lane) & mask;
                *a =
                    2 * *a + go_right::<MAY_BE_MISSING>(thresholds[i], split_features[i], features);
            }
        }
        at
    }

    /// Index in a group's `leaves` of lane `lane`'s leaf at heap position `at`.
    #[inline(always)]
    fn leaf_slot(&self, at: usize, lane: usize, group: usize) -> usize {
        (((at - (1 << self.depth)) * LANES) + lane) & (group - 1)
    }

    /// Fraud probability, the logistic of [`Ensemble::log_odds`].
    #[inline]
    pub fn probability(&self, features: &FeatureVector) -> f64 {
        1.0 / (1.0 + (-self.log_odds(features)).exp())
    }

    /// Number of trees.
    pub fn n_trees(&self) -> usize {
        self.n_trees
    }

    /// Number of nodes over all trees, as the artifact has them (before padding).
    pub fn n_nodes(&self) -> usize {
        self.n_nodes
    }

    /// Depth every tree is padded to: the steps of one walk.
    pub fn depth(&self) -> usize {
        self.depth
    }
}

fn tree_error(tree: usize, reason: String) -> ArtifactError {
    ArtifactError::Tree { tree, reason }
}

/// Checks one tree's arrays, indices, features and values; returns its depth (splits on the longest path
/// to a leaf, three-way splits counting two).
fn verify_tree(t: usize, tree: &TreeSpec) -> Result<usize, ArtifactError> {
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
        if tree.split_feature[i] < 0 {
            if !tree.leaf_value[i].is_finite() {
                return Err(tree_error(t, format!("leaf {i} value is not finite")));
            }
            continue;
        }
        let feature = tree.split_feature[i] as usize;
        if feature >= N_FEATURES {
            return Err(tree_error(
                t,
                format!("node {i} splits on feature {feature}, only {N_FEATURES} exist"),
            ));
        }
        if tree.split_value[i].is_nan() {
            return Err(tree_error(t, format!("node {i} threshold is NaN")));
        }
        for (c, which) in [
            (tree.left[i], "left"),
            (tree.right[i], "right"),
            (tree.missing[i], "missing"),
        ] {
            let c = c as usize;
            if c <= i || c >= n {
                return Err(tree_error(
                    t,
                    format!("node {i} {which} child {c} is not a later node of the tree"),
                ));
            }
        }
    }
    // Children come after their parent (checked above), so one backward pass finds every depth.
    let mut below = vec![0usize; n];
    for i in (0..n).rev() {
        if tree.split_feature[i] < 0 {
            continue;
        }
        let d = |c: u32| below[c as usize];
        let (l, r, m) = (tree.left[i], tree.right[i], tree.missing[i]);
        below[i] = if m == l || m == r {
            1 + d(l).max(d(r))
        } else {
            1 + (1 + d(l).max(d(r))).max(d(m))
        };
        if below[i] > MAX_TREE_DEPTH {
            return Err(tree_error(
                t,
                format!(
                    "node {i} is {} levels deep (missing-value splits count two), over the limit of {MAX_TREE_DEPTH}",
                    below[i]
                ),
            ));
        }
    }
    Ok(below[0])
}

/// A node of the binary tree being laid out: an artifact node, or the threshold half of a three-way split.
#[derive(Debug, Clone, Copy)]
enum Virtual {
    Node(usize),
    ThresholdOf(usize),
}

/// Writes one verified tree into its lane of a group's complete-tree slots.
struct Layout<'a> {
    tree: &'a TreeSpec,
    thresholds: &'a mut [f64],
    split_features: &'a mut [u8],
    leaves: &'a mut [f64],
    lane: usize,
    depth: usize,
}

impl Layout<'_> {
    /// Places `node` at heap position `slot` on `level`; recursion is bounded by [`MAX_TREE_DEPTH`].
    fn place(&mut self, node: Virtual, slot: usize, level: usize) {
        let tree = self.tree;
        let (split, left, right) = match node {
            Virtual::Node(i) if tree.split_feature[i] < 0 => {
                // A leaf above the common depth: its value fills every leaf slot beneath it, so whatever
                // the padding splits decide, the walk ends on it.
                let span = 1usize << (self.depth - level);
                let first = slot * span - (1usize << self.depth);
                for leaf in first..first + span {
                    self.leaves[leaf * LANES + self.lane] = tree.leaf_value[i];
                }
                return;
            }
            Virtual::Node(i) => {
                let (l, r, m) = (tree.left[i], tree.right[i], tree.missing[i]);
                let feature = tree.split_feature[i] as u8;
                if m == l || m == r {
                    let missing = if m == r && m != l { MISSING_RIGHT } else { 0 };
                    let split = Split {
                        threshold: tree.split_value[i],
                        feature: feature | missing,
                    };
                    (split, Virtual::Node(l as usize), Virtual::Node(r as usize))
                } else {
                    // "Is it missing?": `x >= NaN` never holds, so only a missing value goes right.
                    let split = Split {
                        threshold: f64::NAN,
                        feature: feature | MISSING_RIGHT,
                    };
                    (split, Virtual::ThresholdOf(i), Virtual::Node(m as usize))
                }
            }
            Virtual::ThresholdOf(i) => {
                let split = Split {
                    threshold: tree.split_value[i],
                    feature: tree.split_feature[i] as u8,
                };
                let (l, r) = (tree.left[i] as usize, tree.right[i] as usize);
                (split, Virtual::Node(l), Virtual::Node(r))
            }
        };
        self.thresholds[slot * LANES + self.lane] = split.threshold;
        self.split_features[slot * LANES + self.lane] = split.feature;
        self.place(left, 2 * slot, level + 1);
        self.place(right, 2 * slot + 1, level + 1);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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

    /// One node as `(split_feature, split_value, left, right, missing, leaf_value)`.
    type NodeRow = (i32, f64, u32, u32, u32, f64);

    /// A leaf node worth `value`.
    fn leaf_of(value: f64) -> NodeRow {
        (-1, 0.0, 0, 0, 0, value)
    }

    /// A tree from its nodes in order, one row per node.
    fn tree_of(nodes: impl IntoIterator<Item = NodeRow>) -> TreeSpec {
        let mut t = TreeSpec {
            split_feature: vec![],
            split_value: vec![],
            left: vec![],
            right: vec![],
            missing: vec![],
            leaf_value: vec![],
        };
        for (f, v, l, r, m, leaf) in nodes {
            t.split_feature.push(f);
            t.split_value.push(v);
            t.left.push(l);
            t.right.push(r);
            t.missing.push(m);
            t.leaf_value.push(leaf);
        }
        t
    }

    fn ensemble(trees: Vec<TreeSpec>) -> Result<Ensemble, ArtifactError> {
        Ensemble::compile(&EnsembleSpec {
            base_score: 0.0,
            trees,
        })
    }

    /// The artifact's own semantics, walked node by node: what the compiled layout must reproduce.
    fn reference_log_odds(spec: &EnsembleSpec, x: &FeatureVector) -> f64 {
        let mut sum = spec.base_score;
        for tree in &spec.trees {
            let mut i = 0;
            while tree.split_feature[i] >= 0 {
                let v = x[tree.split_feature[i] as usize];
                i = if v.is_nan() {
                    tree.missing[i]
                } else if v < tree.split_value[i] {
                    tree.left[i]
                } else {
                    tree.right[i]
                } as usize;
            }
            sum += tree.leaf_value[i];
        }
        sum
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
        // The stump's own missing child makes it a two-level tree: "missing?", then the threshold.
        assert_eq!(e.depth(), 2);
    }

    #[test]
    fn missing_values_follow_the_side_the_split_sends_them() {
        let mut to_left = stump();
        to_left.missing[0] = 1;
        let mut to_right = stump();
        to_right.missing[0] = 2;
        let e = ensemble(vec![to_left, to_right]).unwrap();
        assert_eq!(e.depth(), 1, "two-way splits stay one level");
        let mut x = [0.0; N_FEATURES];
        x[0] = f64::NAN;
        assert_eq!(e.log_odds(&x), -1.0 + 1.0);
        x[0] = f64::INFINITY;
        assert_eq!(e.log_odds(&x), 2.0);
        x[0] = f64::NEG_INFINITY;
        assert_eq!(e.log_odds(&x), -2.0);
    }

    #[test]
    fn refuses_trees_that_could_loop_or_overflow() {
        let mut cyclic = stump();
        cyclic.left[0] = 0;
        assert!(ensemble(vec![cyclic]).is_err());
        let mut out_of_range = stump();
        out_of_range.missing[0] = 9;
        assert!(ensemble(vec![out_of_range]).is_err());
        let mut bad_feature = stump();
        bad_feature.split_feature[0] = N_FEATURES as i32;
        assert!(ensemble(vec![bad_feature]).is_err());
        let mut short = stump();
        short.leaf_value.pop();
        assert!(ensemble(vec![short]).is_err());
        assert!(
            Ensemble::compile(&EnsembleSpec {
                base_score: f64::INFINITY,
                trees: vec![stump()]
            })
            .is_err()
        );
    }

    /// A chain of `depth` splits on feature 0: split `k` sends values below `k` to a leaf worth `k` and
    /// the rest one level deeper, down to a last leaf worth `depth`.
    fn chain(depth: usize) -> TreeSpec {
        // Node 2k is the k-th split, 2k+1 its left leaf; the last node is the deepest leaf.
        let nodes = (0..depth).flat_map(|k| {
            let split = (2 * k) as u32;
            [
                (0, k as f64, split + 1, split + 2, split + 2, 0.0),
                leaf_of(k as f64),
            ]
        });
        tree_of(nodes.chain([leaf_of(depth as f64)]))
    }

    #[test]
    fn shallow_leaves_are_padded_down_to_the_deepest_one() {
        let e = ensemble(vec![chain(MAX_TREE_DEPTH), stump()]).unwrap();
        assert_eq!(e.depth(), MAX_TREE_DEPTH);
        let mut x = [0.0; N_FEATURES];
        for (value, expected_chain_leaf) in [(-5.0, 0.0), (0.5, 1.0), (7.2, 8.0), (1e9, 12.0)] {
            x[0] = value;
            let stump_leaf = if value < 100.0 { -1.0 } else { 1.0 };
            assert_eq!(
                e.log_odds(&x),
                expected_chain_leaf + stump_leaf,
                "x = {value}"
            );
        }
    }

    #[test]
    fn refuses_trees_deeper_than_the_served_limit() {
        let err = ensemble(vec![chain(MAX_TREE_DEPTH + 1)]).unwrap_err();
        assert!(err.to_string().contains("over the limit of 12"), "{err}");
    }

    #[test]
    fn refuses_ensembles_too_large_to_compile() {
        let trees = vec![chain(MAX_TREE_DEPTH); 5_000];
        let err = ensemble(trees).unwrap_err();
        assert!(err.to_string().contains("MiB limit"), "{err}");
    }

    /// Random trees grown from random split decisions, three-way splits included.
    fn random_tree() -> impl Strategy<Value = TreeSpec> {
        proptest::collection::vec(
            (0..N_FEATURES as i32, -3.0..3.0f64, 0..4u8, -1.0..1.0f64),
            1..40,
        )
        .prop_map(|decisions| {
            // Breadth-first growth: each decision turns the next open node into a split (with its
            // missing child left, right or its own) or a leaf; at most 5 levels.
            let mut open = vec![(0usize, 0usize)];
            let mut n = 1usize;
            let mut nodes: Vec<NodeRow> = vec![leaf_of(0.0)];
            for (next, (feature, threshold, missing, leaf)) in decisions.into_iter().enumerate() {
                let Some(&(node, level)) = open.get(next) else {
                    break;
                };
                nodes[node].5 = leaf;
                if level >= 4 {
                    continue;
                }
                let (l, r) = (n, n + 1);
                let m = match missing {
                    0 => l,
                    1 => r,
                    _ => n + 2,
                };
                let added = if m == n + 2 { 3 } else { 2 };
                nodes[node] = (feature, threshold, l as u32, r as u32, m as u32, 0.0);
                for c in 0..added {
                    nodes.push(leaf_of(leaf * (c as f64 + 0.5)));
                    open.push((n + c, level + 1));
                }
                n += added;
            }
            tree_of(nodes)
        })
    }

    proptest! {
        #[test]
        fn compiled_layout_scores_bit_for_bit_as_the_artifact(
            trees in proptest::collection::vec(random_tree(), 1..20),
            base_score in -2.0..2.0f64,
            rows in proptest::collection::vec(
                proptest::collection::vec(prop_oneof![4 => -3.0..3.0f64, 1 => Just(f64::NAN)], N_FEATURES),
                1..20,
            ),
        ) {
            let spec = EnsembleSpec { base_score, trees };
            let e = Ensemble::compile(&spec).expect("generated trees are valid");
            for row in rows {
                let mut x = [0.0; N_FEATURES];
                x.copy_from_slice(&row);
                prop_assert_eq!(e.log_odds(&x).to_bits(), reference_log_odds(&spec, &x).to_bits());
            }
        }
    }
}
