//! `fraudops stream`: every input gets its prediction, crashes lose nothing, poison is set aside, lag is
//! visible.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use fraudops_data::Transaction;
use fraudops_data::writer::parse_datetime;
use fraudops_wire::{FeatureSource, ScoredBy, TransactionEvent};

use crate::helpers::{
    Api, Broker, Proc, free_port, input_ids, metric, prediction_id, wait_for, wait_until,
};

const GROUP: &str = "group=\"fraudops-stream\"";

/// Waits until the worker on `port` serves metrics and has measured its group's queue once.
fn wait_until_up(worker: &mut Proc, port: u16) {
    wait_for("the worker to start", Duration::from_secs(30), || {
        assert!(worker.is_running(), "worker exited:\n{}", worker.output());
        metric(port, "kafka_queue_length", &[GROUP]).is_some()
    });
}

fn consumed(port: u16) -> f64 {
    metric(port, "kafka_messages_consumed_total", &[]).unwrap_or(0.0)
}

fn run_attack(broker: &Broker, phases: &str) {
    let port = free_port().to_string();
    let mut attack = broker.spawn(
        "attack",
        &["attack", "--phases", phases, "--metrics-port", &port],
        &[],
    );
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());
}

pub fn exactly_one_prediction_per_input_via_the_api() {
    let broker = Broker::start();
    let api = Api::start(&broker, "api-e2e");
    run_attack(&broker, "500:2s");
    let inputs: HashMap<u64, (i32, i64)> = broker
        .read("transactions-input")
        .iter()
        .map(|r| {
            let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("event JSON");
            (
                v["transaction_id"].as_u64().expect("id"),
                (r.partition, r.offset),
            )
        })
        .collect();
    assert_eq!(inputs.len(), 1000);

    let port = free_port();
    let mut worker = broker.spawn(
        "worker-http",
        &[
            "stream",
            "--api-url",
            &api.url,
            "--metrics-port",
            &port.to_string(),
            "--lag-interval",
            "200ms",
        ],
        &[("REPLICA_ID", "worker-e2e")],
    );
    wait_until(
        "1000 events consumed and committed",
        Duration::from_secs(60),
        || {
            let (n, queue) = (consumed(port), metric(port, "kafka_queue_length", &[GROUP]));
            let produced = metric(port, "kafka_messages_produced_total", &[]);
            if n == 1000.0 && queue == Some(0.0) {
                Ok(())
            } else {
                Err(format!(
                    "consumed {n}, produced {produced:?}, queue {queue:?}"
                ))
            }
        },
    );
    assert_eq!(
        metric(
            port,
            "kafka_messages_produced_total",
            &["topic=\"fraud-predictions\""]
        ),
        Some(1000.0)
    );
    assert!(
        metric(port, "stream_processing_duration_seconds_count", &[]) == Some(1000.0),
        "processing latency is recorded per event"
    );
    assert!(worker.terminate(Duration::from_secs(30)), "graceful exit");

    let predictions = broker.predictions("fraud-predictions");
    assert_eq!(predictions.len(), 1000, "exactly one prediction per input");
    let mut seen = HashSet::new();
    for p in &predictions {
        let id = prediction_id(p);
        assert!(seen.insert(id), "transaction {id} predicted twice");
        assert_eq!(
            inputs.get(&id),
            Some(&(p.source_partition, p.source_offset)),
            "prediction {id} points at its input"
        );
        assert_eq!(p.scored_by, ScoredBy::Api);
        assert_eq!(
            p.prediction.replica_id, "api-e2e",
            "scored by the API, not the worker"
        );
        assert!((0.0..=1.0).contains(&p.prediction.fraud_probability));
    }

    // The same events scored in-process give the same probabilities: the worker sent the API exactly the
    // online features it would have used itself.
    let port = free_port();
    let mut local = broker.spawn(
        "worker-in-process",
        &[
            "stream",
            "--in-process",
            "--group",
            "e2e-in-process",
            "--output-topic",
            "predictions-in-process",
            "--metrics-port",
            &port.to_string(),
            "--stop-after",
            "1000",
        ],
        &[],
    );
    assert!(local.wait(Duration::from_secs(60)), "{}", local.output());
    let in_process: HashMap<u64, f64> = broker
        .predictions("predictions-in-process")
        .iter()
        .map(|p| (prediction_id(p), p.prediction.fraud_probability))
        .collect();
    assert_eq!(in_process.len(), 1000);
    for p in &predictions {
        let id = prediction_id(p);
        assert_eq!(
            in_process[&id].to_bits(),
            p.prediction.fraud_probability.to_bits(),
            "transaction {id}: API and in-process scores differ"
        );
    }
}

