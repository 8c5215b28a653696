//! Threshold-free quality metrics of the handbook: ROC AUC, Average Precision, Card Precision@k.

use std::collections::{HashMap, HashSet};

/// Area under the ROC curve (Mann–Whitney U with tied scores sharing their average rank).
///
/// Returns `None` when the labels hold only one class, where AUC is undefined.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mean_rank = (i + j + 2) as f64 / 2.0;
        let tied_positives = order[i..=j].iter().filter(|&&k| labels[k]).count() as f64;
        rank_sum += mean_rank * tied_positives;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Average precision as scikit-learn defines it: `Σ (Rₙ − Rₙ₋₁) Pₙ` over distinct score thresholds.
///
/// Returns `None` when there is no positive label.
pub fn average_precision(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    if positives == 0.0 {
        return None;
    }
    let (mut tp, mut seen, mut ap, mut last_recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        // A threshold admits every row with the same score at once.
        let score = scores[order[i]];
        while i < order.len() && scores[order[i]] == score {
            tp += f64::from(u8::from(labels[order[i]]));
            seen += 1.0;
            i += 1;
        }
        let recall = tp / positives;
        ap += (recall - last_recall) * (tp / seen);
        last_recall = recall;
    }
    Some(ap)
}

/// One scored test transaction, as Card Precision@k needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredCard {
    /// Test day index (0-based); days are processed in order.
    pub day: u32,
    /// The card.
    pub customer_id: u64,
    /// Model score.
    pub score: f64,
    /// True label.
    pub fraud: bool,
}

/// Card Precision@k (handbook protocol): per test day, cards already detected on earlier days are dropped;
/// each card gets its day's maximum score and label; the share of frauds among the top-k cards is that
/// day's precision, and its detected frauds join the detected set. Returns the mean over days.
///
/// Ties in score are broken by customer id so the metric is deterministic.
pub fn card_precision_at_k(rows: &[ScoredCard], k: usize) -> f64 {
    let mut days: Vec<u32> = rows.iter().map(|r| r.day).collect();
    days.sort_unstable();
    days.dedup();
    if days.is_empty() || k == 0 {
        return 0.0;
    }
    let mut detected: HashSet<u64> = HashSet::new();
    let mut total = 0.0;
    for &day in &days {
        let mut cards: HashMap<u64, (f64, bool)> = HashMap::new();
        for r in rows
            .iter()
            .filter(|r| r.day == day && !detected.contains(&r.customer_id))
        {
            let card = cards
                .entry(r.customer_id)
                .or_insert((f64::NEG_INFINITY, false));
            card.0 = card.0.max(r.score);
            card.1 |= r.fraud;
        }
        let mut ranked: Vec<(u64, f64, bool)> =
            cards.into_iter().map(|(c, (s, f))| (c, s, f)).collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let hits: Vec<u64> = ranked.iter().take(k).filter(|c| c.2).map(|c| c.0).collect();
        total += hits.len() as f64 / k as f64;
        detected.extend(hits);
    }
    total / days.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_matches_hand_computed_values() {
        assert_eq!(
            roc_auc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
    }

    #[test]
    fn average_precision_matches_scikit_learn() {
        // sklearn.metrics.average_precision_score([0,0,1,1], [0.1,0.4,0.35,0.8]) == 0.8333…
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!((ap - 0.833_333_333_333_333_4).abs() < 1e-12);
        // All tied: AP is the base rate.
        assert_eq!(
            average_precision(&[0.3; 4], &[true, false, false, false]),
            Some(0.25)
        );
        assert_eq!(average_precision(&[0.3], &[false]), None);
    }

    #[test]
    fn card_precision_drops_cards_detected_on_earlier_days() {
        let r = |day, customer_id, score, fraud| ScoredCard {
            day,
            customer_id,
            score,
            fraud,
        };
        let rows = [
            // Day 0: card 1 (fraud, top), card 2 (genuine), card 1 again with a lower score.
            r(0, 1, 0.9, true),
            r(0, 2, 0.8, false),
            r(0, 1, 0.1, false),
            // Day 1: card 1 is already detected and dropped, so card 3 (fraud) and card 2 make the top 2.
            r(1, 1, 0.99, true),
            r(1, 3, 0.7, true),
            r(1, 2, 0.6, false),
        ];
        // Day 0: top-2 = {1 fraud, 2} → 0.5; day 1: top-2 = {3 fraud, 2} → 0.5.
        assert_eq!(card_precision_at_k(&rows, 2), 0.5);
        // k = 1: day 0 → card 1 (1.0); day 1 → card 3 (1.0).
        assert_eq!(card_precision_at_k(&rows, 1), 1.0);
    }
}
