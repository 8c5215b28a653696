//! Throughput of the data path: simulating, writing and reading transactions, in rows per second.
//!
//! Moderate scale (1000 customers, 2000 terminals, 30 days ≈ 58 k rows) so each bench takes seconds; the
//! reference-scale wall time is printed by the ignored test `reference_scale_matches_the_handbook`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fraudops_data::reader::read_from;
use fraudops_data::simulator::{SimulatorConfig, TransactionStream, generate};
use fraudops_data::writer::write_csv;

fn config() -> SimulatorConfig {
    SimulatorConfig {
        n_customers: 1000,
        n_terminals: 2000,
        n_days: 30,
        seed: 1,
        ..SimulatorConfig::default()
    }
}

fn data_path(c: &mut Criterion) {
    let config = config();
    let txs = generate(&config).unwrap_or_default();
    let rows = txs.len() as u64;
    let mut csv = Vec::new();
    if let Err(e) = write_csv(&mut csv, &txs) {
        panic!("writing the bench input failed: {e}");
    }

    let mut group = c.benchmark_group("data");
    group.sample_size(10);
    group.warm_up_time(std::time::Duration::from_secs(1));
    group.measurement_time(std::time::Duration::from_secs(3));
    group.throughput(Throughput::Elements(rows));
    group.bench_function("generate", |b| b.iter(|| generate(black_box(&config))));
    group.bench_function("stream", |b| {
        b.iter(|| TransactionStream::new(black_box(&config)).map(|s| s.take(rows as usize).count()))
    });
    group.bench_function("write_csv", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(csv.len());
            write_csv(&mut out, black_box(&txs)).map(|()| out.len())
        })
    });
    group.bench_function("read_csv", |b| {
        b.iter(|| read_from(black_box(&csv[..])).map(|o| o.transactions.len()))
    });
    group.finish();
}

criterion_group!(benches, data_path);
criterion_main!(benches);
