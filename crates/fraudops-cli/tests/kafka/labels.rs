//! Labels as their own stream: `fraudops labels` applies `fraud-labels` to a real Redis once each
//! (duplicates, reversals, poison, a store outage), and `fraudops attack --replay` produces each label
//! only after the event-time delay, while transactions carry none.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use fraudops_stream::{KafkaArgs, LagProbe};
use fraudops_wire::{LabelEvent, TransactionId};

use crate::helpers::{Broker, Proc, Redis, free_port, metric, wait_for, wait_until};

const TOPIC: &str = "fraud-labels";
const GROUP: &str = "fraudops-labels";

fn label(id: u64, terminal: u64, fraud: bool) -> Vec<u8> {
    serde_json::to_vec(&LabelEvent {
        transaction_id: TransactionId::Number(id),
        customer_id: 1,
        terminal_id: terminal,
        tx_datetime: "2018-04-02 03:04:05".into(),
        tx_fraud: fraud,
        labelled_at: None,
        synthetic: false,
    })
    .expect("label JSON")
}

/// The group's committed offset per partition, as the broker has it.
fn committed(broker: &Broker) -> BTreeMap<i32, i64> {
    let kafka = KafkaArgs {
        topic: TOPIC.into(),
        ..KafkaArgs::local(broker.addr.as_str())
    };
    LagProbe::new(&kafka, GROUP)
        .and_then(|p| p.measure())
        .map(|lag| {
            lag.partitions
                .iter()
                .filter_map(|p| p.committed.map(|c| (p.partition, c)))
                .collect()
        })
        .unwrap_or_default()
}

/// Per partition, the offset after its last message on the topic.
fn ends(broker: &Broker) -> BTreeMap<i32, i64> {
    let mut ends = BTreeMap::new();
    for r in broker.read(TOPIC) {
        let e = ends.entry(r.partition).or_insert(0);
        *e = (*e).max(r.offset + 1);
    }
    ends
}

fn members(redis: &Redis, key: &str) -> Vec<String> {
    let mut out: Vec<String> = redis
        .cli(&["ZRANGE", key, "0", "-1"])
        .lines()
        .map(str::to_owned)
        .filter(|l| !l.is_empty())
        .collect();
    out.sort();
    out
}

fn spawn_labels(broker: &Broker, redis: &Redis, port: u16) -> Proc {
    broker.spawn(
        "labels",
        &[
            "labels",
            "--metrics-port",
            &port.to_string(),
            "--feature-store-timeout",
            "500ms",
        ],
        &[("FEATURE_STORE_URL", redis.url().as_str())],
    )
}

