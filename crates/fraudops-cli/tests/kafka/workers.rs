//! Three stream workers in one consumer group, sharing one Redis feature store, score every transaction of
//! a simulated file exactly as the batch definition (training) does.
//!
//! **What is compared.** A prediction carries the probability, not the vector; but a prediction is a pure
//! function of the feature vector (the same embedded model, compiled trees, no randomness, no state), and
//! the probability travels through JSON with shortest round-trip formatting and exact parsing. So a
//! probability bit-identical to `Model::predict(batch row)` for every transaction is what a bit-identical
//! vector shows from the outside; a single window off by one moves it almost always (the check at the end
//! makes sure the windows are not all zero, where it would prove nothing).
//!
//! **Why three workers can be exact.** Customer windows: the attack keys a transaction by its customer, so
//! all of a card's events sit on one partition, reach one worker in file order and the store in that order.
//! Terminal windows: they span every partition, but count only transactions older than the 7-day delay
//! (`(t - 7d - w, t - 7d]`), and `fraudops labels` adds every labelled transaction to its terminal's sets
//! whoever scored it. The labels here are produced after a 3-day delay and applied before any worker
//! scores, so every transaction a terminal window can reach is in the store whatever order the partitions
//! are read in. And they are read in no particular order: 60 days replayed in 4 seconds put a terminal's
//! events on up to 12 partitions and three workers hours or days of event time apart, so the store must
//! not forget what an earlier event's 30-day window (`(t - 37d, t - 7d]`) still needs when a later one
//! comes first.
//!
//! **How it runs.** One replay of the file puts its labels on `fraud-labels` (its transactions go to a side
//! topic), `fraudops labels` applies them; then the three workers join the group and wait until each owns
//! some of the 12 partitions (the first one to join would otherwise take all of them and finish alone), and
//! a second replay of the same file (same ids and times on a first pass: `source.rs`) feeds them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::time::Duration;

use fraudops_data::Transaction;
use fraudops_data::reader::read_transactions;
use fraudops_features::batch;
use fraudops_features::definition::{FEATURE_NAMES, FeatureVector};
use fraudops_model::Model;

use crate::helpers::{Broker, Proc, Redis, fraudops_ok, free_port, metric, wait_until};

const NAME: &str = "three stream workers, bit-identical to the batch definition";
const GROUP: &str = "three-workers";
const PREDICTIONS: &str = "predictions-three-workers";
const WORKERS: usize = 3;
const PARTITIONS: i32 = 12;

/// `fraudops simulate`: 100 cards, 200 terminals, 60 days (about 9,000 transactions, a quarter fraud: the
/// compromised terminals and cards of a small population), so every window, the 30-day terminal window
/// past its 7-day delay included, fills.
fn simulate(broker: &Broker) -> std::path::PathBuf {
    let file = broker.path("three-workers.csv");
    fraudops_ok(&[
        "simulate",
        "--out",
        file.to_str().expect("utf-8 path"),
        "--customers",
        "100",
        "--terminals",
        "200",
        "--days",
        "60",
        "--seed",
        "20",
    ]);
    file
}

/// Replays `file` once, in file order, over `seconds`: its `n` rows exactly (rate `n / seconds`).
fn replay(broker: &Broker, name: &str, file: &Path, n: usize, seconds: u32, extra: &[&str]) {
    let phases = format!("{}:{seconds}s", n as f64 / f64::from(seconds));
    let port = free_port().to_string();
    let mut args = vec![
        "attack",
        "--replay",
        file.to_str().expect("utf-8 path"),
        "--phases",
        &phases,
        "--metrics-port",
        &port,
    ];
    args.extend_from_slice(extra);
    let mut attack = broker.spawn(name, &args, &[]);
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());
}

/// The partitions a worker owns now, from its `partitions_assigned` / `partitions_revoked` log lines.
fn owned_partitions(worker: &Proc) -> BTreeSet<i32> {
    let mut owned = BTreeSet::new();
    for line in worker.output().lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let partitions: Vec<i32> = v["partitions"]
            .as_str()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        match v["event"].as_str() {
            Some("partitions_assigned") => owned.extend(partitions),
            Some("partitions_revoked") => partitions.iter().for_each(|p| {
                owned.remove(p);
            }),
            _ => {}
        }
    }
    owned
}

/// The feature's column in the model input.
fn column(name: &str) -> usize {
    FEATURE_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| panic!("no feature {name}"))
}

/// One line per transaction whose worker score differs from the batch one, with its batch vector.
fn describe(
    tx: &Transaction,
    row: &FeatureVector,
    expected: f64,
    got: f64,
    replica: &str,
) -> String {
    let features: Vec<String> = FEATURE_NAMES
        .iter()
        .zip(row)
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    format!(
        "tx {} (customer {}, terminal {}, time {}) by {replica}: batch {expected} vs stream {got}; batch vector: {}",
        tx.transaction_id,
        tx.customer_id,
        tx.terminal_id,
        fraudops_data::writer::format_datetime(tx.tx_datetime),
        features.join(" ")
    )
}

