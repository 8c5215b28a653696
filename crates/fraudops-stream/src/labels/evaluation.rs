//! Online evaluation: each applied label joined with the score its transaction was given (the store
//! returns it with the label, see `fraudops_store::ScoreRecorder`), kept in a sliding event-time window,
//! and the handbook's metrics over it — computed by the same functions as training's
//! (`fraudops_train::metrics`), so online and offline numbers mean the same thing.
//!
//! The window holds the labelled transactions of the last `days` event-time days (the newest labelled
//! transaction's day and the `days - 1` before it), one entry per transaction id: a redelivered label
//! replaces its entry, a reversed one changes its outcome. Memory is bounded by `max_samples` (about 60
//! bytes each): past it the oldest day is dropped, so a window that does not fit covers fewer days.
//!
//! Each sample keeps the model version that scored it and the metrics are computed per version
//! ([`Window::summaries`]): after a promotion the old champion's scores stay in the window for a week, and
//! mixed with the new one's they would be compared with the new champion's offline metrics.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use fraudops_data::EpochSeconds;
use fraudops_features::definition::DAY;
use fraudops_train::metrics::{ScoredCard, average_precision, card_precision_at_k, roc_auc};

/// Cards per day of Card Precision@k (SPEC §3.3).
pub const CARD_PRECISION_K: usize = 100;

/// One labelled, scored transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// The model version that scored it (interned by the window: one allocation per version).
    pub model_version: Arc<str>,
    /// The card (Card Precision@k ranks cards).
    pub customer_id: u64,
    /// The fraud probability it was given.
    pub score: f64,
    /// The decision at the serving threshold.
    pub predicted_fraud: bool,
    /// The label.
    pub fraud: bool,
}

/// The metrics over the window; `None` where a metric is undefined (one class only, nothing predicted
/// fraud).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// ROC AUC.
    pub roc_auc: Option<f64>,
    /// Average precision.
    pub average_precision: Option<f64>,
    /// Card Precision@100, the mean over the window's days.
    pub card_precision_at_100: f64,
    /// Precision at the serving threshold: frauds among the transactions the model flagged.
    pub precision: Option<f64>,
    /// Recall at the serving threshold: flagged among the frauds.
    pub recall: Option<f64>,
    /// Samples in the window.
    pub samples: usize,
    /// Frauds among them.
    pub frauds: usize,
}

/// The sliding event-time window of labelled samples.
#[derive(Debug)]
pub struct Window {
    days: i64,
    max_samples: usize,
    /// Day number (event time) → transaction id hash → sample.
    by_day: BTreeMap<i64, HashMap<u64, Sample>>,
    len: usize,
    /// Every model version seen, so samples share one string per version.
    versions: HashSet<Arc<str>>,
}

impl Window {
    /// A window over `days` event-time days holding at most `max_samples` samples.
    pub fn new(days: u32, max_samples: usize) -> Self {
        Self {
            days: i64::from(days.max(1)),
            max_samples: max_samples.max(1),
            by_day: BTreeMap::new(),
            len: 0,
            versions: HashSet::new(),
        }
    }

    /// The shared string of `version`, for [`Sample::model_version`].
    pub fn version(&mut self, version: &str) -> Arc<str> {
        if let Some(v) = self.versions.get(version) {
            return v.clone();
        }
        let v: Arc<str> = Arc::from(version);
        self.versions.insert(v.clone());
        v
    }

    /// The oldest event-time day held (samples before it are gone from the window).
    pub fn oldest_day(&self) -> Option<i64> {
        self.by_day.keys().next().copied()
    }

    /// Adds (or replaces) the sample of transaction `id` at event time `time`; `false` if it is older
    /// than the window (or its day was dropped to bound memory) and was not kept.
    pub fn insert(&mut self, id: &str, time: EpochSeconds, sample: Sample) -> bool {
        let day = time.div_euclid(DAY);
        if self
            .by_day
            .last_key_value()
            .is_some_and(|(&newest, _)| day <= newest - self.days)
        {
            return false;
        }
        if self.len >= self.max_samples
            && self
                .by_day
                .first_key_value()
                .is_some_and(|(&oldest, _)| day < oldest)
        {
            return false;
        }
        let entries = self.by_day.entry(day).or_default();
        if entries.insert(id_hash(id), sample).is_none() {
            self.len += 1;
        }
        self.evict();
        self.by_day.contains_key(&day)
    }

