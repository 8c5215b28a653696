//! Drift of the served model: live counts of the score and of every feature over a sliding time window,
//! and their population stability index (PSI) against the reference the model's artifact carries.
//!
//! The window is two buckets of per-bin counters; every half window the older bucket is zeroed and becomes
//! the one written, so the PSI always covers the last half to whole window. Recording a prediction is one
//! bin lookup and one relaxed atomic add per histogram (21), into one of a few cache-line-separated shards
//! picked per thread: no allocation, no lock, and cores do not fight over the same counters. The PSI is
//! computed when `/metrics` is read (21 histograms of at most 11 bins: microseconds).
//!
//! A window belongs to one [`crate::model_store::ServedModel`], so a swap starts a fresh window against
//! the new model's reference; requests still finishing on the old model count into the old window.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use fraudops_features::{FeatureVector, N_FEATURES};
use fraudops_model::reference::{Reference, psi};

/// Below this many predictions in the window no PSI is exported: with 10 bins the index of a sample of n
/// drawn from the reference itself is about 9/n, so 1000 keeps that noise near 0.01, well under the 0.1
/// that counts as drift.
pub const MIN_SAMPLES: u64 = 1_000;

/// Counter shards; a thread always writes the same one.
const SHARDS: usize = 8;

/// The PSI of the current window.
#[derive(Debug, Clone, PartialEq)]
pub struct DriftReading {
    /// Predictions in the window.
    pub samples: u64,
    /// PSI of the fraud probability; `None` below [`MIN_SAMPLES`].
    pub psi: Option<(f64, [f64; N_FEATURES])>,
}

/// One shard's counters: both buckets, each `len` long. Aligned so shards never share a cache line.
#[repr(align(128))]
struct Shard {
    counts: Box<[AtomicU64]>,
}

/// The live window of one served model.
pub struct LiveWindow {
    reference: Reference,
    /// Where histogram `h` (0 = score, 1 + j = feature j) starts in a bucket; the last entry is its length.
    offsets: [usize; N_FEATURES + 2],
    shards: Box<[Shard]>,
    /// The bucket written now (0 or 1).
    current: AtomicUsize,
}

impl LiveWindow {
    /// An empty window against `reference`; `None` when the reference does not describe this build's
    /// features (the artifact check refuses that already, so this is a second line of defence).
    pub fn new(reference: &Reference) -> Option<Self> {
        if reference.features.len() != N_FEATURES {
            return None;
        }
        let mut offsets = [0; N_FEATURES + 2];
        let hists = std::iter::once(&reference.score).chain(&reference.features);
        for (h, hist) in hists.enumerate() {
            offsets[h + 1] = offsets[h] + hist.bins();
        }
        let len = offsets[N_FEATURES + 1];
        let shards = (0..SHARDS)
            .map(|_| Shard {
                counts: (0..2 * len).map(|_| AtomicU64::new(0)).collect(),
            })
            .collect();
        Some(Self {
            reference: reference.clone(),
            offsets,
            shards,
            current: AtomicUsize::new(0),
        })
    }

    fn len(&self) -> usize {
        self.offsets[N_FEATURES + 1]
    }