fn event(id: u64) -> Vec<u8> {
    let tx = Transaction {
        transaction_id: id,
        tx_datetime: parse_datetime("2018-04-02 12:00:00").unwrap_or_default() + id as i64,
        customer_id: id % 3,
        terminal_id: 7,
        tx_amount: 20.0 + id as f64,
        tx_time_seconds: 0,
        tx_time_days: 0,
        tx_fraud: false,
        tx_fraud_scenario: 0,
        merchant_category: None,
        user_age: None,
        account_balance: None,
    };
    serde_json::to_vec(&TransactionEvent::from(&tx)).expect("event JSON")
}

pub fn poison_messages_go_to_the_dead_letter_topic() {
    let broker = Broker::start();
    let port = free_port();
    let mut worker = broker.spawn(
        "worker",
        &[
            "stream",
            "--in-process",
            "--metrics-port",
            &port.to_string(),
            "--lag-interval",
            "200ms",
        ],
        &[],
    );
    wait_until_up(&mut worker, port);

    let poison: Vec<(&[u8], Option<&str>)> = vec![
        (b"not json at all", None),
        (b"", None),
        (br#"{"transaction_id": 101}"#, Some("amount")),
        (
            br#"{"transaction_id": 102, "amount": -5, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00"}"#,
            Some("amount"),
        ),
        (
            br#"{"transaction_id": 103, "amount": 5, "terminal_id": 1, "tx_datetime": "2018-04-01 00:00:00"}"#,
            Some("customer_id"),
        ),
        (
            br#"{"transaction_id": 104, "amount": 5, "customer_id": 1, "terminal_id": 1, "tx_datetime": "2018-13-45 00:00:00"}"#,
            Some("tx_datetime"),
        ),
    ];
    let valid: Vec<(u64, Vec<u8>)> = (1..=10).map(|id| (id, event(id))).collect();
    let mut messages: Vec<(Option<&[u8]>, &[u8])> = Vec::new();
    messages.extend(
        valid[..5]
            .iter()
            .map(|(_, p)| (Some(&b"1"[..]), p.as_slice())),
    );
    messages.extend(poison.iter().map(|(p, _)| (Some(&b"1"[..]), *p)));
    // After the poison, on the same partition: the worker must keep going.
    messages.extend(
        valid[5..]
            .iter()
            .map(|(_, p)| (Some(&b"1"[..]), p.as_slice())),
    );
    broker.produce("transactions-input", &messages);

    wait_for(
        "all 16 events consumed and committed",
        Duration::from_secs(60),
        || consumed(port) == 16.0 && metric(port, "kafka_queue_length", &[GROUP]) == Some(0.0),
    );
    assert!(worker.is_running(), "poison must not stop the worker");
    assert_eq!(metric(port, "stream_dead_letters_total", &[]), Some(6.0));

    let letters = broker.dead_letters("transactions-dead-letter");
    assert_eq!(letters.len(), 6);
    for (payload, field) in &poison {
        let letter = letters
            .iter()
            .find(|l| l.payload.as_bytes() == *payload)
            .unwrap_or_else(|| panic!("no dead letter for {:?}", String::from_utf8_lossy(payload)));
        assert_eq!(letter.field.as_deref(), *field, "{letter:?}");
        assert!(!letter.reason.is_empty());
        assert_eq!(letter.source_topic, "transactions-input");
    }
    let ids: HashSet<u64> = broker
        .predictions("fraud-predictions")
        .iter()
        .map(prediction_id)
        .collect();
    assert_eq!(
        ids,
        (1..=10).collect::<HashSet<u64>>(),
        "every valid event is predicted"
    );
}

/// Polls the predictions topic until every input id has a prediction (the caught-up condition that does
/// not depend on the broker's watermarks).
fn wait_for_predictions(broker: &Broker, inputs: &HashMap<u64, usize>, worker: &mut Proc) {
    wait_for(
        "a prediction for every input",
        Duration::from_secs(120),
        || {
            assert!(worker.is_running(), "worker exited:\n{}", worker.output());
            let predicted: HashSet<u64> = broker
                .predictions("fraud-predictions")
                .iter()
                .map(prediction_id)
                .collect();
            inputs.keys().all(|id| predicted.contains(id))
        },
    );
}

/// Streams `rate:secs` through a worker that is SIGKILLed `kills` times mid-stream; every input must
/// still get a prediction. Returns (inputs, predictions).
fn survive_sigkills(phases: &str, kills: usize) -> (usize, usize) {
    let broker = Broker::start();
    let api = Api::start(&broker, "api-alo");
    let port = free_port();
    let port_text = port.to_string();
    let args = [
        "stream",
        "--api-url",
        &api.url,
        "--metrics-port",
        &port_text,
        "--lag-interval",
        "200ms",
        "--session-timeout",
        "6s",
    ];
    let mut worker = broker.spawn("worker-0", &args, &[]);
    wait_until_up(&mut worker, port);
    let attack_port = free_port().to_string();
    let mut attack = broker.spawn(
        "attack",
        &["attack", "--phases", phases, "--metrics-port", &attack_port],
        &[],
    );
    for k in 1..=kills {
        wait_for(
            "the worker to be mid-stream",
            Duration::from_secs(60),
            || consumed(port) >= 1500.0,
        );
        worker.kill();
        worker = broker.spawn(&format!("worker-{k}"), &args, &[]);
        wait_until_up(&mut worker, port);
    }
    assert!(attack.wait(Duration::from_secs(120)), "{}", attack.output());
    let inputs = input_ids(&broker, "transactions-input");
    let total = inputs.len();
    wait_for_predictions(&broker, &inputs, &mut worker);
    assert!(worker.terminate(Duration::from_secs(30)));

    let mut counts: HashMap<u64, usize> = HashMap::new();
    for p in broker.predictions("fraud-predictions") {
        *counts.entry(prediction_id(&p)).or_insert(0) += 1;
    }
    let missing: Vec<&u64> = inputs
        .keys()
        .filter(|id| !counts.contains_key(id))
        .take(10)
        .collect();
    assert!(
        missing.is_empty(),
        "inputs without a prediction (first 10): {missing:?}"
    );
    assert!(
        counts.keys().all(|id| inputs.contains_key(id)),
        "predictions for unknown inputs"
    );
    let predictions: usize = counts.values().sum();
    let duplicated = counts.values().filter(|&&n| n > 1).count();
    println!(
        "    {total} inputs, {predictions} predictions: {} duplicates ({duplicated} transactions scored again after {kills} SIGKILL(s)), 0 lost",
        predictions - total
    );
    (total, predictions)
}

pub fn at_least_once_across_sigkill() {
    let (inputs, predictions) = survive_sigkills("2000:6s", 1);
    assert_eq!(inputs, 12_000);
    assert!(predictions >= inputs);
}

pub fn at_least_once_across_three_sigkills() {
    let (inputs, predictions) = survive_sigkills("2000:30s", 3);
    assert_eq!(inputs, 60_000);
    assert!(predictions >= inputs);
}

pub fn lag_rises_while_stopped_and_falls_to_zero() {
    let broker = Broker::start();
    let worker_port = free_port();
    let worker_port_text = worker_port.to_string();
    let args = [
        "stream",
        "--in-process",
        "--metrics-port",
        &worker_port_text,
        "--lag-interval",
        "200ms",
    ];
    let mut worker = broker.spawn("worker-1", &args, &[]);
    wait_until_up(&mut worker, worker_port);

    // The attack also reports the group's backlog, so it stays visible while no worker runs.
    let attack_port = free_port();
    let mut attack = broker.spawn(
        "attack",
        &[
            "attack",
            "--phases",
            "300:8s",
            "--metrics-port",
            &attack_port.to_string(),
            "--lag-group",
            "fraudops-stream",
            "--lag-interval",
            "200ms",
        ],
        &[],
    );
    wait_for("the worker to keep up", Duration::from_secs(30), || {
        consumed(worker_port) >= 300.0
    });
    assert!(worker.terminate(Duration::from_secs(30)), "graceful exit");

    let queue = || metric(attack_port, "kafka_queue_length", &[GROUP]).unwrap_or(0.0);
    let mut first = 0.0;
    wait_for(
        "the queue to build up while the worker is stopped",
        Duration::from_secs(20),
        || {
            first = queue();
            first >= 100.0
        },
    );
    wait_for("the queue to keep growing", Duration::from_secs(20), || {
        queue() >= first + 150.0
    });
    let lag_sum = metric(attack_port, "kafka_consumer_lag", &[GROUP]).unwrap_or(0.0);
    assert!(
        lag_sum >= first,
        "per-partition lag adds up to the queue ({lag_sum} vs {first})"
    );

    let mut worker = broker.spawn("worker-2", &args, &[]);
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());
    let inputs = input_ids(&broker, "transactions-input");
    wait_for_predictions(&broker, &inputs, &mut worker);
    wait_for(
        "lag to fall to 0 after catch-up",
        Duration::from_secs(60),
        || {
            metric(worker_port, "kafka_queue_length", &[GROUP]) == Some(0.0)
                && metric(worker_port, "kafka_consumer_lag", &[GROUP]) == Some(0.0)
        },
    );
    assert!(worker.terminate(Duration::from_secs(30)), "graceful exit");

    // SIGTERM drained and committed: nothing was scored twice across the restart.
    let predictions = broker.predictions("fraud-predictions");
    let unique: HashSet<u64> = predictions.iter().map(prediction_id).collect();
    assert_eq!(inputs.len(), 2400);
    assert_eq!(unique.len(), inputs.len());
    assert_eq!(
        predictions.len(),
        inputs.len(),
        "a graceful restart repeats nothing"
    );
    println!(
        "    queue grew to ≥ {:.0} while stopped; 0 after catch-up; 2400 inputs, 2400 predictions",
        first + 150.0
    );
}

