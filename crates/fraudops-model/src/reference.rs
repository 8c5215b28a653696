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
//! Traffic has a week: nights and weekends differ from the week's mix on their own (fewer and other
//! purchases), and a live window of minutes holds one part of the week. So the reference also keeps its
//! counts per *time-of-week class* ([`TimeOfWeek`]: five parts of the day × weekday/weekend, in the
//! features' own calendar), and a window is compared with the mixture of the classes it holds, each in the
//! proportion the window holds it ([`Reference::expected`]): a normal Sunday night is compared with the
//! Sunday nights of the reference, while a shift inside a class still counts in full.
//!
//! Architecture invariant: pure arithmetic on slices; the trainer fits [`Histogram`]s and a server counts
//! into [`Histogram::bin`] without allocating.

use fraudops_features::definition::{day_of_week, hour_of_day, is_weekend_day};
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

/// Parts of the day a time-of-week class distinguishes, by their first hour: the features' night
/// (0–6, `TX_DURING_NIGHT`), morning, midday, afternoon, evening. Coarse on purpose: each class of a
/// one-week reference then holds days of data, not one hour's.
const DAY_PARTS: [u8; 5] = [0, 7, 11, 15, 19];

/// Time-of-week classes: [`DAY_PARTS`] on weekdays, then on weekends.
pub const TIME_CLASSES: usize = 2 * DAY_PARTS.len();

/// The class of a prediction whose time is not known: compared with the whole reference.
pub const UNKNOWN_TIME_CLASS: usize = TIME_CLASSES;

/// How many reference rows the whole week's shares weigh when a class's shares are estimated (a prior, as
/// in additive smoothing): a class with only a few dozen rows leans on the week instead of adding its own
/// noise, and no bin of a class is empty; a class with hundreds of rows is its own, nearly unbiased (a
/// class that differs from the week is not pulled back towards it).
pub const CLASS_PRIOR_ROWS: f64 = 20.0;

/// The time-of-week class of an event time (naive local time, as the features read it).
pub fn time_class(t: i64) -> usize {
    time_class_of(day_of_week(t), hour_of_day(t))
}

/// The time-of-week class of a day of week (Monday 0) and an hour (0–23).
pub fn time_class_of(day_of_week: u8, hour: u8) -> usize {
    let part = DAY_PARTS
        .iter()
        .rposition(|&first| hour >= first)
        .unwrap_or(0);
    part + if is_weekend_day(day_of_week) {
        DAY_PARTS.len()
    } else {
        0
    }
}

/// The reference's bin counts per time-of-week class, on the same bins as its histograms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeOfWeek {
    /// Per class: the score's bin counts.
    pub score: Vec<Vec<u32>>,
    /// Per class, per feature: bin counts.
    pub features: Vec<Vec<Vec<u32>>>,
}

