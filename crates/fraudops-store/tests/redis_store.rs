//! The store against a real `redis-server`: the windows equal the batch definition bit for bit, whatever
//! the batching; labels are idempotent and reversible; a restart keeps the windows; a store that is down
//! fails fast and is used again when it is back.

use std::time::{Duration, Instant};

use fraudops_data::{MerchantCategory, Transaction};
use fraudops_features::batch::{compute, processing_order};
use fraudops_features::definition::{DAY, FeatureRow};
use fraudops_features::{FEATURE_NAMES, FeatureVector};
use fraudops_store::testing::RedisServer;
use fraudops_store::{
    EvaluatedLabel, FeatureStore, Label, Observation, Recorded, ScoreRecord, ScoreRecorder,
    StoreError, StoredScore, Windows,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const START: i64 = 1_522_540_800; // 2018-04-01
const DEADLINE: Duration = Duration::from_secs(2);

fn tx(id: u64, t: i64, customer: u64, terminal: u64, amount: f64, fraud: bool) -> Transaction {
    Transaction {
        transaction_id: id,
        tx_datetime: t,
        customer_id: customer,
        terminal_id: terminal,
        tx_amount: amount,
        tx_time_seconds: t - START,
        tx_time_days: (t - START) / DAY,
        tx_fraud: fraud,
        tx_fraud_scenario: u8::from(fraud),
        merchant_category: MerchantCategory::from_code((terminal % 10) as u8),
        user_age: Some(30.0),
        account_balance: Some(1000.0),
    }
}

/// Events on a half-hour grid over 80 days, so ties and exact window boundaries (1, 7, 30, 37 days)
/// happen often; few customers and terminals so windows fill up.
fn random_transactions(seed: u64, n: usize) -> Vec<Transaction> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut txs: Vec<Transaction> = (0..n)
        .map(|i| {
            let t = START + rng.gen_range(0..80 * 48) * 1800;
            let cents: u32 = rng.gen_range(1..5_000_000);
            tx(
                i as u64,
                t,
                rng.gen_range(0..6),
                rng.gen_range(0..4),
                f64::from(cents) / 100.0,
                rng.gen_bool(0.2),
            )
        })
        .collect();
    txs.sort_by_key(|t| t.tx_datetime);
    txs
}

fn observation(t: &Transaction) -> Observation {
    Observation::from(t)
}

fn label(t: &Transaction) -> Label {
    Label::from(t)
}

fn vector(t: &Transaction, w: &Windows) -> FeatureVector {
    FeatureRow::for_transaction(t, w.customer, w.terminal).to_vector()
}

fn assert_same(batch: &FeatureVector, store: &FeatureVector, context: &str) {
    for (k, (b, s)) in batch.iter().zip(store).enumerate() {
        assert_eq!(
            b.to_bits(),
            s.to_bits(),
            "{context}: {} batch {b} store {s}",
            FEATURE_NAMES[k]
        );
    }
}

/// Scores `txs` through the store in processing order, `chunk` events per call, each chunk's labels
/// applied right after it (labels only count after the 7-day delay, so any delay up to it is the same).
async fn through_store(
    store: &FeatureStore,
    txs: &[Transaction],
    chunk: usize,
) -> Vec<FeatureVector> {
    let order = processing_order(txs);
    let mut out = vec![[0.0; fraudops_features::N_FEATURES]; txs.len()];
    for ids in order.chunks(chunk) {
        let events: Vec<Observation> = ids.iter().map(|&i| observation(&txs[i as usize])).collect();
        let windows = store.observe(&events).await.expect("observe");
        for (&i, o) in ids.iter().zip(&windows) {
            assert_eq!(o.recorded, Recorded::Yes, "tx {i}");
            out[i as usize] = vector(&txs[i as usize], &o.windows);
        }
        let labels: Vec<Label> = ids.iter().map(|&i| label(&txs[i as usize])).collect();
        store.apply_labels(&labels).await.expect("labels");
    }
    out
}

