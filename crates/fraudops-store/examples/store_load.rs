//! Drives the feature store as a fleet of scorers does, without an API in front: what one Redis (or one
//! shard) costs per direct call, measured where nothing else competes for its core
//! (`scripts/bench-store.sh` runs it on the API's core while the API is idle):
//! `cargo run --release -p fraudops-store --example store_load -- --url redis://… [--seconds 10]`.
//!
//! Each call is what a direct `POST /predict` sends the store: one event observed (its windows read and
//! the transaction recorded, one script call) and its score recorded (batched, on a connection of its
//! own, as the API's recorder does); with `--labels`, each transaction's label is applied too (batches
//! of 256, as the label consumer does, its score read back). Transactions are the benchmark's: call `n`
//! is transaction `n` of card `n × 2654435761 mod cards` at terminal `n × 40503 mod 10000`, 30 s after
//! call `n − 1` (`--offset` goes on where an earlier run stopped). Prints one JSON line.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use fraudops_store::{
    FeatureStore, Label, Namespace, Observation, ScoreRecord, ScoreRecorder, StoredScore,
};

#[derive(Parser)]
struct Args {
    /// The store (one URL, or several comma-separated for a cluster).
    #[arg(long)]
    url: String,
    /// How many cards the transactions spread over (1,000: about 107 per card in 37 days).
    #[arg(long, default_value_t = 1_000)]
    cards: u64,
    /// The first transaction's number (go on where an earlier run stopped).
    #[arg(long, default_value_t = 0)]
    offset: u64,
    /// How long to run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Calls in flight at once (the fleet's concurrency).
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Apply every transaction's label as well.
    #[arg(long)]
    labels: bool,
}

/// Event time of call 0 (2018-08-01), as bench-store.sh's wrk script.
const START: i64 = 1_533_081_600;

fn observation(n: u64, cards: u64) -> Observation {
    Observation {
        transaction_id: n.to_string(),
        customer_id: n.wrapping_mul(2_654_435_761) % cards,
        terminal_id: n.wrapping_mul(40_503) % 10_000,
        time: START + 30 * i64::try_from(n).unwrap_or(i64::MAX / 60),
        amount: 5.0 + (n * 7_919 % 20_000) as f64 / 100.0,
        record: true,
        namespace: Namespace::Real,
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let store = FeatureStore::connect(&args.url, Duration::from_secs(5))?;
    let (recorder, writer) = ScoreRecorder::spawn(store.own_connection()?, 100_000, |n, e| {
        eprintln!("{n} scores lost: {e}")
    });
    let (labels_tx, mut labels_rx) = tokio::sync::mpsc::channel::<Label>(100_000);
    let label_store = store.own_connection()?;
    let labeller = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(256);
        while labels_rx.recv_many(&mut batch, 256).await > 0 {
            label_store.apply_labels(&batch).await?;
            batch.clear();
        }
        Ok::<_, fraudops_store::StoreError>(())
    });
    let next = Arc::new(AtomicU64::new(args.offset));
    let started = Instant::now();
    let until = started + Duration::from_secs(args.seconds);
    let workers = (0..args.concurrency).map(|_| {
        let (store, recorder, next, labels) = (
            store.clone(),
            recorder.clone(),
            next.clone(),
            labels_tx.clone(),
        );
        let (cards, with_labels) = (args.cards, args.labels);
        tokio::spawn(async move {
            while Instant::now() < until {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let o = observation(n, cards);
                store.observe(std::slice::from_ref(&o)).await?;
                let fraud = n % 50 == 0;
                recorder.record(ScoreRecord {
                    transaction_id: o.transaction_id.clone(),
                    time: o.time,
                    namespace: o.namespace,
                    score: StoredScore {
                        fraud_probability: if fraud { 0.9 } else { 0.1 },
                        is_fraud: fraud,
                        model_version: "gbdt-000000000000".into(),
                    },
                });
                if with_labels {
                    let label = Label {
                        transaction_id: o.transaction_id,
                        terminal_id: o.terminal_id,
                        time: o.time,
                        fraud,
                        namespace: o.namespace,
                    };
                    if labels.send(label).await.is_err() {
                        break;
                    }
                }
            }
            Ok::<_, fraudops_store::StoreError>(())
        })
    });
    for worker in futures::future::join_all(workers).await {
        worker??;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(labels_tx);
    labeller.await??;
    recorder.stop();
    writer.await?;
    let calls = next.load(Ordering::Relaxed) - args.offset;
    println!(
        "{{\"calls\": {calls}, \"seconds\": {seconds:.3}, \"calls_per_second\": {:.0}, \"next_offset\": {}}}",
        calls as f64 / seconds,
        args.offset + calls
    );
    Ok(())
}