impl TimeOfWeek {
    /// Whether it fits the reference: a class per [`TIME_CLASSES`], each histogram's bins.
    pub fn fits(&self, reference: &Reference) -> bool {
        self.score.len() == TIME_CLASSES
            && self.features.len() == TIME_CLASSES
            && self.score.iter().all(|c| c.len() == reference.score.bins())
            && self.features.iter().all(|class| {
                class.len() == reference.features.len()
                    && class
                        .iter()
                        .zip(&reference.features)
                        .all(|(c, h)| c.len() == h.bins())
            })
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
    /// The same counts per time-of-week class; absent in artifacts from before it (their windows are
    /// compared with the whole week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_of_week: Option<TimeOfWeek>,
}

impl Reference {
    /// Fits the score histogram to `scores` and one histogram per column of the row-major `rows`; with
    /// the event times of both (`score_times`, `row_times`, aligned), also their counts per time-of-week
    /// class.
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
            time_of_week: None,
        }
    }

    /// Adds the counts per time-of-week class: `score_times[i]` is when `scores[i]` was made, `row_times[i]`
    /// when row `i` of `rows` happened. Unchanged if the lengths do not match.
    pub fn with_time_of_week(
        mut self,
        scores: &[f64],
        score_times: &[i64],
        rows: &[f64],
        row_times: &[i64],
    ) -> Self {
        let n_features = self.features.len();
        if scores.len() != score_times.len() || rows.len() != row_times.len() * n_features {
            return self;
        }
        let mut tow = TimeOfWeek {
            score: vec![vec![0; self.score.bins()]; TIME_CLASSES],
            features: vec![self.features.iter().map(|h| vec![0; h.bins()]).collect(); TIME_CLASSES],
        };
        for (&x, &t) in scores.iter().zip(score_times) {
            tow.score[time_class(t)][self.score.bin(x)] += 1;
        }
        for (row, &t) in rows.chunks_exact(n_features.max(1)).zip(row_times) {
            let class = &mut tow.features[time_class(t)];
            for ((counts, hist), &x) in class.iter_mut().zip(&self.features).zip(row) {
                counts[hist.bin(x)] += 1;
            }
        }
        self.time_of_week = Some(tow);
        self
    }

    /// The shares a live window is compared with, for histogram `h` (0 the score, `1 + j` feature `j`):
    /// the mixture of the time-of-week classes in the window's proportions (`class_counts`, one per class
    /// and one for [`UNKNOWN_TIME_CLASS`]), each class's shares shrunk towards the week's by
    /// [`CLASS_PRIOR_ROWS`]. Without classes (an older artifact, or no known time) the week's shares.
    pub fn expected(&self, h: usize, class_counts: &[u64]) -> Vec<f64> {
        let Some(week) = (if h == 0 {
            Some(&self.score)
        } else {
            self.features.get(h - 1)
        }) else {
            return Vec::new();
        };
        let total: u64 = class_counts.iter().sum();
        let Some(tow) = self.time_of_week.as_ref().filter(|_| total > 0) else {
            return week.shares.clone();
        };
        let mut out = vec![0.0; week.bins()];
        for (class, &n) in class_counts.iter().enumerate().filter(|(_, n)| **n > 0) {
            let weight = n as f64 / total as f64;
            let counts = if h == 0 {
                tow.score.get(class)
            } else {
                tow.features.get(class).and_then(|c| c.get(h - 1))
            };
            match counts.filter(|c| c.len() == out.len()) {
                Some(counts) => {
                    let rows: f64 = counts.iter().map(|&c| f64::from(c)).sum();
                    let denominator = rows + CLASS_PRIOR_ROWS;
                    for ((o, &c), &w) in out.iter_mut().zip(counts).zip(&week.shares) {
                        *o += weight * (f64::from(c) + CLASS_PRIOR_ROWS * w) / denominator;
                    }
                }
                // The unknown class, or a class the artifact does not have: the week.
                None => {
                    for (o, &w) in out.iter_mut().zip(&week.shares) {
                        *o += weight * w;
                    }
                }
            }
        }
        out
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
    fn time_classes_follow_the_features_calendar() {
        let monday = 1_522_627_200; // 2018-04-02 00:00:00, a Monday
        assert_eq!(time_class(monday), 0);
        assert_eq!(
            time_class(monday + 6 * 3600 + 3599),
            0,
            "still the features' night"
        );
        assert_eq!(time_class(monday + 7 * 3600), 1);
        assert_eq!(time_class(monday + 23 * 3600), 4);
        assert_eq!(
            time_class(monday + 5 * 86_400 + 12 * 3600),
            7,
            "Saturday midday"
        );
        assert_eq!(
            time_class(monday + 6 * 86_400 + 2 * 3600),
            5,
            "Sunday night"
        );
    }

    #[test]
    fn a_window_is_compared_with_the_classes_it_holds() {
        // Nights score high, days low: the week's mix is 1/4 high, but a night window is all high.
        let monday = 1_522_627_200;
        let (mut scores, mut times) = (Vec::new(), Vec::new());
        for day in 0..7 {
            for i in 0..400 {
                let night = i < 100;
                scores.push(if night { 0.9 } else { 0.1 } + f64::from(i % 10) * 0.001);
                let hour = if night { 3 } else { 13 };
                times.push(monday + day * 86_400 + hour * 3600 + i64::from(i));
            }
        }
        let rows = vec![0.0; scores.len()];
        let reference = Reference::fit(&scores, "test", &rows, 1, "train")
            .with_time_of_week(&scores, &times, &rows, &times);
        let night: Vec<f64> = scores
            .iter()
            .zip(&times)
            .filter(|(_, t)| time_class(**t) == 0)
            .map(|(s, _)| *s)
            .collect();
        let counts = {
            let mut c = vec![0u64; reference.score.bins()];
            for &x in &night {
                c[reference.score.bin(x)] += 1;
            }
            c
        };
        let mut classes = vec![0u64; TIME_CLASSES + 1];
        classes[0] = night.len() as u64;
        let against_week = psi(&reference.score.shares, &counts).expect("counts");
        let against_nights = psi(&reference.expected(0, &classes), &counts).expect("counts");
        assert!(
            against_week > 1.0,
            "a night window against the week: {against_week}"
        );
        // 500 reference nights against a prior of 20 week rows: 4% of the week's shares remain.
        assert!(
            against_nights < 0.2,
            "against the reference's nights: {against_nights}"
        );
        // An unknown time, or an artifact without classes: the week.
        let mut unknown = vec![0u64; TIME_CLASSES + 1];
        unknown[UNKNOWN_TIME_CLASS] = 5;
        assert_eq!(reference.expected(0, &unknown), reference.score.shares);
        let plain = Reference {
            time_of_week: None,
            ..reference.clone()
        };
        assert_eq!(plain.expected(0, &classes), reference.score.shares);
        assert!(
            reference
                .time_of_week
                .as_ref()
                .is_some_and(|t| t.fits(&reference))
        );
    }

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
