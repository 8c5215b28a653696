//! The training job: features → time split → fit → evaluate the served form → sealed artifact.

use std::time::Instant;

use fraudops_data::Transaction;
use fraudops_features::{FeatureMatrix, N_FEATURES, batch};
use fraudops_model::{Model, ModelArtifact, ModelMetrics, Reference, TrainingWindow};

use crate::booster::{self, BoosterError, BoosterParams, LIBRARY};
use crate::metrics::{ScoredCard, average_precision, card_precision_at_k, roc_auc};
use crate::split::{Split, SplitConfig, SplitError, time_split};

/// Everything `fraudops train` decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Train and test windows.
    pub split: SplitConfig,
    /// Booster hyper-parameters.
    pub params: BoosterParams,
    /// Probability at or above which the served model flags fraud.
    pub decision_threshold: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            split: SplitConfig::default(),
            params: BoosterParams::default(),
            decision_threshold: 0.5,
        }
    }
}

/// Progress milestones, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Computing features for this many transactions.
    Features(usize),
    /// Fitting on this many training rows.
    Fit(usize),
    /// Scoring this many test rows.
    Evaluate(usize),
}

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The windows do not fit the data.
    #[error(transparent)]
    Split(#[from] SplitError),
    /// The booster failed.
    #[error(transparent)]
    Booster(#[from] BoosterError),
    /// The fitted trees could not be compiled (a bug, never a data problem).
    #[error("the trained model is invalid: {0}")]
    Artifact(#[from] fraudops_model::ArtifactError),
}

/// Test-window quality of any model (a new one, or the current champion for the promotion gate).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// ROC AUC.
    pub roc_auc: f64,
    /// Average precision.
    pub average_precision: f64,
    /// Card Precision@100.
    pub card_precision_at_100: f64,
}

/// Data prepared once and shared by training and by evaluating other models on the same window.
pub struct Prepared<'a> {
    /// The transactions.
    pub transactions: &'a [Transaction],
    /// Their features, aligned.
    pub features: FeatureMatrix,
    /// The split.
    pub split: Split,
}

/// Computes features over the whole file (history before the training window counts) and splits it.
pub fn prepare<'a>(
    transactions: &'a [Transaction],
    split: &SplitConfig,
    mut on_stage: impl FnMut(Stage),
) -> Result<Prepared<'a>, TrainError> {
    on_stage(Stage::Features(transactions.len()));
    let features = batch::compute(transactions);
    let split = time_split(transactions, split)?;
    Ok(Prepared {
        transactions,
        features,
        split,
    })
}

/// Scores the test window with `model` exactly as it will be served.
pub fn evaluate(model: &Model, data: &Prepared<'_>) -> Evaluation {
    evaluate_scores(&test_scores(model, data), data)
}

/// The served probabilities of the test window, aligned with `data.split.test`.
fn test_scores(model: &Model, data: &Prepared<'_>) -> Vec<f64> {
    data.split
        .test
        .iter()
        .map(|&i| model.predict(data.features.row(i)).fraud_probability)
        .collect()
}

/// The test-window metrics of any scorer, given its scores aligned with `data.split.test`: lets the
/// booster comparison (`examples/compare_boosters.rs`) judge other libraries by exactly the same protocol.
///
/// # Panics
/// If `scores` is not as long as the test split (a caller bug, never a data problem).
pub fn evaluate_scores(scores: &[f64], data: &Prepared<'_>) -> Evaluation {
    let (split, txs) = (&data.split, data.transactions);
    assert_eq!(
        scores.len(),
        split.test.len(),
        "one score per test row is required"
    );
    let labels: Vec<bool> = split.test.iter().map(|&i| txs[i].tx_fraud).collect();
    let cards: Vec<ScoredCard> = split
        .test
        .iter()
        .zip(&split.test_day)
        .zip(scores)
        .map(|((&i, &day), &score)| ScoredCard {
            day,
            customer_id: txs[i].customer_id,
            score,
            fraud: txs[i].tx_fraud,
        })
        .collect();
    Evaluation {
        roc_auc: roc_auc(scores, &labels).unwrap_or(f64::NAN),
        average_precision: average_precision(scores, &labels).unwrap_or(f64::NAN),
        card_precision_at_100: card_precision_at_k(&cards, 100),
    }
}

/// Trains and evaluates a model; the artifact carries its metrics and provenance.
pub fn train(
    data: &Prepared<'_>,
    data_sha256: &str,
    config: &TrainConfig,
    mut on_stage: impl FnMut(Stage),
) -> Result<ModelArtifact, TrainError> {
    let (split, txs) = (&data.split, data.transactions);
    let mut x = Vec::with_capacity(split.train.len() * N_FEATURES);
    for &i in &split.train {
        x.extend_from_slice(data.features.row(i));
    }
    let y: Vec<bool> = split.train.iter().map(|&i| txs[i].tx_fraud).collect();

    on_stage(Stage::Fit(y.len()));
    let started = Instant::now();
    let ensemble = booster::fit(&x, N_FEATURES, &y, &config.params)?;
    let train_seconds = started.elapsed().as_secs_f64();

    on_stage(Stage::Evaluate(split.test.len()));
    let window = TrainingWindow {
        train_start: config.split.train_start.to_string(),
        train_days: config.split.train_days,
        delay_days: config.split.delay_days,
        test_days: config.split.test_days,
        data_sha256: data_sha256.to_owned(),
    };
    let provisional = ModelMetrics {
        roc_auc: 0.0,
        average_precision: 0.0,
        card_precision_at_100: 0.0,
        train_rows: split.train.len() as u64,
        test_rows: split.test.len() as u64,
        train_seconds,
    };
    let seal = |metrics, ensemble| {
        ModelArtifact::seal(
            LIBRARY.to_owned(),
            config.params.to_map(),
            window.clone(),
            metrics,
            config.decision_threshold,
            ensemble,
        )
    };
    // Evaluate the compiled, served form — not the library's — so the recorded metrics are the served ones.
    let model = Model::from_artifact(seal(provisional, ensemble.clone()))?;
    let scores = test_scores(&model, data);
    let eval = evaluate_scores(&scores, data);
    // Drift reference: features as the model learned them (training window), the score as it is served on
    // data the model has not seen (test window), since training scores are overfit towards 0 and 1.
    // Both also per time-of-week class, so a live window of one part of the week is compared with the same
    // part (fraudops_model::reference).
    let time = |rows: &[usize]| -> Vec<i64> { rows.iter().map(|&i| txs[i].tx_datetime).collect() };
    let reference = Reference::fit(&scores, "test window", &x, N_FEATURES, "training window")
        .with_time_of_week(&scores, &time(&split.test), &x, &time(&split.train));
    Ok(seal(
        ModelMetrics {
            roc_auc: eval.roc_auc,
            average_precision: eval.average_precision,
            card_precision_at_100: eval.card_precision_at_100,
            ..provisional
        },
        ensemble,
    )
    .with_reference(reference))
}