pub fn consumer_applies_each_label_once_and_skips_poison() {
    let broker = Broker::start();
    let Some(mut redis) = Redis::start_or_skip(&broker, "labels consumer") else {
        return;
    };

    // Without a store there is nothing to apply labels to: a clear refusal.
    let mut refused = broker.spawn(
        "labels-no-store",
        &["labels", "--metrics-port", &free_port().to_string()],
        &[],
    );
    assert!(!refused.wait(Duration::from_secs(30)));
    assert!(
        refused.output().contains("FEATURE_STORE_URL"),
        "{}",
        refused.output()
    );

    let port = free_port();
    let mut labels = spawn_labels(&broker, &redis, port);
    wait_for(
        "the label consumer's metrics",
        Duration::from_secs(30),
        || {
            assert!(labels.is_running(), "labels exited:\n{}", labels.output());
            metric(port, "fraudops_labels_invalid_total", &[]).is_some()
        },
    );

    // Terminal 7: two frauds and a genuine one, the first fraud delivered twice. Terminal 8: a fraud
    // reversed by a later genuine label. And one message that is not a label at all.
    let (t7, t8) = (b"7".as_slice(), b"8".as_slice());
    let messages: Vec<(Option<&[u8]>, Vec<u8>)> = vec![
        (Some(t7), label(1, 7, true)),
        (Some(t7), label(2, 7, false)),
        (
            Some(t7),
            b"{\"transaction_id\": 3, this is not JSON".to_vec(),
        ),
        (Some(t7), label(3, 7, true)),
        (Some(t7), label(1, 7, true)),
        (Some(t8), label(4, 8, true)),
        (Some(t8), label(4, 8, false)),
    ];
    let refs: Vec<(Option<&[u8]>, &[u8])> =
        messages.iter().map(|(k, v)| (*k, v.as_slice())).collect();
    broker.produce(TOPIC, &refs);

    wait_until("all six labels applied", Duration::from_secs(30), || {
        let applied = metric(port, "fraudops_labels_applied_total", &[]).unwrap_or(0.0);
        (applied == 6.0)
            .then_some(())
            .ok_or(format!("{applied} applied"))
    });
    assert_eq!(
        metric(port, "fraudops_labels_applied_total", &["label=\"fraud\""]),
        Some(4.0)
    );
    assert_eq!(
        metric(port, "fraudops_labels_invalid_total", &[]),
        Some(1.0)
    );
    assert_eq!(
        members(&redis, "fraudops:v2:{t7}:f"),
        ["1", "3"],
        "the fraud set holds each fraud once"
    );
    assert_eq!(redis.cli(&["ZCARD", "fraudops:v2:{t7}:f"]), "2");
    assert_eq!(
        members(&redis, "fraudops:v2:{t7}:t"),
        ["1", "2", "3"],
        "every labelled transaction counts at its terminal"
    );
    assert_eq!(
        redis.cli(&["ZCARD", "fraudops:v2:{t8}:f"]),
        "0",
        "a reversed label is undone"
    );
    assert_eq!(members(&redis, "fraudops:v2:{t8}:t"), ["4"]);

    // Offsets are committed past every message, the poison one included.
    let end = ends(&broker);
    assert_eq!(end.values().sum::<i64>(), 7, "{end:?}");
    wait_until("offsets committed", Duration::from_secs(20), || {
        let c = committed(&broker);
        end.iter()
            .all(|(p, e)| c.get(p) == Some(e))
            .then_some(())
            .ok_or(format!("committed {c:?}, topic ends {end:?}"))
    });

    // A store outage: the label is retried and not committed until the store is back.
    redis.kill();
    broker.produce(
        TOPIC,
        &[(Some(b"9".as_slice()), label(10, 9, true).as_slice())],
    );
    wait_for(
        "store errors to be counted",
        Duration::from_secs(30),
        || metric(port, "fraudops_labels_store_errors_total", &[]).is_some_and(|v| v >= 2.0),
    );
    let during = committed(&broker);
    let end = ends(&broker);
    let (&p9, &e9) = end
        .iter()
        .find(|(p, e)| during.get(p) != Some(e))
        .expect("the partition of the unapplied label is not committed to its end");
    assert!(
        during.get(&p9).is_none_or(|&c| c < e9),
        "{during:?} vs {end:?}"
    );
    redis.restart();
    wait_until(
        "the label applied after the outage",
        Duration::from_secs(30),
        || {
            let n = redis.cli(&["ZCARD", "fraudops:v2:{t9}:f"]);
            (n == "1").then_some(()).ok_or(n)
        },
    );
    wait_until("its offset committed", Duration::from_secs(20), || {
        let c = committed(&broker);
        (c.get(&p9) == Some(&e9))
            .then_some(())
            .ok_or(format!("{c:?}"))
    });

    assert!(
        labels.terminate(Duration::from_secs(20)),
        "{}",
        labels.output()
    );
    let out = labels.output();
    assert!(
        out.contains("labels summary: consumed=8 fraud=5 genuine=2 invalid=1"),
        "{out}"
    );
    assert!(out.contains("drained=true"), "{out}");
}

