//! The champion gate (SPEC §6): a new model replaces the current champion only if, on the same test
//! window, it is not worse than the champion by more than a tolerance on one chosen metric.
//!
//! Pure decision logic, so it is unit-tested here; fetching the champion and moving the alias live in
//! the CLI, which knows MLflow.

use std::fmt;
use std::str::FromStr;

use crate::Evaluation;

/// The metric the gate compares; `fraudops train --gate-metric` (default: average precision, the
/// handbook's metric of choice for a 1%-positive problem, where ROC AUC flatters weak models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum GateMetric {
    /// Area under the ROC curve.
    RocAuc,
    /// Average precision.
    #[default]
    AveragePrecision,
    /// Card Precision@100.
    CardPrecisionAt100,
}

impl GateMetric {
    /// Every metric, in the order the help text lists them.
    pub const ALL: [GateMetric; 3] = [
        GateMetric::RocAuc,
        GateMetric::AveragePrecision,
        GateMetric::CardPrecisionAt100,
    ];

    /// The key used in `metrics.json`, in MLflow and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            GateMetric::RocAuc => "roc_auc",
            GateMetric::AveragePrecision => "average_precision",
            GateMetric::CardPrecisionAt100 => "card_precision_at_100",
        }
    }

    /// This metric's value in an evaluation.
    pub fn of(self, evaluation: &Evaluation) -> f64 {
        match self {
            GateMetric::RocAuc => evaluation.roc_auc,
            GateMetric::AveragePrecision => evaluation.average_precision,
            GateMetric::CardPrecisionAt100 => evaluation.card_precision_at_100,
        }
    }
}

impl fmt::Display for GateMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for GateMetric {
    type Err = String;

    /// Accepts the metric keys (`average_precision`, ...) and the short forms `auc`, `ap`, `cp100`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "roc_auc" | "auc" => Ok(GateMetric::RocAuc),
            "average_precision" | "ap" => Ok(GateMetric::AveragePrecision),
            "card_precision_at_100" | "cp100" => Ok(GateMetric::CardPrecisionAt100),
            other => Err(format!(
                "unknown gate metric {other:?}; expected one of {}",
                GateMetric::ALL.map(GateMetric::name).join(", ")
            )),
        }
    }
}

/// What the gate knows about the current champion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Champion<'a> {
    /// There is no champion yet (no alias, or no registered model): the first version wins.
    Absent,
    /// The champion exists but cannot be scored by this build (broken or incompatible artifact);
    /// the server would refuse it too, so any valid candidate replaces it.
    Unusable(&'a str),
    /// The champion's evaluation on the candidate's test window.
    Evaluated(&'a Evaluation),
}

/// Why the gate decided as it did; the MLflow tag `fraudops.gate.reason` holds [`Reason::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// No champion yet.
    FirstVersion,
    /// The champion could not be evaluated (or its metric is not a number).
    ChampionUnusable,
    /// The candidate is at least as good as the champion minus the tolerance.
    NotWorse,
    /// The candidate is worse than the champion by more than the tolerance.
    Worse,
    /// The candidate's own metric is not a number (e.g. a test window without fraud).
    CandidateInvalid,
}

impl Reason {
    /// Stable machine-readable form for tags and the decision file.
    pub fn key(self) -> &'static str {
        match self {
            Reason::FirstVersion => "first_version",
            Reason::ChampionUnusable => "champion_unusable",
            Reason::NotWorse => "not_worse",
            Reason::Worse => "worse",
            Reason::CandidateInvalid => "candidate_invalid",
        }
    }
}

/// The gate's verdict with the numbers behind it, so it can be printed and recorded as tags.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Move the alias to the candidate?
    pub promote: bool,
    /// Why.
    pub reason: Reason,
    /// The compared metric.
    pub metric: GateMetric,
    /// The candidate's value.
    pub candidate: f64,
    /// The champion's value, when it was evaluated.
    pub champion: Option<f64>,
    /// How much worse than the champion the candidate may be.
    pub tolerance: f64,
}

impl Decision {
    /// `promoted` or `rejected`: the value of the MLflow tag `fraudops.gate.decision`.
    pub fn verdict(&self) -> &'static str {
        if self.promote { "promoted" } else { "rejected" }
    }

    /// One human sentence with the numbers, e.g. for the command's output.
    pub fn explain(&self) -> String {
        let m = self.metric;
        let c = self.candidate;
        let t = self.tolerance;
        match (self.reason, self.champion) {
            (Reason::FirstVersion, _) => format!("no champion yet; {m} {c:.4}"),
            (Reason::ChampionUnusable, _) => {
                format!("the champion cannot be evaluated; candidate {m} {c:.4}")
            }
            (Reason::CandidateInvalid, _) => format!("the candidate's {m} is {c}, not a number"),
            (Reason::NotWorse, Some(h)) => {
                format!("{m} {c:.4} vs champion {h:.4}: not worse by more than {t:.4}")
            }
            (Reason::Worse, Some(h)) => format!(
                "{m} {c:.4} vs champion {h:.4}: worse by {:.4} > tolerance {t:.4}",
                h - c
            ),
            (reason, None) => format!("{m} {c:.4} ({})", reason.key()),
        }
    }
}