/// Waits until `n` predictions on `fraud-predictions` say their features came from `source`.
fn wait_for_source(broker: &Broker, source: FeatureSource, n: usize) {
    wait_until(
        &format!(
            "{n} predictions scored with feature_source {}",
            source.as_str()
        ),
        Duration::from_secs(60),
        || {
            let predictions = broker.predictions("fraud-predictions");
            let got = predictions
                .iter()
                .filter(|p| p.prediction.feature_source == source)
                .count();
            (got == n)
                .then_some(())
                .ok_or(format!("{got} of {} predictions", predictions.len()))
        },
    );
}

pub fn waits_for_a_failing_store_then_scores_with_it() {
    let broker = Broker::start();
    let Some(mut redis) =
        crate::helpers::Redis::start_or_skip(&broker, "stream_waits_for_the_store")
    else {
        return;
    };
    let url = redis.url();
    let start = |name: &str, max_wait: &str| {
        let port = free_port();
        let mut worker = broker.spawn(
            name,
            &[
                "stream",
                "--in-process",
                "--metrics-port",
                &port.to_string(),
                "--lag-interval",
                "200ms",
            ],
            &[
                ("FEATURE_STORE_URL", url.as_str()),
                ("FEATURE_STORE_MAX_WAIT", max_wait),
            ],
        );
        wait_until_up(&mut worker, port);
        (worker, port)
    };
    // The store is down when the events come: the worker holds them, scores nothing, commits nothing.
    let (mut worker, port) = start("worker-waits", "2m");
    redis.kill();
    run_attack(&broker, "200:1s");
    wait_until(
        "the events read and the store failing",
        Duration::from_secs(60),
        || {
            let (n, errors) = (
                consumed(port),
                metric(port, "stream_feature_store_errors_total", &[]).unwrap_or(0.0),
            );
            (n == 200.0 && errors >= 3.0)
                .then_some(())
                .ok_or(format!("consumed {n}, store errors {errors}"))
        },
    );
    assert!(
        broker.predictions("fraud-predictions").is_empty(),
        "nothing is scored without the history it needs while the worker waits"
    );
    wait_until(
        "the lag shows the held events",
        Duration::from_secs(30),
        || {
            let queue = metric(port, "kafka_queue_length", &[GROUP]);
            // Sampled from the broker's offsets; nothing is scored, so it stays near the 200 read.
            (queue.is_some_and(|q| q >= 190.0))
                .then_some(())
                .ok_or(format!("queue {queue:?}: held, not committed"))
        },
    );
    // The store is back: every held event is scored with it.
    redis.restart();
    wait_for_source(&broker, FeatureSource::Store, 200);
    assert_eq!(
        metric(port, "stream_scored_without_history_total", &[]),
        Some(0.0)
    );
    assert!(worker.terminate(Duration::from_secs(30)), "graceful exit");

    // With a short wait, an outage longer than it ends in scores that say they lack history.
    let (mut worker, port) = start("worker-gives-up", "1s");
    redis.kill();
    run_attack(&broker, "50:1s");
    wait_for_source(&broker, FeatureSource::StoreUnavailable, 50);
    assert_eq!(
        metric(port, "stream_scored_without_history_total", &[]),
        Some(50.0)
    );
    assert!(worker.terminate(Duration::from_secs(30)), "graceful exit");
}
