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
//!
//! **The week.** Each prediction also counts its time-of-week class (part of day × weekday/weekend, from
//! `tx_datetime` or the seed schema's `day_of_week` and `hour`), and the index compares the window with
//! the mixture of the reference's classes in the window's own proportions
//! ([`fraudops_model::reference::Reference::expected`]): a normal night is not drift.
//!
//! **Whose clock** (`DRIFT_CLOCK`). `wall` (the default): a timer starts a new half every half window.
//! `event`: the first prediction whose `tx_datetime` falls in a later half than any before it starts that
//! half (two halves later or more: both are emptied), so a replay or a worker catching up is measured as
//! it would have been live, whatever its speed; the timer still starts a new half when no event did
//! (traffic without `tx_datetime`, a pause, one event from the far future), so a window never holds
//! stale counts. Live, event time is the wall clock's and both agree; the attack and the drills replay days
//! of event time in minutes, where only the wall clock gathers enough predictions per window.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};

use fraudops_features::{FeatureVector, N_FEATURES};
use fraudops_model::reference::{Reference, TIME_CLASSES, UNKNOWN_TIME_CLASS, psi, time_class_of};

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

/// When a prediction happened, as far as the drift window needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WhenScored {
    /// Day of week (Monday 0) and hour: its time-of-week class.
    pub day_and_hour: Option<(u8, u8)>,
    /// Event time, seconds: the window's clock.
    pub time: Option<i64>,
}

/// Classes counted per bucket: the reference's, then the unknown one.
const CLASS_COUNTERS: usize = TIME_CLASSES + 1;

/// The live window of one served model.
pub struct LiveWindow {
    reference: Reference,
    /// Where histogram `h` (0 = score, 1 + j = feature j) starts in a bucket; the last entry is where the
    /// class counters start, after which come [`CLASS_COUNTERS`] of them.
    offsets: [usize; N_FEATURES + 2],
    shards: Box<[Shard]>,
    /// The bucket written now (0 or 1).
    current: AtomicUsize,
    /// Half the window, seconds of event time; `None` when the wall clock alone moves the window.
    half_window: Option<i64>,
    /// The latest half (event time / half window) a prediction fell in; `i64::MIN` before any.
    slot: AtomicI64,
    /// Halves started so far, by either clock (the timer starts one only when event time did not).
    rotations: AtomicU64,
}

