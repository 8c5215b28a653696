//! Reference distributions for drift: what the score and every feature looked like when the model was
//! trained, as fixed bins and their shares, and the population stability index (PSI) of live counts
//! against them.
//!
//! Bins are quantile bins of the reference data (deciles by default), so every bin of the reference holds
//! about the same share and the index is equally sensitive along the whole range, including the narrow
//! band of low scores where almost all genuine traffic lies. Equal reference values collapse into one bin
//! (a 0/1 flag has two bins, not ten). A missing (NaN) value has its own bin: features the caller leaves
//! out (merchant category, age, balance) are a drift of their own.
//!
//! Architecture invariant: pure arithmetic on slices; the trainer fits [`Histogram`]s and a server counts
//! into [`Histogram::bin`] without allocating.

use serde::{Deserialize, Serialize};

/// Quantile bins per histogram (deciles); fewer when reference values repeat.
pub const REFERENCE_BINS: usize = 10;

/// Floor for a bin's share in [`psi`], so an empty bin on either side adds a large but finite term.
pub const PSI_EPSILON: f64 = 1e-4;

/// One variable's reference distribution: cut points and the share of reference rows per bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Ascending, distinct cut points. Bin 0 holds `x < edges[0]`, bin `i` holds
    /// `edges[i-1] <= x < edges[i]`, bin `edges.len()` holds `x >= edges[last]`.
    pub edges: Vec<f64>,
    /// Share of the reference rows per bin: `edges.len() + 1` value bins, then the missing (NaN) bin.
    pub shares: Vec<f64>,
    /// Reference rows the shares were counted from.
    pub rows: u64,
}

impl Histogram {
    /// Fits quantile bins (at most `bins`) to `values` and counts them; NaN values go to the missing bin.
    pub fn fit(values: &[f64], bins: usize) -> Self {
        let mut present: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
        present.sort_by(f64::total_cmp);
        let mut edges: Vec<f64> = Vec::with_capacity(bins.saturating_sub(1));
        if !present.is_empty() {
            for k in 1..bins.max(1) {
                let edge = present[(k * present.len() / bins).min(present.len() - 1)];
                // The smallest value is no cut: the bin below it would always be empty.
                if edge > present[0] && edges.last().is_none_or(|&last| edge > last) {
                    edges.push(edge);
                }
            }
        }
        let mut hist = Self {
            shares: vec![0.0; edges.len() + 2],
            edges,
            rows: values.len() as u64,
        };
        let mut counts = vec![0u64; hist.bins()];
        for &v in values {
            counts[hist.bin(v)] += 1;
        }
        let total = values.len().max(1) as f64;
        hist.shares = counts.iter().map(|&c| c as f64 / total).collect();
        hist
    }

    /// Bins including the missing one.
    pub fn bins(&self) -> usize {
        self.edges.len() + 2
    }

    /// The bin of `x` (the last bin for NaN). Never allocates.
    #[inline]
    pub fn bin(&self, x: f64) -> usize {
        if x.is_nan() {
            self.edges.len() + 1
        } else {
            self.edges.partition_point(|&e| e <= x)
        }
    }

    /// Whether the shape is usable: shares and edges agree, edges ascend, shares are finite.
    pub fn is_consistent(&self) -> bool {
        self.shares.len() == self.edges.len() + 2
            && self.edges.windows(2).all(|w| w[0] < w[1])
            && self.edges.iter().all(|e| e.is_finite())
            && self.shares.iter().all(|s| s.is_finite() && *s >= 0.0)
    }
}

/// The reference of a whole model, stored in its artifact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Which rows the score histogram was counted on (e.g. `test window`).
    pub score_rows: String,
    /// Which rows the feature histograms were counted on (e.g. `training window`).
    pub feature_rows: String,
    /// The served probability.
    pub score: Histogram,
    /// One per feature, in the artifact's feature order.
    pub features: Vec<Histogram>,
}

impl Reference {
    /// Fits the score histogram to `scores` and one histogram per column of the row-major `rows`.
    pub fn fit(
        scores: &[f64],
        score_rows: &str,
        rows: &[f64],
        n_features: usize,
        feature_rows: &str,
    ) -> Self {
        let n = rows.len() / n_features.max(1);
        let features = (0..n_features)
            .map(|j| {
                let column: Vec<f64> = (0..n).map(|i| rows[i * n_features + j]).collect();
                Histogram::fit(&column, REFERENCE_BINS)
            })
            .collect();
        Self {
            score_rows: score_rows.to_owned(),
            feature_rows: feature_rows.to_owned(),
            score: Histogram::fit(scores, REFERENCE_BINS),
            features,
        }
    }
}

/// Population stability index of live bin `counts` against reference `shares`:
/// `Σ (a − e) · ln(a / e)` over bins, each share floored at [`PSI_EPSILON`]. `None` without live counts
/// or when the lengths differ. Rule of thumb: < 0.1 stable, 0.1–0.2 moderate, > 0.2 shifted.
pub fn psi(shares: &[f64], counts: &[u64]) -> Option<f64> {
    let total: u64 = counts.iter().sum();
    if total == 0 || shares.len() != counts.len() {
        return None;
    }
    Some(
        shares
            .iter()
            .zip(counts)
            .map(|(&e, &c)| {
                let e = e.max(PSI_EPSILON);
                let a = (c as f64 / total as f64).max(PSI_EPSILON);
                (a - e) * (a / e).ln()
            })
            .sum(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_of_a_uniform_sample_hold_a_tenth_each() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let h = Histogram::fit(&values, 10);
        assert_eq!(h.edges.len(), 9);
        assert!(h.is_consistent());
        for share in &h.shares[..10] {
            assert!((share - 0.1).abs() < 1e-9, "{share}");
        }
        assert_eq!(h.shares[10], 0.0, "nothing missing");
    }

    #[test]
    fn repeated_values_collapse_into_one_bin_and_nan_has_its_own() {
        let mut values = vec![0.0; 700];
        values.extend(vec![1.0; 200]);
        values.extend(vec![f64::NAN; 100]);
        let h = Histogram::fit(&values, 10);
        assert_eq!(h.edges, vec![1.0]);
        assert_eq!(h.shares, vec![0.7, 0.2, 0.1]);
        assert_eq!(h.bin(-5.0), 0);
        assert_eq!(h.bin(0.0), 0);
        assert_eq!(h.bin(1.0), 1);
        assert_eq!(h.bin(f64::NAN), 2);
    }

    #[test]
    fn psi_is_zero_for_the_reference_itself_and_grows_with_a_shift() {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let h = Histogram::fit(&values, 10);
        let count = |xs: &[f64]| {
            let mut c = vec![0u64; h.bins()];
            for &x in xs {
                c[h.bin(x)] += 1;
            }
            c
        };
        assert!(psi(&h.shares, &count(&values)).is_some_and(|p| p.abs() < 1e-12));
        let shifted: Vec<f64> = values.iter().map(|v| v + 0.3).collect();
        let p = psi(&h.shares, &count(&shifted)).unwrap_or(0.0);
        assert!(
            p > 0.2,
            "a 0.3 shift of a uniform [0, 1) is a large drift: {p}"
        );
        assert_eq!(psi(&h.shares, &vec![0; h.bins()]), None);
        assert_eq!(psi(&h.shares, &[1, 2]), None);
    }
}
