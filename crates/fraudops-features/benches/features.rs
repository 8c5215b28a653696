//! Feature throughput, batch and online (`cargo bench -p fraudops-features`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_features::OnlineFeatures;
use fraudops_features::batch::{compute, processing_order};

fn features(c: &mut Criterion) {
    let config = SimulatorConfig {
        n_customers: 1_000,
        n_terminals: 2_000,
        n_days: 60,
        ..SimulatorConfig::default()
    };
    let txs = generate(&config).expect("valid simulator config");
    let mut group = c.benchmark_group("features");
    group.sample_size(10);
    group.throughput(Throughput::Elements(txs.len() as u64));
    group.bench_function("batch", |b| b.iter(|| compute(&txs)));
    let order = processing_order(&txs);
    group.bench_function("online", |b| {
        b.iter(|| {
            let mut online = OnlineFeatures::new();
            let mut acc = 0.0;
            for &i in &order {
                acc += online.process(&txs[i as usize])[3];
            }
            acc
        })
    });
    group.finish();
}

criterion_group!(benches, features);
criterion_main!(benches);