    /// Drops days that left the window, then the oldest days while over the sample bound (never the
    /// newest day: when it alone is over the bound, its newest samples are not kept).
    fn evict(&mut self) {
        let Some(&newest) = self.by_day.keys().next_back() else {
            return;
        };
        while let Some((&oldest, _)) = self.by_day.first_key_value() {
            let too_old = oldest <= newest - self.days;
            let too_many = self.len > self.max_samples && oldest != newest;
            if !(too_old || too_many) {
                break;
            }
            if let Some(dropped) = self.by_day.remove(&oldest) {
                self.len -= dropped.len();
            }
        }
        if self.len > self.max_samples
            && let Some(day) = self.by_day.get_mut(&newest)
        {
            // Only the newest day is left and it is over the bound: shed an arbitrary sample.
            if let Some(&k) = day.keys().next() {
                day.remove(&k);
                self.len -= 1;
            }
        }
    }

    /// Samples held.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The metrics per model version, sorted by version; versions without a sample left are not listed
    /// (and the interned strings of versions gone from the window are released).
    pub fn summaries(&mut self) -> Vec<(Arc<str>, Summary)> {
        let first = self.by_day.keys().next().copied().unwrap_or(0);
        let mut by_version: BTreeMap<Arc<str>, Vec<(u32, &Sample)>> = BTreeMap::new();
        for (&day, entries) in &self.by_day {
            let day = u32::try_from(day - first).unwrap_or(u32::MAX);
            for s in entries.values() {
                by_version
                    .entry(s.model_version.clone())
                    .or_default()
                    .push((day, s));
            }
        }
        let out: Vec<(Arc<str>, Summary)> = by_version
            .into_iter()
            .map(|(version, samples)| (version, summarize(&samples)))
            .collect();
        self.versions
            .retain(|v| out.iter().any(|(kept, _)| kept == v));
        out
    }
}