impl LiveWindow {
    /// An empty window of `2 × half_window_seconds` against `reference`, its halves following event time
    /// when `event_clock`; `None` when the reference does not describe this build's features (the
    /// artifact check refuses that already, so this is a second line of defence).
    pub fn new(reference: &Reference, half_window_seconds: u64, event_clock: bool) -> Option<Self> {
        if reference.features.len() != N_FEATURES {
            return None;
        }
        let mut offsets = [0; N_FEATURES + 2];
        let hists = std::iter::once(&reference.score).chain(&reference.features);
        for (h, hist) in hists.enumerate() {
            offsets[h + 1] = offsets[h] + hist.bins();
        }
        let len = offsets[N_FEATURES + 1] + CLASS_COUNTERS;
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
            half_window: event_clock
                .then(|| i64::try_from(half_window_seconds.max(1)).unwrap_or(i64::MAX)),
            slot: AtomicI64::new(i64::MIN),
            rotations: AtomicU64::new(0),
        })
    }

    fn len(&self) -> usize {
        self.offsets[N_FEATURES + 1] + CLASS_COUNTERS
    }

    /// Counts one prediction. Never allocates, never blocks (the first prediction of a new half empties
    /// the older bucket: a few thousand relaxed stores, once per half window).
    #[inline]
    pub fn record(&self, features: &FeatureVector, score: f64, when: WhenScored) {
        if let (Some(t), Some(half)) = (when.time, self.half_window) {
            self.advance_to(t.div_euclid(half));
        }
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
        let class = when
            .day_and_hour
            .map_or(UNKNOWN_TIME_CLASS, |(day, hour)| time_class_of(day, hour));
        add(self.offsets[N_FEATURES + 1] + class);
    }

    /// Moves the event-time clock to half `slot` if it is later than any seen: the next half starts, or,
    /// two halves later or more, both are emptied.
    fn advance_to(&self, slot: i64) {
        let mut seen = self.slot.load(Ordering::Relaxed);
        while slot > seen {
            match self
                .slot
                .compare_exchange_weak(seen, slot, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.rotate();
                    if seen == i64::MIN || slot - seen >= 2 {
                        self.rotate();
                    }
                    return;
                }
                Err(now) => seen = now,
            }
        }
    }

    /// The timer's half (every half window of wall time): starts a new half unless event time started one
    /// since `rotations_before` (what this returned last time); returns the count to pass next time.
    pub fn tick(&self, rotations_before: u64) -> u64 {
        if self.rotations.load(Ordering::Relaxed) == rotations_before {
            self.rotate();
        }
        self.rotations.load(Ordering::Relaxed)
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
        self.rotations.fetch_add(1, Ordering::Relaxed);
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
        let classes = &totals[self.offsets[N_FEATURES + 1]..];
        let index =
            |h: usize| psi(&self.reference.expected(h, classes), counts(h)).unwrap_or(f64::NAN);
        let score = index(0);
        let mut features = [f64::NAN; N_FEATURES];
        for (j, out) in features.iter_mut().enumerate() {
            *out = index(j + 1);
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
            time_of_week: None,
        }
    }

    fn record_uniform(window: &LiveWindow, n: u32, shift: f64) {
        record_at(window, n, shift, WhenScored::default());
    }

    fn record_at(window: &LiveWindow, n: u32, shift: f64, when: WhenScored) {
        for i in 0..n {
            let x = (f64::from(i) / f64::from(n) + shift).min(0.999);
            window.record(&[x; N_FEATURES], x, when);
        }
    }

    const HALF: u64 = 300;

    #[test]
    fn event_time_starts_the_halves_and_the_timer_only_when_it_did_not() {
        let window = LiveWindow::new(&uniform_reference(), HALF, true).expect("fits");
        let at = |t: i64| WhenScored {
            day_and_hour: None,
            time: Some(t),
        };
        let t0 = 1_533_686_400; // a half's start
        record_at(&window, 5000, 0.4, at(t0));
        // Later in the same half, and an older event: the same window.
        record_at(&window, 10, 0.4, at(t0 + 299));
        record_at(&window, 10, 0.4, at(t0 - 10_000));
        assert_eq!(window.reading().samples, 5020);
        // The next half: the shifted half is kept; the one after: gone, whatever the wall clock did.
        record_at(&window, 5000, 0.0, at(t0 + 300));
        assert_eq!(window.reading().samples, 10_020);
        record_at(&window, 5000, 0.0, at(t0 + 600));
        assert_eq!(window.reading().samples, 10_000);
        assert!(window.reading().psi.expect("samples").0 < 0.01);
        // Two halves later: both emptied.
        record_at(&window, 1000, 0.0, at(t0 + 1_800));
        assert_eq!(window.reading().samples, 1000);
        // On the wall clock, event time moves nothing.
        let wall = LiveWindow::new(&uniform_reference(), HALF, false).expect("fits");
        record_at(&wall, 100, 0.0, at(t0));
        record_at(&wall, 100, 0.0, at(t0 + 1_800));
        assert_eq!(wall.reading().samples, 200);
        // The timer starts a half only when event time did not since its last tick.
        let ticked = window.tick(0);
        assert_eq!(
            window.reading().samples,
            1000,
            "event time started halves since"
        );
        let _ = window.tick(ticked);
        let _ = window.tick(ticked + 1);
        assert_eq!(window.reading().samples, 0, "two quiet ticks: emptied");
    }

    #[test]
    fn a_window_of_one_part_of_the_week_is_compared_with_that_part() {
        // A reference whose nights score in the top fifth and days below it.
        let monday_night = 1_522_627_200 + 3 * 3600; // 2018-04-02 03:00, class 0
        let monday_noon = 1_522_627_200 + 13 * 3600;
        let mut scores = Vec::new();
        let mut times = Vec::new();
        for i in 0..10_000 {
            let night = i % 5 == 0;
            scores.push(if night {
                0.8 + f64::from(i % 997) / 5000.0
            } else {
                f64::from(i % 997) / 1250.0
            });
            times.push(if night { monday_night } else { monday_noon });
        }
        let rows = vec![0.5; scores.len() * N_FEATURES];
        let reference = Reference::fit(&scores, "test", &rows, N_FEATURES, "train")
            .with_time_of_week(&scores, &times, &rows, &times);
        let window = LiveWindow::new(&reference, HALF, false).expect("fits");
        let night = WhenScored {
            day_and_hour: Some((0, 3)),
            time: None,
        };
        for i in 0..2000 {
            window.record(&[0.5; N_FEATURES], 0.8 + f64::from(i % 997) / 5000.0, night);
        }
        let (score, _) = window.reading().psi.expect("samples");
        assert!(score < 0.05, "a normal night: {score}");
        // Without the classes the same night reads as a large shift.
        let plain = Reference {
            time_of_week: None,
            ..reference
        };
        let window = LiveWindow::new(&plain, HALF, false).expect("fits");
        for i in 0..2000 {
            window.record(&[0.5; N_FEATURES], 0.8 + f64::from(i % 997) / 5000.0, night);
        }
        assert!(window.reading().psi.expect("samples").0 > 1.0);
    }

    #[test]
    fn no_psi_below_the_minimum_then_near_zero_for_reference_traffic() {
        let window = LiveWindow::new(&uniform_reference(), HALF, true).expect("fits");
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
        let window = LiveWindow::new(&uniform_reference(), HALF, true).expect("fits");
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
        let window = LiveWindow::new(&uniform_reference(), HALF, true).expect("fits");
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| record_uniform(&window, 1000, 0.0));
            }
        });
        assert_eq!(window.reading().samples, 16_000);
    }
}