/// Decides whether `candidate` replaces the champion on `metric`, allowing it to be worse by at
/// most `tolerance` (which callers validate as finite and non-negative).
pub fn decide(
    metric: GateMetric,
    tolerance: f64,
    candidate: &Evaluation,
    champion: Champion<'_>,
) -> Decision {
    let value = metric.of(candidate);
    let decision = |promote, reason, champion| Decision {
        promote,
        reason,
        metric,
        candidate: value,
        champion,
        tolerance,
    };
    if !value.is_finite() {
        return decision(false, Reason::CandidateInvalid, None);
    }
    match champion {
        Champion::Absent => decision(true, Reason::FirstVersion, None),
        Champion::Unusable(_) => decision(true, Reason::ChampionUnusable, None),
        Champion::Evaluated(champion) => {
            let held = metric.of(champion);
            if !held.is_finite() {
                decision(true, Reason::ChampionUnusable, Some(held))
            } else if value >= held - tolerance {
                decision(true, Reason::NotWorse, Some(held))
            } else {
                decision(false, Reason::Worse, Some(held))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(ap: f64) -> Evaluation {
        Evaluation {
            roc_auc: 0.9,
            average_precision: ap,
            card_precision_at_100: 0.2,
        }
    }

    #[test]
    fn first_version_is_promoted() {
        let d = decide(
            GateMetric::AveragePrecision,
            0.0,
            &eval(0.1),
            Champion::Absent,
        );
        assert!(d.promote);
        assert_eq!(d.reason, Reason::FirstVersion);
        assert_eq!(d.verdict(), "promoted");
    }

    #[test]
    fn better_and_equal_are_promoted_worse_is_rejected() {
        let champ = eval(0.5);
        let gate = |ap, tol| {
            decide(
                GateMetric::AveragePrecision,
                tol,
                &eval(ap),
                Champion::Evaluated(&champ),
            )
        };
        assert!(gate(0.6, 0.0).promote);
        assert!(gate(0.5, 0.0).promote);
        let worse = gate(0.49, 0.0);
        assert!(!worse.promote);
        assert_eq!(worse.reason, Reason::Worse);
        assert_eq!(worse.verdict(), "rejected");
        assert!(
            worse.explain().contains("worse by 0.0100"),
            "{}",
            worse.explain()
        );
        // Within tolerance: promoted; beyond it: rejected.
        assert!(gate(0.49, 0.02).promote);
        assert!(!gate(0.47, 0.02).promote);
    }

    #[test]
    fn the_chosen_metric_decides() {
        let champ = Evaluation {
            roc_auc: 0.95,
            average_precision: 0.3,
            card_precision_at_100: 0.1,
        };
        let cand = Evaluation {
            roc_auc: 0.90,
            average_precision: 0.4,
            card_precision_at_100: 0.1,
        };
        let by = |m| decide(m, 0.0, &cand, Champion::Evaluated(&champ)).promote;
        assert!(by(GateMetric::AveragePrecision));
        assert!(!by(GateMetric::RocAuc));
        assert!(by(GateMetric::CardPrecisionAt100));
    }

    #[test]
    fn non_numbers_are_handled() {
        let nan = eval(f64::NAN);
        let d = decide(GateMetric::AveragePrecision, 0.0, &nan, Champion::Absent);
        assert!(!d.promote);
        assert_eq!(d.reason, Reason::CandidateInvalid);
        let d = decide(
            GateMetric::AveragePrecision,
            0.0,
            &eval(0.1),
            Champion::Evaluated(&nan),
        );
        assert!(d.promote);
        assert_eq!(d.reason, Reason::ChampionUnusable);
        let d = decide(
            GateMetric::AveragePrecision,
            0.0,
            &eval(0.1),
            Champion::Unusable("checksum mismatch"),
        );
        assert!(d.promote);
        assert_eq!(d.reason, Reason::ChampionUnusable);
    }

    #[test]
    fn metric_names_parse() {
        for m in GateMetric::ALL {
            assert_eq!(m.name().parse::<GateMetric>(), Ok(m));
        }
        assert_eq!("AP".parse::<GateMetric>(), Ok(GateMetric::AveragePrecision));
        assert!("f1".parse::<GateMetric>().is_err());
        assert_eq!(GateMetric::default(), GateMetric::AveragePrecision);
    }
}
