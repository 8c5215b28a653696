//! Training time on the default window (`cargo bench -p fraudops-train`).
//!
//! The data is what the embedded model is trained on: the simulator's reference scale (seed 0, ≈1.75 M
//! transactions), generated in memory, features computed once; the bench measures
//! [`fraudops_train::train`] with the default configuration: fit on the 7-day training window (≈67 k
//! rows) with the default hyper-parameters, then scoring the test window in served form. One iteration
//! takes seconds, so the group runs the minimum of 10 samples.

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_train::{TrainConfig, prepare, train};

fn training(c: &mut Criterion) {
    let txs = generate(&SimulatorConfig::default())
        .unwrap_or_else(|e| panic!("reference simulator config: {e}"));
    let config = TrainConfig::default();
    let data = prepare(&txs, &config.split, |_| {})
        .unwrap_or_else(|e| panic!("default split on reference data: {e}"));
    eprintln!(
        "train bench: {} transactions, {} training rows, {} test rows",
        txs.len(),
        data.split.train.len(),
        data.split.test.len()
    );

    let mut group = c.benchmark_group("train");
    group.sample_size(10);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("default_window", |b| {
        b.iter(|| {
            train(&data, "", &config, |_| {})
                .unwrap_or_else(|e| panic!("training failed: {e}"))
                .metrics
                .roc_auc
        })
    });
    group.finish();
}

criterion_group!(benches, training);
criterion_main!(benches);