/// A replay file of 100 transactions two hours apart (8¼ days), every third one a fraud.
fn replay_file(broker: &Broker) -> std::path::PathBuf {
    let file = broker.path("labels-replay.csv");
    let mut csv = String::from(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n",
    );
    for i in 0..100u64 {
        let hours = 2 * i;
        let fraud = u8::from(i % 3 == 0);
        csv.push_str(&format!(
            "{i},2018-04-{:02} {:02}:00:00,{},{},{}.5,{},{},{fraud},{fraud}\n",
            1 + hours / 24,
            hours % 24,
            i % 10,
            200 + i % 4,
            10 + i,
            hours * 3600,
            hours / 24,
        ));
    }
    std::fs::write(&file, csv).expect("write replay file");
    file
}

pub fn attack_produces_each_label_after_the_event_time_delay() {
    let broker = Broker::start();
    let file = replay_file(&broker);
    let results = broker.path("labels-results.json");
    // Exactly the file once: 100 messages at 100/s.
    let mut attack = broker.spawn(
        "attack-labels",
        &[
            "attack",
            "--replay",
            file.to_str().expect("utf-8 path"),
            "--phases",
            "100:1s",
            "--label-delay",
            "3d",
            "--metrics-port",
            &free_port().to_string(),
            "--results",
            results.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(attack.wait(Duration::from_secs(60)), "{}", attack.output());

    // Transactions carry no label.
    let inputs = broker.read("transactions-input");
    assert_eq!(inputs.len(), 100);
    for r in &inputs {
        let v: serde_json::Value = serde_json::from_slice(&r.payload).expect("event JSON");
        assert!(
            v.get("tx_fraud").is_none(),
            "a transaction carries a label: {v}"
        );
    }

    // The clock ends at the last transaction (hour 198); a label is due at its hour + 72, so exactly the
    // transactions up to hour 126 (ids 0..=63) have theirs, keyed by terminal, with the file's outcome.
    let records = broker.read(TOPIC);
    let mut seen: HashMap<u64, LabelEvent> = HashMap::new();
    for r in &records {
        let l: LabelEvent = serde_json::from_slice(&r.payload).expect("label JSON");
        let key = String::from_utf8(r.key.clone().expect("a key")).expect("utf-8 key");
        assert_eq!(
            key,
            l.terminal_id.to_string(),
            "labels are keyed by terminal"
        );
        let TransactionId::Number(id) = l.transaction_id else {
            panic!("numeric ids: {l:?}")
        };
        assert_eq!(l.tx_fraud, id % 3 == 0, "{l:?}");
        assert_eq!(l.terminal_id, 200 + id % 4);
        assert!(seen.insert(id, l).is_none(), "label {id} produced twice");
    }
    let mut ids: Vec<u64> = seen.keys().copied().collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..=63).collect::<Vec<u64>>(), "labels of 0..=63 only");
    assert_eq!(seen[&63].tx_datetime, "2018-04-06 06:00:00");

    let text = std::fs::read_to_string(&results).expect("results file");
    let report: fraudops_stream::attack::AttackReport =
        serde_json::from_str(&text).expect("results JSON");
    let l = report.labels.expect("the attack reports its labels");
    assert_eq!(
        (l.sent, l.delivered, l.errors, l.not_due),
        (64, 64, 0, 36),
        "{l:?}"
    );
    assert_eq!((l.topic.as_str(), l.delay.as_str()), (TOPIC, "3d"));
    assert!(
        attack
            .output()
            .contains("labels: 64 sent to fraud-labels after 3d of event time"),
        "{}",
        attack.output()
    );

    // A delay the terminal-risk features cannot wait for is refused before anything is sent.
    let mut refused = broker.spawn(
        "attack-long-delay",
        &["attack", "--label-delay", "8d", "--phases", "10:1s"],
        &[],
    );
    assert!(!refused.wait(Duration::from_secs(30)));
    assert!(
        refused.output().contains("TERMINAL_DELAY_DAYS"),
        "{}",
        refused.output()
    );
}
