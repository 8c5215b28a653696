//! Scoring speed of the embedded default model (`cargo bench -p fraudops-model`): single-row latency
//! (the `serve` hot path; target under 2 µs) and batch throughput (`predict_batch`, rows/s).
//!
//! Rows are real feature vectors of simulated transactions, so tree walks take the paths they take in
//! production; the single-row bench cycles through them so the branch predictor cannot learn one path.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_features::{FeatureVector, batch};
use fraudops_model::{Model, Prediction};

/// Rows scored by the batch bench (and cycled through by the single-row bench).
const BATCH_ROWS: usize = 10_000;

fn rows() -> Vec<FeatureVector> {
    let config = SimulatorConfig {
        n_customers: 500,
        n_terminals: 1_000,
        n_days: 60,
        seed: 7,
        ..SimulatorConfig::default()
    };
    let txs = generate(&config).unwrap_or_else(|e| panic!("bench simulator config: {e}"));
    let features = batch::compute(&txs);
    // The last rows have a full 30-day history, like live traffic.
    let skip = features.rows().saturating_sub(BATCH_ROWS);
    features.iter_rows().skip(skip).copied().collect()
}

fn predict(c: &mut Criterion) {
    let model = Model::embedded().unwrap_or_else(|e| panic!("embedded model: {e}"));
    let rows = rows();
    assert_eq!(rows.len(), BATCH_ROWS, "the bench needs {BATCH_ROWS} rows");

    let mut group = c.benchmark_group("predict");
    group.throughput(Throughput::Elements(1));
    let mut i = 0usize;
    group.bench_function("single_row", |b| {
        b.iter(|| {
            i = (i + 1) % rows.len();
            model.predict(black_box(&rows[i]))
        })
    });

    group.throughput(Throughput::Elements(BATCH_ROWS as u64));
    let mut out = vec![
        Prediction {
            fraud_probability: 0.0,
            is_fraud: false,
            confidence: 0.0,
        };
        BATCH_ROWS
    ];
    group.bench_function("batch_10k", |b| {
        b.iter(|| {
            model.predict_batch(black_box(&rows), &mut out);
            out[BATCH_ROWS - 1].fraud_probability
        })
    });
    group.finish();
}

criterion_group!(benches, predict);
criterion_main!(benches);
