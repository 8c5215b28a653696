//! `fraudops validate`: the quality floor a trained artifact must clear before it may be
//! registered (the DAG's validate task). Loads it exactly as `serve` would (checksum, feature
//! layout, trees) and checks its recorded test-window metrics against minimums.
//!
//! Why besides the champion gate: the gate compares with the champion, so on a first version or a
//! broken champion it promotes anything; this floor catches a model that is bad in absolute terms.

use std::path::PathBuf;

use anyhow::Context;
use fraudops_model::Model;

/// The artifact and the minimums.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The trained artifact to check.
    #[arg(long, env = "VALIDATE_MODEL", default_value = "out/model/model.json")]
    pub model: PathBuf,
    /// Minimum ROC AUC (0.5 is a coin toss).
    #[arg(long, env = "VALIDATE_MIN_ROC_AUC", default_value_t = 0.5)]
    pub min_roc_auc: f64,
    /// Minimum average precision.
    #[arg(long, env = "VALIDATE_MIN_AVERAGE_PRECISION", default_value_t = 0.0)]
    pub min_average_precision: f64,
    /// Minimum Card Precision@100.
    #[arg(long, env = "VALIDATE_MIN_CARD_PRECISION", default_value_t = 0.0)]
    pub min_card_precision: f64,
    /// Minimum test-window rows behind those metrics.
    #[arg(long, env = "VALIDATE_MIN_TEST_ROWS", default_value_t = 1)]
    pub min_test_rows: u64,
}

/// The failed checks of `model`, empty when it passes.
fn violations(model: &Model, args: &Args) -> Vec<String> {
    let m = &model.artifact().metrics;
    let mut failed = Vec::new();
    let mut floor = |name: &str, value: f64, min: f64| {
        if !(value.is_finite() && value >= min) {
            failed.push(format!("{name} {value} is below the minimum {min}"));
        }
    };
    floor("roc_auc", m.roc_auc, args.min_roc_auc);
    floor(
        "average_precision",
        m.average_precision,
        args.min_average_precision,
    );
    floor(
        "card_precision_at_100",
        m.card_precision_at_100,
        args.min_card_precision,
    );
    if m.test_rows < args.min_test_rows {
        failed.push(format!(
            "test_rows {} is below the minimum {}",
            m.test_rows, args.min_test_rows
        ));
    }
    failed
}

/// Prints the verdict; fails (non-zero exit) naming every check that failed.
pub fn run(args: Args) -> anyhow::Result<()> {
    let model = Model::load(&args.model)
        .with_context(|| format!("{} does not load as a served model", args.model.display()))?;
    let m = &model.artifact().metrics;
    println!(
        "model {} ({} trees): roc_auc {:.4}, average_precision {:.4}, card_precision_at_100 {:.4}, \
         {} test rows",
        model.version(),
        model.artifact().ensemble.trees.len(),
        m.roc_auc,
        m.average_precision,
        m.card_precision_at_100,
        m.test_rows
    );
    let failed = violations(&model, &args);
    anyhow::ensure!(
        failed.is_empty(),
        "{} failed validation: {}",
        args.model.display(),
        failed.join("; ")
    );
    println!("validate: OK");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(min_auc: f64) -> Args {
        Args {
            model: PathBuf::new(),
            min_roc_auc: min_auc,
            min_average_precision: 0.0,
            min_card_precision: 0.0,
            min_test_rows: 1,
        }
    }

    #[test]
    fn the_embedded_model_clears_the_default_floor_and_not_an_impossible_one() {
        let model = Model::embedded().expect("embedded model");
        assert!(violations(&model, &args(0.5)).is_empty());
        let failed = violations(&model, &args(1.1));
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].starts_with("roc_auc"), "{failed:?}");
    }
}