    /// Counts one prediction. Never allocates, never blocks.
    #[inline]
    pub fn record(&self, features: &FeatureVector, score: f64) {
        let base = self.current.load(Ordering::Relaxed) * self.len();
        let counts = &self.shards[shard_index()].counts;
        let add = |i: usize| {
            if let Some(c) = counts.get(base + i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        };
        add(self.offsets[0] + self.reference.score.bin(score));
        for (j, (&x, hist)) in features.iter().zip(&self.reference.features).enumerate() {
            add(self.offsets[j + 1] + hist.bin(x));
        }
    }

    /// Starts a new half window: zeroes the older bucket and writes into it from now on. A prediction
    /// recorded during the switch lands in either bucket, which changes nothing measurable.
    pub fn rotate(&self) {
        let next = 1 - self.current.load(Ordering::Relaxed);
        let (start, len) = (next * self.len(), self.len());
        for shard in self.shards.iter() {
            for c in &shard.counts[start..start + len] {
                c.store(0, Ordering::Relaxed);
            }
        }
        self.current.store(next, Ordering::Relaxed);
    }

    /// Sums both buckets of every shard and computes the PSI of each histogram.
    pub fn reading(&self) -> DriftReading {
        let len = self.len();
        let mut totals = vec![0u64; len];
        for shard in self.shards.iter() {
            for counts in shard.counts.chunks_exact(len) {
                for (t, c) in totals.iter_mut().zip(counts) {
                    *t += c.load(Ordering::Relaxed);
                }
            }
        }
        let counts = |h: usize| &totals[self.offsets[h]..self.offsets[h + 1]];
        let samples = counts(0).iter().sum();
        if samples < MIN_SAMPLES {
            return DriftReading { samples, psi: None };
        }
        let score = psi(&self.reference.score.shares, counts(0)).unwrap_or(f64::NAN);
        let mut features = [f64::NAN; N_FEATURES];
        for (j, (out, hist)) in features
            .iter_mut()
            .zip(&self.reference.features)
            .enumerate()
        {
            *out = psi(&hist.shares, counts(j + 1)).unwrap_or(f64::NAN);
        }
        DriftReading {
            samples,
            psi: Some((score, features)),
        }
    }
}

/// This thread's shard: threads are numbered as they first record, round robin over the shards.
#[inline]
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use fraudops_model::reference::{Histogram, REFERENCE_BINS};

    use super::*;

    /// A reference where the score and every feature are uniform on [0, 1).
    fn uniform_reference() -> Reference {
        let values: Vec<f64> = (0..1000).map(|i| f64::from(i) / 1000.0).collect();
        let hist = Histogram::fit(&values, REFERENCE_BINS);
        Reference {
            score_rows: "test".into(),
            feature_rows: "test".into(),
            score: hist.clone(),
            features: vec![hist; N_FEATURES],
        }
    }

    fn record_uniform(window: &LiveWindow, n: u32, shift: f64) {
        for i in 0..n {
            let x = (f64::from(i) / f64::from(n) + shift).min(0.999);
            window.record(&[x; N_FEATURES], x);
        }
    }

    #[test]
    fn no_psi_below_the_minimum_then_near_zero_for_reference_traffic() {
        let window = LiveWindow::new(&uniform_reference()).expect("fits");
        record_uniform(&window, 999, 0.0);
        assert_eq!(window.reading().psi, None);
        record_uniform(&window, 1001, 0.0);
        let reading = window.reading();
        assert_eq!(reading.samples, 2000);
        let (score, features) = reading.psi.expect("enough samples");
        assert!(score < 0.01, "{score}");
        assert!(features.iter().all(|&p| p < 0.01), "{features:?}");
    }

    #[test]
    fn shifted_traffic_drifts_and_rotation_forgets_it_after_two_half_windows() {
        let window = LiveWindow::new(&uniform_reference()).expect("fits");
        record_uniform(&window, 5000, 0.4);
        let (score, _) = window.reading().psi.expect("enough samples");
        assert!(score > 0.2, "{score}");
        // The shifted half stays in the window for one rotation, and is gone after the second.
        window.rotate();
        record_uniform(&window, 5000, 0.0);
        assert!(window.reading().psi.expect("samples").0 > 0.1);
        window.rotate();
        record_uniform(&window, 5000, 0.0);
        let reading = window.reading();
        assert_eq!(reading.samples, 10_000);
        assert!(reading.psi.expect("samples").0 < 0.01);
    }

    #[test]
    fn counts_from_many_threads_all_arrive() {
        let window = LiveWindow::new(&uniform_reference()).expect("fits");
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| record_uniform(&window, 1000, 0.0));
            }
        });
        assert_eq!(window.reading().samples, 16_000);
    }
}