pub fn three_workers_score_every_transaction_as_the_batch_definition() {
    let broker = Broker::start();
    let Some(redis) = Redis::start_or_skip(&broker, NAME) else {
        return;
    };
    let store = redis.url();

    // The batch definition: the file read as `fraudops train` reads it, features over the whole file,
    // the embedded model.
    let file = simulate(&broker);
    let outcome = read_transactions(&file).expect("read the simulated file");
    assert_eq!(outcome.report.total_skipped(), 0, "{}", outcome.report);
    let txs = outcome.transactions;
    let n = txs.len();
    let matrix = batch::compute(&txs);
    let model = Model::embedded().expect("embedded model");
    let by_id: HashMap<u64, usize> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| (t.transaction_id, i))
        .collect();
    assert_eq!(by_id.len(), n, "the file's ids are unique");

    // The data exercises every window: else equal scores would prove nothing.
    let risk = ["1DAY", "7DAY", "30DAY"].map(|w| column(&format!("TERMINAL_ID_RISK_{w}_WINDOW")));
    let terminal_nb = column("TERMINAL_ID_NB_TX_30DAY_WINDOW");
    let customer_nb =
        ["1DAY", "7DAY", "30DAY"].map(|w| column(&format!("CUSTOMER_ID_NB_TX_{w}_WINDOW")));
    let count = |f: &dyn Fn(&FeatureVector) -> bool| matrix.iter_rows().filter(|r| f(r)).count();
    let with_risk = count(&|r| risk.iter().any(|&c| r[c] > 0.0));
    let with_risk_30 = count(&|r| r[risk[2]] > 0.0);
    let with_terminal_history = count(&|r| r[terminal_nb] > 0.0);
    let with_customer_1d = count(&|r| r[customer_nb[0]] > 1.0);
    let with_customer_30d = count(&|r| r[customer_nb[2]] > 1.0);
    println!(
        "    {n} transactions ({} fraud); rows with terminal risk > 0: {with_risk} (30-day: {with_risk_30}), \
         terminal 30-day count > 0: {with_terminal_history}, customer count > 1: {with_customer_1d} (1 day), \
         {with_customer_30d} (30 days)",
        txs.iter().filter(|t| t.tx_fraud).count()
    );
    assert!(n >= 3000, "{n} transactions");
    assert!(
        with_risk >= n / 4,
        "{with_risk} of {n} rows with terminal risk"
    );
    assert!(
        with_terminal_history >= n / 2,
        "{with_terminal_history} of {n}"
    );
    assert!(with_customer_1d >= n / 4, "{with_customer_1d} of {n}");
    assert!(with_customer_30d >= n / 2, "{with_customer_30d} of {n}");

    // Labels first: a replay whose transactions go to a side topic, its labels to fraud-labels after 3 days
    // of event time, applied to the store by `fraudops labels`.
    replay(
        &broker,
        "attack-labels",
        &file,
        n,
        1,
        &["--topic", "labels-only-transactions", "--label-delay", "3d"],
    );
    let labels_sent = broker.read("fraud-labels").len();
    assert!(
        labels_sent >= n / 2,
        "{labels_sent} labels for {n} transactions"
    );
    let labels_port = free_port();
    let mut labels = broker.spawn(
        "labels",
        &[
            "labels",
            "--feature-store",
            &store,
            "--feature-store-timeout",
            "5s",
            "--metrics-port",
            &labels_port.to_string(),
        ],
        &[],
    );
    wait_until(
        "every label applied to the store",
        Duration::from_secs(60),
        || {
            assert!(labels.is_running(), "labels exited:\n{}", labels.output());
            let applied = metric(labels_port, "fraudops_labels_applied_total", &[]).unwrap_or(0.0);
            (applied == labels_sent as f64)
                .then_some(())
                .ok_or(format!("{applied} of {labels_sent} applied"))
        },
    );
    assert_eq!(
        metric(labels_port, "fraudops_labels_invalid_total", &[]),
        Some(0.0)
    );
    assert!(
        labels.terminate(Duration::from_secs(20)),
        "{}",
        labels.output()
    );

    // Three workers in one group, each owning some partitions before any transaction arrives.
    let ports: Vec<u16> = (0..WORKERS).map(|_| free_port()).collect();
    let mut workers: Vec<Proc> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let replica = format!("worker-{i}");
            broker.spawn(
                &replica,
                &[
                    "stream",
                    "--in-process",
                    "--feature-store",
                    &store,
                    "--feature-store-timeout",
                    "5s",
                    "--group",
                    GROUP,
                    "--output-topic",
                    PREDICTIONS,
                    "--metrics-port",
                    &port.to_string(),
                    "--lag-interval",
                    "200ms",
                ],
                &[("REPLICA_ID", replica.as_str())],
            )
        })
        .collect();
    wait_until(
        "the 12 partitions shared by the three workers",
        Duration::from_secs(60),
        || {
            let owned: Vec<BTreeSet<i32>> = workers
                .iter_mut()
                .map(|w| {
                    assert!(w.is_running(), "a worker exited:\n{}", w.output());
                    owned_partitions(w)
                })
                .collect();
            let total: usize = owned.iter().map(BTreeSet::len).sum();
            let all: BTreeSet<i32> = owned.iter().flatten().copied().collect();
            (owned.iter().all(|o| !o.is_empty())
                && total == PARTITIONS as usize
                && all == (0..PARTITIONS).collect())
            .then_some(())
            .ok_or(format!("{owned:?}"))
        },
    );

    // The same file again, now into transactions-input (a first pass keeps the file's ids and times).
    replay(
        &broker,
        "attack-transactions",
        &file,
        n,
        4,
        &["--labels", "off"],
    );
    let inputs = broker.read("transactions-input");
    assert_eq!(inputs.len(), n, "one message per row");

    // Every input scored (at least once).
    let mut scored: HashMap<u64, (f64, String)> = HashMap::new();
    let mut predictions = 0;
    wait_until(
        "a prediction for every transaction",
        Duration::from_secs(60),
        || {
            for w in &mut workers {
                assert!(w.is_running(), "a worker exited:\n{}", w.output());
            }
            let all = broker.predictions(PREDICTIONS);
            predictions = all.len();
            for p in all {
                let id = crate::helpers::prediction_id(&p);
                let probability = p.prediction.fraud_probability;
                let replica = p.prediction.replica_id;
                match scored.get(&id) {
                    Some((first, by)) => assert_eq!(
                        first.to_bits(),
                        probability.to_bits(),
                        "transaction {id} scored twice with different probabilities: \
                         {first} by {by}, {probability} by {replica}"
                    ),
                    None => {
                        scored.insert(id, (probability, replica));
                    }
                }
            }
            (scored.len() == n)
                .then_some(())
                .ok_or(format!("{} of {n} transactions scored", scored.len()))
        },
    );
    for (i, (w, port)) in workers.iter_mut().zip(&ports).enumerate() {
        assert_eq!(
            metric(*port, "stream_feature_store_errors_total", &[]).unwrap_or(0.0),
            0.0,
            "worker-{i} scored without the store"
        );
        assert_eq!(
            metric(*port, "stream_dead_letters_total", &[]).unwrap_or(0.0),
            0.0
        );
        assert!(w.terminate(Duration::from_secs(30)), "{}", w.output());
    }

    // Every worker took part.
    let mut share: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, replica) in scored.values() {
        *share.entry(replica.as_str()).or_insert(0) += 1;
    }
    println!(
        "    {predictions} predictions for {n} transactions ({} repeated); scored by {share:?}; {labels_sent} labels applied first",
        predictions - n
    );
    assert_eq!(share.len(), WORKERS, "every worker scored: {share:?}");

    // Bit for bit the batch definition's score, for every transaction.
    let mut differ = Vec::new();
    for (id, (got, replica)) in &scored {
        let i = *by_id
            .get(id)
            .unwrap_or_else(|| panic!("prediction for {id}, not in the file"));
        let expected = model.predict(matrix.row(i)).fraud_probability;
        if expected.to_bits() != got.to_bits() {
            differ.push((txs[i].tx_datetime, i, *got, replica.clone(), expected));
        }
    }
    differ.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let lines: Vec<String> = differ
        .iter()
        .take(10)
        .map(|(_, i, got, replica, expected)| {
            describe(&txs[*i], matrix.row(*i), *expected, *got, replica)
        })
        .collect();
    assert!(
        differ.is_empty(),
        "{} of {n} transactions scored differently from the batch definition (first 10 by time):\n{}",
        differ.len(),
        lines.join("\n")
    );
    // The attack's events are synthetic: all of that history lives in the store's synthetic namespace,
    // none of it in a real card's or terminal's keys (docs/feature-store.md, "Synthetic traffic apart").
    let keys = |pattern: &str| -> usize {
        redis
            .cli(&["--scan", "--pattern", pattern])
            .lines()
            .filter(|l| !l.is_empty())
            .count()
    };
    let (synthetic_cards, real_cards, real_terminals) = (
        keys("fraudops:v3:{sync*"),
        keys("fraudops:v3:{c*"),
        keys("fraudops:v2:{t*"),
    );
    assert!(
        synthetic_cards > 0,
        "the attack's cards are in the synthetic namespace"
    );
    assert_eq!(
        (real_cards, real_terminals),
        (0, 0),
        "the attack wrote into real cards' or terminals' keys"
    );
}