/// The metrics over one version's samples (day number within the window, sample).
fn summarize(samples: &[(u32, &Sample)]) -> Summary {
    let mut scores = Vec::with_capacity(samples.len());
    let mut labels = Vec::with_capacity(samples.len());
    let mut cards = Vec::with_capacity(samples.len());
    let (mut tp, mut flagged, mut frauds) = (0usize, 0usize, 0usize);
    for &(day, s) in samples {
        scores.push(s.score);
        labels.push(s.fraud);
        cards.push(ScoredCard {
            day,
            customer_id: s.customer_id,
            score: s.score,
            fraud: s.fraud,
        });
        tp += usize::from(s.fraud && s.predicted_fraud);
        flagged += usize::from(s.predicted_fraud);
        frauds += usize::from(s.fraud);
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    Summary {
        roc_auc: roc_auc(&scores, &labels),
        average_precision: average_precision(&scores, &labels),
        card_precision_at_100: card_precision_at_k(&cards, CARD_PRECISION_K),
        precision: ratio(tp, flagged),
        recall: ratio(tp, frauds),
        samples: samples.len(),
        frauds,
    }
}

/// A transaction id as a 64-bit key (fixed keys, so the same id always maps the same; a collision among a
/// million ids has a chance of about 3e-8).
fn id_hash(id: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: EpochSeconds = 1_533_686_400; // 2018-08-08

    fn sample(customer_id: u64, score: f64, fraud: bool) -> Sample {
        versioned("v1", customer_id, score, fraud)
    }

    fn versioned(version: &str, customer_id: u64, score: f64, fraud: bool) -> Sample {
        Sample {
            model_version: Arc::from(version),
            customer_id,
            score,
            predicted_fraud: score >= 0.5,
            fraud,
        }
    }

    /// The summary of a window whose samples are all one version's.
    fn only(w: &mut Window) -> Summary {
        let mut all = w.summaries();
        assert_eq!(all.len(), 1, "one version");
        all.remove(0).1
    }

    #[test]
    fn each_model_version_is_summarised_on_its_own_scores() {
        // v1 ranks the frauds last, v2 first: mixed, they would read as one middling model.
        let mut w = Window::new(7, 1000);
        for (i, (version, score, fraud)) in [
            ("v1", 0.9, false),
            ("v1", 0.1, true),
            ("v1", 0.8, false),
            ("v1", 0.2, true),
            ("v2", 0.9, true),
            ("v2", 0.1, false),
            ("v2", 0.7, true),
        ]
        .into_iter()
        .enumerate()
        {
            let version = w.version(version);
            let mut s = sample(i as u64, score, fraud);
            s.model_version = version;
            assert!(w.insert(&i.to_string(), T0 + i as i64, s));
        }
        let all = w.summaries();
        let names: Vec<&str> = all.iter().map(|(v, _)| &**v).collect();
        assert_eq!(names, ["v1", "v2"]);
        assert_eq!(all[0].1.roc_auc, Some(0.0));
        assert_eq!((all[0].1.samples, all[0].1.frauds), (4, 2));
        assert_eq!(all[1].1.roc_auc, Some(1.0));
        assert_eq!(all[1].1.average_precision, Some(1.0));
        assert_eq!((all[1].1.samples, all[1].1.frauds), (3, 2));
        // A sample re-labelled under another version moves; a version with nothing left is not listed.
        for i in 0..4 {
            let mut s = versioned("v2", i, 0.5, false);
            s.model_version = w.version("v2");
            w.insert(&i.to_string(), T0 + i as i64, s);
        }
        let all = w.summaries();
        assert_eq!(all.len(), 1);
        assert_eq!((&*all[0].0, all[0].1.samples), ("v2", 7));
        assert_eq!(w.versions.len(), 1, "v1's string released");
    }

    #[test]
    fn metrics_are_training_s_on_the_window_s_samples() {
        let mut w = Window::new(7, 1000);
        let rows = [(0.1, false), (0.4, false), (0.35, true), (0.8, true)];
        for (i, &(score, fraud)) in rows.iter().enumerate() {
            assert!(w.insert(
                &i.to_string(),
                T0 + i as i64,
                sample(i as u64, score, fraud)
            ));
        }
        let s = only(&mut w);
        assert_eq!(s.roc_auc, Some(0.75));
        assert!((s.average_precision.unwrap() - 0.833_333_333_333_333_4).abs() < 1e-12);
        // Flagged (≥ 0.5): only 0.8, a fraud. Precision 1, recall 1/2.
        assert_eq!(s.precision, Some(1.0));
        assert_eq!(s.recall, Some(0.5));
        // One day, 4 cards, 2 frauds among the top 100.
        assert_eq!(s.card_precision_at_100, 0.02);
        assert_eq!((s.samples, s.frauds), (4, 2));
    }

    #[test]
    fn a_redelivered_or_reversed_label_replaces_its_sample() {
        let mut w = Window::new(7, 1000);
        assert!(w.insert("1", T0, sample(1, 0.9, true)));
        assert!(w.insert("1", T0, sample(1, 0.9, true)));
        assert_eq!(w.len(), 1);
        assert!(w.insert("1", T0, sample(1, 0.9, false)));
        assert_eq!((w.len(), only(&mut w).frauds), (1, 0));
    }

    #[test]
    fn the_window_slides_in_event_time_and_stays_bounded() {
        let mut w = Window::new(7, 1000);
        for d in 0..10 {
            assert!(w.insert(&d.to_string(), T0 + d * DAY, sample(d as u64, 0.5, false)));
        }
        // Days 3..=9 are the last seven.
        assert_eq!(w.len(), 7);
        assert!(
            !w.insert("old", T0 + 2 * DAY, sample(1, 0.5, true)),
            "too old"
        );
        assert!(
            w.insert("late", T0 + 3 * DAY, sample(1, 0.5, true)),
            "a late label inside the window"
        );
        // At most 5 samples: the oldest days go first.
        let mut small = Window::new(7, 5);
        for i in 0..12 {
            small.insert(
                &i.to_string(),
                T0 + (i / 3) * DAY,
                sample(i as u64, 0.5, false),
            );
        }
        assert!(small.len() <= 5, "{}", small.len());
        assert_eq!(
            small.by_day.keys().copied().collect::<Vec<_>>(),
            [T0 / DAY + 3]
        );
        // One huge day alone stays bounded too.
        let mut one = Window::new(7, 3);
        for i in 0..10 {
            one.insert(&i.to_string(), T0, sample(i, 0.5, false));
        }
        assert_eq!(one.len(), 3);
    }

    #[test]
    fn undefined_metrics_are_none() {
        let mut w = Window::new(7, 10);
        assert!(w.insert("1", T0, sample(1, 0.2, false)));
        let s = only(&mut w);
        assert_eq!(
            (s.roc_auc, s.average_precision, s.precision, s.recall),
            (None, None, None, None)
        );
    }
}