#[tokio::test]
async fn store_windows_equal_the_batch_definition_bit_for_bit() {
    let Some(server) =
        RedisServer::start_or_skip("store_windows_equal_the_batch_definition", false)
    else {
        return;
    };
    // Chunks span less than the 7-day label delay (400 events over 80 days: 16 are ~3 days), as the
    // label stream's delay must.
    for (seed, chunk) in [(1, 1), (2, 5), (3, 16)] {
        let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
        // Each seed on its own ids: flush between runs.
        let mut conn = redis::Client::open(server.url())
            .and_then(|c| c.get_connection())
            .expect("admin connection");
        let _: () = redis::cmd("FLUSHALL").query(&mut conn).expect("flush");
        let txs = random_transactions(seed, 400);
        let batch = compute(&txs);
        let online = through_store(&store, &txs, chunk).await;
        for (i, v) in online.iter().enumerate() {
            assert_same(
                batch.row(i),
                v,
                &format!("seed {seed} chunk {chunk} tx {i}"),
            );
        }
    }
}

#[tokio::test]
async fn a_redelivered_transaction_or_label_counts_once_and_a_reversed_label_is_undone() {
    let Some(server) = RedisServer::start_or_skip("redelivery_counts_once", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let first = tx(1, START, 7, 3, 10.0, true);
    let again = store
        .observe(&[observation(&first)])
        .await
        .expect("observe");
    let twice = store
        .observe(&[observation(&first)])
        .await
        .expect("observe");
    assert_eq!(again, twice, "the same transaction recorded twice");
    assert_eq!(twice[0].windows.customer.nb_tx, [1, 1, 1]);
    store.apply_labels(&[label(&first)]).await.expect("label");
    store.apply_labels(&[label(&first)]).await.expect("label");
    let later = tx(2, START + 7 * DAY + 3600, 8, 3, 5.0, false);
    let w = store
        .observe(&[observation(&later)])
        .await
        .expect("observe");
    assert_eq!(w[0].windows.terminal.nb_tx, [1, 1, 1]);
    assert_eq!(
        w[0].windows.terminal.risk,
        [1.0, 1.0, 1.0],
        "one fraud of one"
    );
    // A chargeback reversed: the same transaction labelled genuine.
    let mut reversed = label(&first);
    reversed.fraud = false;
    store.apply_labels(&[reversed]).await.expect("label");
    let w = store
        .observe(&[observation(&tx(
            3,
            START + 7 * DAY + 3601,
            9,
            3,
            5.0,
            false,
        ))])
        .await
        .expect("observe");
    assert_eq!(w[0].windows.terminal.risk, [0.0, 0.0, 0.0]);
}

#[tokio::test]
async fn a_label_comes_back_with_the_score_recorded_for_its_transaction() {
    let Some(server) = RedisServer::start_or_skip("label_scores", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let scored = tx(1, START + DAY - 1, 7, 3, 10.0, true);
    let next_day = tx(2, START + DAY, 7, 3, 11.0, false);
    let unscored = tx(3, START + DAY, 8, 4, 12.0, false);
    let score = |p: f64| StoredScore {
        fraud_probability: p,
        is_fraud: p >= 0.5,
        model_version: "gbdt-0123456789ab".into(),
    };
    // Through the batching writer, as the scorers do; it writes what is queued before it ends.
    let errors = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (recorder, task) = ScoreRecorder::spawn(store.clone(), 16, {
        let errors = errors.clone();
        move |n, _| {
            errors.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        }
    });
    for (t, p) in [(&scored, 0.912_345_678_901_234_5), (&next_day, 0.03)] {
        assert!(recorder.record(ScoreRecord {
            transaction_id: t.transaction_id.to_string(),
            time: t.tx_datetime,
            score: score(p),
        }));
    }
    drop(recorder);
    task.await.expect("writer");
    assert_eq!(errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    let joined = store
        .apply_labels(&[label(&scored), label(&next_day), label(&unscored)])
        .await
        .expect("labels");
    assert_eq!(
        joined,
        [
            Some(score(0.912_345_678_901_234_5)),
            Some(score(0.03)),
            None
        ]
    );
    // One hash per event-time day, kept past the longest label delay (7 days) plus a day.
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection");
    for day in [START / DAY, START / DAY + 1] {
        let ttl: i64 = redis::cmd("TTL")
            .arg(format!("fraudops:v1:s:{day}"))
            .query(&mut conn)
            .expect("ttl");
        assert!((7 * DAY..=8 * DAY).contains(&ttl), "day {day}: ttl {ttl}");
    }
}

#[tokio::test]
async fn evaluation_samples_are_kept_per_day_replaced_when_relabelled_and_dropped_when_old() {
    let Some(server) = RedisServer::start_or_skip("evaluation_samples", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let sample = |id: &str, day: i64, fraud: bool, version: &str| EvaluatedLabel {
        transaction_id: id.into(),
        time: (START / DAY + day) * DAY + 3_600,
        customer_id: 7,
        fraud,
        score: StoredScore {
            fraud_probability: 0.25,
            is_fraud: false,
            model_version: version.into(),
        },
    };
    store
        .record_evaluations(&[
            sample("a", 0, false, "gbdt-aaaaaaaaaaaa"),
            sample("b", 1, true, "gbdt-aaaaaaaaaaaa"),
            sample("c", 2, false, "gbdt-bbbbbbbbbbbb"),
        ])
        .await
        .expect("record");
    // A reversed label replaces its sample; it is not a second one.
    store
        .record_evaluations(&[sample("b", 1, false, "gbdt-aaaaaaaaaaaa")])
        .await
        .expect("record again");
    let day = |d: i64| START / DAY + d;
    assert_eq!(
        store.evaluation_days(2).await.expect("days"),
        [day(2), day(1)],
        "newest first, at most the number asked"
    );
    let (rows, unreadable) = store.load_evaluations(day(1)).await.expect("load");
    assert_eq!(unreadable, 0);
    assert_eq!(
        rows,
        [EvaluatedLabel {
            time: day(1) * DAY,
            ..sample("b", 1, false, "gbdt-aaaaaaaaaaaa")
        }],
        "the reversed label, at its day"
    );
    store.drop_evaluations_before(day(2)).await.expect("drop");
    assert_eq!(store.evaluation_days(10).await.expect("days"), [day(2)]);
    assert_eq!(store.load_evaluations(day(0)).await.expect("load").0, []);
    let (rows, _) = store.load_evaluations(day(2)).await.expect("load");
    assert_eq!(rows[0].score.model_version, "gbdt-bbbbbbbbbbbb");
}

#[tokio::test]
async fn keys_expire_past_the_longest_window_plus_the_delay() {
    let Some(server) = RedisServer::start_or_skip("keys_expire", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let t = tx(1, START, 1, 2, 10.0, true);
    store.observe(&[observation(&t)]).await.expect("observe");
    store.apply_labels(&[label(&t)]).await.expect("label");
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection");
    // Longest reach (30 days for a card, 37 for a terminal) plus 7 days' slack for late events.
    for (key, at_least_days) in [
        ("fraudops:v1:c:1", 37),
        ("fraudops:v1:t:2", 44),
        ("fraudops:v1:f:2", 44),
    ] {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut conn).expect("ttl");
        assert!(
            ttl > at_least_days * DAY && ttl <= (at_least_days + 1) * DAY,
            "{key} expires in {ttl} s"
        );
    }
    // Per key, events no window reaches (even 7 days late) are dropped as time moves on: below the
    // newest time the key held before the event (so one event, whatever its time, prunes nothing).
    let zcard = |conn: &mut redis::Connection| -> i64 {
        redis::cmd("ZCARD")
            .arg("fraudops:v1:c:1")
            .query(conn)
            .expect("zcard")
    };
    let late = tx(2, START + 38 * DAY, 1, 5, 1.0, false);
    let w = store.observe(&[observation(&late)]).await.expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx, [1, 1, 1]);
    assert_eq!(zcard(&mut conn), 2, "the key had seen nothing past START");
    let later = tx(3, START + 38 * DAY + 60, 1, 5, 1.0, false);
    store
        .observe(&[observation(&later)])
        .await
        .expect("observe");
    assert_eq!(zcard(&mut conn), 2, "the 38-day-old transaction is gone");
}

#[tokio::test]
async fn a_restart_keeps_the_windows() {
    let Some(mut server) = RedisServer::start_or_skip("a_restart_keeps_the_windows", true) else {
        return;
    };
    let txs = random_transactions(9, 200);
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let (before, after) = txs.split_at(150);
    through_store(&store, before, 16).await;
    server.kill();
    server.restart();
    // The same client reconnects on its own (its first calls may fail and pause it, as in production).
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.ping().await.is_err() {
        assert!(Instant::now() < deadline, "no reconnect after restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The rest scores exactly as without the restart: nothing written before it was lost.
    let batch = compute(&txs);
    let order = processing_order(&txs);
    for &i in order.iter().filter(|&&i| i as usize >= before.len()) {
        let t = &txs[i as usize];
        let w = store.observe(&[observation(t)]).await.expect("observe");
        store.apply_labels(&[label(t)]).await.expect("label");
        assert_same(
            batch.row(i as usize),
            &vector(t, &w[0].windows),
            &format!("tx {i}"),
        );
    }
    assert!(after.len() == 50);
}

#[tokio::test]
async fn a_store_that_is_down_fails_fast_and_is_used_again_when_back() {
    let Some(mut server) = RedisServer::start_or_skip("store_down_fails_fast", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), Duration::from_millis(50)).expect("connect");
    let t = tx(1, START, 1, 1, 1.0, false);
    store.observe(&[observation(&t)]).await.expect("up");
    server.kill();
    let started = Instant::now();
    for _ in 0..100 {
        let e = store.observe(&[observation(&t)]).await;
        assert!(
            matches!(
                e,
                Err(StoreError::Redis(_) | StoreError::Unavailable(_) | StoreError::Timeout(_))
            ),
            "{e:?}"
        );
    }
    // 100 calls against a dead store: the breaker answers most of them at once.
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    server.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if store.observe(&[observation(&t)]).await.is_ok() {
            break;
        }
        assert!(Instant::now() < deadline, "the store was not used again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn scorers_up_to_seven_days_apart_still_see_exact_windows() {
    let Some(server) = RedisServer::start_or_skip("scorers_days_apart", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let txs = random_transactions(11, 400);
    let batch = compute(&txs);
    // Every label is known (the label consumer is ahead); odd cards are scored by a scorer 6 days behind
    // the even cards' one, so the even side's newer events prune terminal history first.
    let labels: Vec<Label> = txs.iter().map(label).collect();
    store.apply_labels(&labels).await.expect("labels");
    let mut order = processing_order(&txs);
    order.sort_by_key(|&i| {
        let t = &txs[i as usize];
        (
            t.tx_datetime + if t.customer_id % 2 == 1 { 6 * DAY } else { 0 },
            i,
        )
    });
    for i in order {
        let t = &txs[i as usize];
        let w = store.observe(&[observation(t)]).await.expect("observe");
        assert_same(
            batch.row(i as usize),
            &vector(t, &w[0].windows),
            &format!("tx {i}"),
        );
    }
}

/// The card's and terminal's windows of `probe` (read only: the probe changes nothing).
async fn windows_of(store: &FeatureStore, probe: &Transaction) -> Windows {
    let mut o = observation(probe);
    o.record = false;
    let w = store.observe(&[o]).await.expect("observe");
    assert_ne!(w[0].recorded, Recorded::Yes);
    w[0].windows
}

#[tokio::test]
async fn a_caller_clock_cannot_erase_or_rewrite_history() {
    let Some(server) = RedisServer::start_or_skip("a_caller_clock_cannot_erase_history", false)
    else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let txs = random_transactions(21, 300);
    let batch = compute(&txs);
    let order = processing_order(&txs);
    let year_2099 = 4_070_908_800;
    let mut latest_of_card = std::collections::HashMap::<u64, i64>::new();
    for (n, &i) in order.iter().enumerate() {
        let t = &txs[i as usize];
        if n % 25 == 24 {
            // The attacks of issue 29 on this card and terminal, between two real transactions.
            let before = server.dump_windows();
            let future = tx(
                90_000 + n as u64,
                year_2099,
                t.customer_id,
                t.terminal_id,
                9.0,
                false,
            );
            let w = store
                .observe(&[observation(&future)])
                .await
                .expect("observe");
            assert_eq!(w[0].recorded, Recorded::Future);
            let tomorrow = tx(
                91_000 + n as u64,
                store.latest_recordable_time() + 86_400,
                t.customer_id,
                t.terminal_id,
                9.0,
                false,
            );
            let w = store
                .observe(&[observation(&tomorrow)])
                .await
                .expect("observe");
            assert_eq!(w[0].recorded, Recorded::Future, "a day ahead of the clock");
            // A caller that may only score: its windows, nothing written.
            let mut probe = observation(&tx(
                92_000 + n as u64,
                t.tx_datetime,
                t.customer_id,
                t.terminal_id,
                5.0,
                false,
            ));
            probe.record = false;
            let w = store.observe(&[probe]).await.expect("observe");
            assert_eq!(w[0].recorded, Recorded::ReadOnly);
            // An event far older than what the card holds: scored, not recorded.
            if let Some(&latest) = latest_of_card.get(&t.customer_id) {
                let ancient = tx(
                    93_000 + n as u64,
                    latest - 40 * DAY,
                    t.customer_id,
                    t.terminal_id,
                    5.0,
                    false,
                );
                let w = store
                    .observe(&[observation(&ancient)])
                    .await
                    .expect("observe");
                assert_eq!(
                    w[0].recorded,
                    Recorded::TooOld,
                    "40 days before the card's last"
                );
            }
            assert_eq!(
                server.dump_windows(),
                before,
                "nothing was written or deleted"
            );
        }
        let w = store.observe(&[observation(t)]).await.expect("observe");
        assert_eq!(w[0].recorded, Recorded::Yes, "tx {i}");
        assert_same(
            batch.row(i as usize),
            &vector(t, &w[0].windows),
            &format!("tx {i}"),
        );
        store.apply_labels(&[label(t)]).await.expect("label");
        latest_of_card.insert(t.customer_id, t.tx_datetime);
    }
}

#[tokio::test]
async fn a_read_only_observation_sees_what_recording_it_would_see() {
    let Some(server) = RedisServer::start_or_skip("a_read_only_observation", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let txs = random_transactions(22, 120);
    for t in &txs {
        let read = windows_of(&store, t).await;
        let w = store.observe(&[observation(t)]).await.expect("observe");
        assert_eq!(w[0].recorded, Recorded::Yes);
        assert_eq!(read, w[0].windows, "tx {}", t.transaction_id);
        // Read again once recorded: the transaction is not counted twice.
        assert_eq!(windows_of(&store, t).await, w[0].windows);
    }
}

#[tokio::test]
async fn a_far_future_time_prunes_nothing_even_if_a_caller_lets_it_through() {
    let Some(server) = RedisServer::start_or_skip("a_far_future_time_prunes_nothing", false) else {
        return;
    };
    // A store told to trust any clock: the script's own bound is all that is left.
    let store = FeatureStore::connect(&server.url(), DEADLINE)
        .expect("connect")
        .with_max_clock_skew(Duration::from_secs(200 * 365 * 86_400));
    let history: Vec<Transaction> = (0..3)
        .map(|i| tx(i, START + i as i64 * 3600, 7, 8, 50.0, i == 0))
        .collect();
    for t in &history {
        store.observe(&[observation(t)]).await.expect("observe");
        store.apply_labels(&[label(t)]).await.expect("label");
    }
    let next = tx(10, START + 8 * DAY, 7, 8, 20.0, false);
    let expected = windows_of(&store, &next).await;
    let w = store
        .observe(&[observation(&tx(11, 4_070_908_800, 7, 8, 1.0, false))])
        .await
        .expect("observe");
    assert_eq!(w[0].recorded, Recorded::Yes, "this store trusts the clock");
    assert_eq!(
        windows_of(&store, &next).await,
        expected,
        "the card's and terminal's history is intact"
    );
    let w = store.observe(&[observation(&next)]).await.expect("observe");
    assert_eq!(
        w[0].recorded,
        Recorded::TooOld,
        "older than the key's reach now"
    );
    assert_eq!(w[0].windows, expected);
}

#[tokio::test]
async fn a_stopped_recorder_writes_what_it_holds_and_takes_nothing_more() {
    let Some(server) = RedisServer::start_or_skip("a_stopped_recorder_flushes", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let (recorder, writer) = ScoreRecorder::spawn(store, 100_000, |_, e| panic!("{e}"));
    let score = |i: u64| ScoreRecord {
        transaction_id: i.to_string(),
        time: START,
        score: StoredScore {
            fraud_probability: 0.5,
            is_fraud: false,
            model_version: "gbdt-000000000000".into(),
        },
    };
    for i in 0..5_000 {
        assert!(recorder.record(score(i)));
    }
    recorder.stop();
    tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("flushed in time")
        .expect("writer");
    assert!(
        !recorder.record(score(9_999_999)),
        "a stopped recorder takes nothing"
    );
    let mut conn = redis::Client::open(server.url())
        .and_then(|c| c.get_connection())
        .expect("admin connection");
    let n: i64 = redis::cmd("HLEN")
        .arg(format!("fraudops:v1:s:{}", START.div_euclid(DAY)))
        .query(&mut conn)
        .expect("hlen");
    assert_eq!(n, 5_000, "every queued score reached the store");
}
