//! The store against a real `redis-server`: the windows equal the batch definition bit for bit, whatever
//! the batching; labels are idempotent and reversible; a restart keeps the windows; a store that is down
//! fails fast and is used again when it is back.

use std::time::{Duration, Instant};

use fraudops_data::{MerchantCategory, Transaction};
use fraudops_features::batch::{compute, processing_order};
use fraudops_features::definition::{DAY, FeatureRow};
use fraudops_features::{FEATURE_NAMES, FeatureVector};
use fraudops_store::testing::{RedisCluster, RedisServer};
use fraudops_store::{
    EvaluatedLabel, FeatureStore, Label, Namespace, Observation, Recorded, ScoreRecord,
    ScoreRecorder, StoreError, StoredScore, Windows, keys,
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
            namespace: Namespace::Real,
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
            .arg(keys::scores(day))
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
        (keys::customer(Namespace::Real, 1), 37),
        (keys::terminal(Namespace::Real, 2), 44),
        (keys::terminal_fraud(Namespace::Real, 2), 44),
    ] {
        let ttl: i64 = redis::cmd("TTL").arg(&key).query(&mut conn).expect("ttl");
        assert!(
            ttl > at_least_days * DAY && ttl <= (at_least_days + 1) * DAY,
            "{key} expires in {ttl} s"
        );
    }
    // Per key, events no window reaches (even 7 days late) are dropped as time moves on: below the
    // newest time the key held before the event (so one event, whatever its time, prunes nothing), by the
    // first event of each event day (a card; each event hour, a terminal).
    let zcard = |conn: &mut redis::Connection| -> i64 {
        redis::cmd("ZCARD")
            .arg(keys::customer(Namespace::Real, 1))
            .query(conn)
            .expect("zcard")
    };
    let late = tx(2, START + 38 * DAY, 1, 5, 1.0, false);
    let w = store.observe(&[observation(&late)]).await.expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx, [1, 1, 1]);
    assert_eq!(zcard(&mut conn), 2, "the key had seen nothing past START");
    let same_day = tx(3, START + 38 * DAY + 60, 1, 5, 1.0, false);
    store
        .observe(&[observation(&same_day)])
        .await
        .expect("observe");
    assert_eq!(zcard(&mut conn), 3, "pruned once a day: not yet");
    let next_day = tx(4, START + 39 * DAY + 60, 1, 5, 1.0, false);
    let w = store
        .observe(&[observation(&next_day)])
        .await
        .expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx, [1, 3, 3]);
    assert_eq!(zcard(&mut conn), 3, "the 39-day-old transaction is gone");
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
        namespace: Namespace::Real,
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
        .arg(keys::scores(START.div_euclid(DAY)))
        .query(&mut conn)
        .expect("hlen");
    assert_eq!(n, 5_000, "every queued score reached the store");
}

/// Layout v1's scorer, as the previous release ran it: its own scripts (kept as fixtures) on v1's keys.
struct V1Scorer {
    observe: redis::Script,
    label: redis::Script,
}

impl V1Scorer {
    fn new() -> Self {
        Self {
            observe: redis::Script::new(include_str!("fixtures/observe_v1.lua")),
            label: redis::Script::new(include_str!("fixtures/label_v1.lua")),
        }
    }

    fn observe(&self, conn: &mut redis::Connection, t: &Transaction) -> Windows {
        use fraudops_features::definition::{
            CUSTOMER_RETENTION, CUSTOMER_WINDOW_DAYS, CustomerWindows, MicroAmount,
            TERMINAL_DELAY_DAYS, TERMINAL_RETENTION, TERMINAL_WINDOW_DAYS, TerminalWindows,
            to_micro,
        };
        let slack = 7 * DAY;
        let mut call = self.observe.prepare_invoke();
        call.arg(1)
            .arg(DAY)
            .arg(CUSTOMER_WINDOW_DAYS[0])
            .arg(CUSTOMER_WINDOW_DAYS[1])
            .arg(CUSTOMER_WINDOW_DAYS[2])
            .arg(TERMINAL_DELAY_DAYS)
            .arg(TERMINAL_WINDOW_DAYS[0])
            .arg(TERMINAL_WINDOW_DAYS[1])
            .arg(TERMINAL_WINDOW_DAYS[2])
            .arg(CUSTOMER_RETENTION + slack)
            .arg(TERMINAL_RETENTION + slack)
            .arg(CUSTOMER_RETENTION + slack + DAY)
            .arg(TERMINAL_RETENTION + slack + DAY);
        call.key(keys::v1::customer(t.customer_id))
            .key(keys::v1::terminal(t.terminal_id))
            .key(keys::v1::terminal_fraud(t.terminal_id));
        let micro = to_micro(t.tx_amount);
        call.arg(t.tx_datetime)
            .arg(i64::try_from(micro / 1_000_000).expect("amount"))
            .arg(i64::try_from(micro % 1_000_000).expect("amount"))
            .arg(t.transaction_id.to_string())
            .arg(1);
        let v: Vec<i64> = call.invoke(conn).expect("v1 observe");
        assert_eq!(v[15], 0, "v1 recorded it");
        let count = |i: usize| u32::try_from(v[i]).expect("count");
        let sum = |w: usize| MicroAmount::from(v[3 + w]) * 1_000_000 + MicroAmount::from(v[6 + w]);
        Windows {
            customer: CustomerWindows::from_sums(
                [count(0), count(1), count(2)],
                [sum(0), sum(1), sum(2)],
            ),
            terminal: TerminalWindows::from_counts(
                [count(9), count(10), count(11)],
                [count(12), count(13), count(14)],
            ),
        }
    }

    fn label(&self, conn: &mut redis::Connection, t: &Transaction) {
        let mut call = self.label.prepare_invoke();
        call.arg(1).arg(51 * DAY + DAY);
        call.key(keys::v1::terminal(t.terminal_id))
            .key(keys::v1::terminal_fraud(t.terminal_id))
            .key(keys::v1::scores(t.tx_datetime.div_euclid(DAY)));
        call.arg(t.tx_datetime)
            .arg(t.transaction_id.to_string())
            .arg(u8::from(t.tx_fraud));
        let _: Vec<Option<String>> = call.invoke(conn).expect("v1 label");
    }
}

/// A rolling update from layout v1: the old release alone, then old and new replicas side by side (each
/// event and label to either, at random), then the new alone. The new scorer drains whatever v1 holds into
/// v2 on every touch, so its windows are the batch definition's throughout, every event the old one
/// recorded included; once the old one is gone no v1 key is left behind that a card's windows need.
#[tokio::test]
async fn a_rolling_update_from_layout_v1_keeps_every_card_s_history() {
    let Some(server) = RedisServer::start_or_skip("rolling_update_from_v1", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let old = V1Scorer::new();
    let mut conn = server.connection();
    let txs = random_transactions(31, 600);
    let batch = compute(&txs);
    let order = processing_order(&txs);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (mut by_old, mut by_new) = (0, 0);
    for (n, &i) in order.iter().enumerate() {
        let t = &txs[i as usize];
        // The first third before the rollout, the second during it, the last after it.
        let phase = n * 3 / order.len();
        let use_old = phase == 0 || (phase == 1 && rng.gen_bool(0.5));
        if use_old {
            by_old += 1;
            let w = old.observe(&mut conn, t);
            if phase == 0 {
                assert_same(
                    batch.row(i as usize),
                    &vector(t, &w),
                    &format!("v1 alone, tx {i}"),
                );
            }
            old.label(&mut conn, t);
        } else {
            by_new += 1;
            let w = store.observe(&[observation(t)]).await.expect("observe");
            assert_eq!(w[0].recorded, Recorded::Yes);
            assert_same(
                batch.row(i as usize),
                &vector(t, &w[0].windows),
                &format!("v2 (phase {phase}), tx {i}"),
            );
            store.apply_labels(&[label(t)]).await.expect("labels");
        }
    }
    assert!(
        by_old > 250 && by_new > 250,
        "{by_old} by v1, {by_new} by v2"
    );
    // Every card and terminal the new scorer touched after the old one stopped has no v1 key left.
    let v1_keys: Vec<String> = redis::cmd("KEYS")
        .arg("fraudops:v1:[ctf]:*")
        .query(&mut conn)
        .expect("keys");
    let touched_late: std::collections::HashSet<String> = order[order.len() * 2 / 3..]
        .iter()
        .flat_map(|&i| {
            let t = &txs[i as usize];
            [
                keys::v1::customer(t.customer_id),
                keys::v1::terminal(t.terminal_id),
            ]
        })
        .collect();
    let left: Vec<&String> = v1_keys
        .iter()
        .filter(|k| touched_late.contains(*k))
        .collect();
    assert!(left.is_empty(), "v1 keys left after the rollout: {left:?}");
}

/// Layout v2's scorer, as the previous release ran it: its `observe.lua` (kept as a fixture) on v2's card
/// key, the terminals' keys being the same in v2 and v3. Returns the windows and what it did (0 recorded,
/// 1 read only, 2 too old).
struct V2Scorer {
    observe: redis::Script,
}

impl V2Scorer {
    fn new() -> Self {
        Self {
            observe: redis::Script::new(include_str!("fixtures/observe_v2.lua")),
        }
    }

    fn observe(&self, conn: &mut redis::Connection, o: &Observation) -> (Windows, i64) {
        use fraudops_features::definition::to_micro;
        let mut call = self.observe.prepare_invoke();
        call.arg(1).arg(1).arg(0);
        for n in fraudops_store::testing::observe_header() {
            call.arg(n);
        }
        let micro = to_micro(o.amount);
        call.key(keys::v2_customer_of(o.namespace, o.customer_id))
            .key(keys::terminal(o.namespace, o.terminal_id))
            .key(keys::terminal_fraud(o.namespace, o.terminal_id));
        call.arg(o.time)
            .arg(i64::try_from(micro / 1_000_000).expect("amount"))
            .arg(i64::try_from(micro % 1_000_000).expect("amount"))
            .arg(o.transaction_id.as_str())
            .arg(u8::from(o.record))
            .arg(o.time)
            .arg(o.transaction_id.as_str())
            .arg("=1");
        let v: Vec<i64> = call.invoke(conn).expect("v2 observe");
        (raw_windows(&v[..10], &v[10..]), v[9])
    }
}

/// Windows from a script's integers (a card part, then a terminal part).
fn raw_windows(card: &[i64], terminal: &[i64]) -> Windows {
    use fraudops_features::definition::{CustomerWindows, MicroAmount, TerminalWindows};
    let count = |v: i64| u32::try_from(v).expect("count");
    let sum =
        |w: usize| MicroAmount::from(card[3 + w]) * 1_000_000 + MicroAmount::from(card[6 + w]);
    Windows {
        customer: CustomerWindows::from_sums(
            [count(card[0]), count(card[1]), count(card[2])],
            [sum(0), sum(1), sum(2)],
        ),
        terminal: TerminalWindows::from_counts(
            [count(terminal[0]), count(terminal[1]), count(terminal[2])],
            [count(terminal[3]), count(terminal[4]), count(terminal[5])],
        ),
    }
}

/// Layout v3's running totals answer what v2's walk over the card answered, call for call, on what real
/// streams do to a card: events late by up to three days (inserted before members already there, whose
/// totals move), ties and exact window boundaries (a 10-minute grid), redeliveries, read-only probes and
/// events older than the card's reach (their status; their windows are what is left); cards deep enough (≥ 100 transactions in 37 days) that a window
/// spans many members.
#[tokio::test]
async fn running_totals_answer_what_the_walk_answered_for_late_and_repeated_events() {
    let Some(server) = RedisServer::start_or_skip("running_totals_equal_the_walk", false) else {
        return;
    };
    // v3 on the real ids (nothing to drain: v2 runs on ids of its own), v2 on ids a million higher.
    let store = FeatureStore::connect(&server.url(), DEADLINE)
        .expect("connect")
        .with_drain(false);
    let old = V2Scorer::new();
    let mut conn = server.connection();
    let shifted = |o: &Observation| {
        let mut o = o.clone();
        o.customer_id += 1_000_000;
        o.terminal_id += 1_000_000;
        o
    };
    let mut rng = ChaCha8Rng::seed_from_u64(33);
    let mut txs: Vec<Transaction> = (0..600)
        .map(|i| {
            let t = START + rng.gen_range(0..45 * 144) * 600;
            let cents: u32 = rng.gen_range(1..2_000_000);
            tx(
                i,
                t,
                rng.gen_range(0..3),
                rng.gen_range(0..5),
                f64::from(cents) / 100.0,
                rng.gen_bool(0.1),
            )
        })
        .collect();
    txs.sort_by_key(|t| t.tx_datetime);
    // Delivery order: a fifth of the events up to three days late.
    let mut order: Vec<(i64, usize)> = txs
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let late = if rng.gen_bool(0.2) {
                rng.gen_range(0..3 * DAY)
            } else {
                0
            };
            (t.tx_datetime + late, i)
        })
        .collect();
    order.sort();
    let (mut late, mut deepest) = (0, 0);
    let mut recorded = std::collections::HashSet::<(String, u64, i64)>::new();
    let mut newest_of_card = std::collections::HashMap::<u64, i64>::new();
    for (n, &(_, i)) in order.iter().enumerate() {
        let t = &txs[i];
        let newest = newest_of_card.entry(t.customer_id).or_insert(t.tx_datetime);
        if t.tx_datetime < *newest {
            late += 1;
        }
        *newest = (*newest).max(t.tx_datetime);
        let mut calls = vec![observation(t)];
        if rng.gen_bool(0.1) {
            // A redelivery of an event already delivered.
            let (_, j) = order[rng.gen_range(0..=n)];
            calls.push(observation(&txs[j]));
        }
        if rng.gen_bool(0.1) {
            let mut probe = observation(&tx(
                10_000 + n as u64,
                t.tx_datetime + rng.gen_range(-DAY..DAY),
                t.customer_id,
                t.terminal_id,
                7.5,
                false,
            ));
            probe.record = false;
            calls.push(probe);
        }
        if rng.gen_bool(0.03) {
            calls.push(observation(&tx(
                20_000 + n as u64,
                *newest - 40 * DAY,
                t.customer_id,
                t.terminal_id,
                3.0,
                false,
            )));
        }
        for o in calls {
            let (want, status) = old.observe(&mut conn, &shifted(&o));
            let got = store
                .observe(std::slice::from_ref(&o))
                .await
                .expect("observe");
            let expected = match status {
                0 => Recorded::Yes,
                1 => Recorded::ReadOnly,
                _ => Recorded::TooOld,
            };
            assert_eq!(
                got[0].recorded, expected,
                "call {n}, tx {}",
                o.transaction_id
            );
            // A too-old event is scored from what is left, and v3 prunes once per day (v2 at every
            // event): its windows are incomplete in both, and not the same.
            if expected != Recorded::TooOld {
                // The oracle: the card's distinct recorded transactions in each window, this one once.
                let mine = |w: i64| {
                    let inside = |time: i64| time > o.time - w * DAY && time <= o.time;
                    let others = recorded
                        .iter()
                        .filter(|(id, c, time)| {
                            *c == o.customer_id && inside(*time) && *id != o.transaction_id
                        })
                        .count();
                    u32::try_from(others + 1).expect("count")
                };
                let counts = [mine(1), mine(7), mine(30)];
                let context = format!("call {n}, tx {}", o.transaction_id);
                assert_eq!(
                    got[0].windows.customer.nb_tx, counts,
                    "{context}: v3, oracle"
                );
                assert_eq!(want.customer.nb_tx, counts, "{context}: v2, oracle");
                assert_eq!(got[0].windows, want, "{context}");
            }
            if expected == Recorded::Yes {
                recorded.insert((o.transaction_id.clone(), o.customer_id, o.time));
            }
            deepest = deepest.max(got[0].windows.customer.nb_tx[2]);
        }
        let mut l = label(t);
        store
            .apply_labels(std::slice::from_ref(&l))
            .await
            .expect("labels");
        l.terminal_id += 1_000_000;
        store.apply_labels(&[l]).await.expect("labels");
    }
    assert!(late > 50, "{late} late events");
    assert!(deepest >= 100, "the deepest 30-day window held {deepest}");
}

/// A rolling update from layout v2: the old release alone, then old and new side by side (each event to
/// either, at random), then the new alone. The new scorer drains v2's card key into v3 on every touch, so
/// its windows are the batch definition's throughout; once the old one is gone, no v2 card key the new
/// scorer touched is left.
#[tokio::test]
async fn a_rolling_update_from_layout_v2_keeps_every_card_s_history() {
    let Some(server) = RedisServer::start_or_skip("rolling_update_from_v2", false) else {
        return;
    };
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let old = V2Scorer::new();
    let mut conn = server.connection();
    let txs = random_transactions(32, 600);
    let batch = compute(&txs);
    let order = processing_order(&txs);
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    let (mut by_old, mut by_new) = (0, 0);
    for (n, &i) in order.iter().enumerate() {
        let t = &txs[i as usize];
        let phase = n * 3 / order.len();
        let use_old = phase == 0 || (phase == 1 && rng.gen_bool(0.5));
        if use_old {
            by_old += 1;
            let (w, status) = old.observe(&mut conn, &observation(t));
            assert_eq!(status, 0, "v2 recorded tx {i}");
            if phase == 0 {
                assert_same(
                    batch.row(i as usize),
                    &vector(t, &w),
                    &format!("v2 alone, tx {i}"),
                );
            }
        } else {
            by_new += 1;
            let w = store.observe(&[observation(t)]).await.expect("observe");
            assert_eq!(w[0].recorded, Recorded::Yes);
            assert_same(
                batch.row(i as usize),
                &vector(t, &w[0].windows),
                &format!("v3 (phase {phase}), tx {i}"),
            );
        }
        store.apply_labels(&[label(t)]).await.expect("labels");
    }
    assert!(
        by_old > 250 && by_new > 250,
        "{by_old} by v2, {by_new} by v3"
    );
    let touched_late: std::collections::HashSet<u64> = order[order.len() * 2 / 3..]
        .iter()
        .map(|&i| txs[i as usize].customer_id)
        .collect();
    for card in touched_late {
        let left: i64 = redis::cmd("EXISTS")
            .arg(keys::v2_customer_of(Namespace::Real, card))
            .query(&mut conn)
            .expect("exists");
        assert_eq!(left, 0, "card {card}'s v2 key left after the rollout");
    }
}

/// Redis Cluster (`FEATURE_STORE_URL` with several addresses): three real shards give the windows of one
/// primary — the batch definition's, bit for bit, whatever the batching — and the label path (scores
/// recorded, labels joined with them, evaluation samples) works across slots.
#[tokio::test]
async fn a_three_shard_cluster_gives_the_windows_of_one_primary() {
    let Some(cluster) = RedisCluster::start_or_skip("three_shard_cluster", 3) else {
        return;
    };
    let store = FeatureStore::connect(&cluster.url(), DEADLINE).expect("connect");
    assert!(store.is_cluster());
    for (seed, chunk) in [(41, 1), (42, 16)] {
        // Ids apart per seed (no flush across shards): offset the cards and terminals.
        let txs: Vec<Transaction> = random_transactions(seed, 400)
            .into_iter()
            .map(|mut t| {
                t.customer_id += seed * 100;
                t.terminal_id += seed * 100;
                t
            })
            .collect();
        let batch = compute(&txs);
        let online = through_store(&store, &txs, chunk).await;
        for (i, v) in online.iter().enumerate() {
            assert_same(
                batch.row(i),
                v,
                &format!("cluster seed {seed} chunk {chunk} tx {i}"),
            );
        }
    }
    // The keys really are spread over the shards.
    let spread: std::collections::HashSet<usize> = (0..50)
        .map(|c| cluster.node_of_key(&keys::customer(Namespace::Real, 4100 + c)))
        .collect();
    assert_eq!(spread.len(), 3, "cards on every shard");
    // Scores across day slots come back with their labels; evaluation samples round-trip.
    let scored: Vec<Transaction> = (0..30)
        .map(|i| {
            tx(
                50_000 + i,
                START + i as i64 * DAY / 3,
                7,
                3 + i % 5,
                10.0,
                i % 4 == 0,
            )
        })
        .collect();
    let records: Vec<ScoreRecord> = scored
        .iter()
        .map(|t| ScoreRecord {
            transaction_id: t.transaction_id.to_string(),
            time: t.tx_datetime,
            namespace: Namespace::Real,
            score: StoredScore {
                fraud_probability: t.transaction_id as f64 / 1e6,
                is_fraud: false,
                model_version: "gbdt-0123456789ab".into(),
            },
        })
        .collect();
    store.record_scores(&records).await.expect("scores");
    let labels: Vec<Label> = scored.iter().map(label).collect();
    let joined = store.apply_labels(&labels).await.expect("labels");
    assert_eq!(
        joined,
        records
            .iter()
            .map(|r| Some(r.score.clone()))
            .collect::<Vec<_>>()
    );
    let samples: Vec<EvaluatedLabel> = scored
        .iter()
        .zip(&records)
        .map(|(t, r)| EvaluatedLabel {
            transaction_id: r.transaction_id.clone(),
            time: t.tx_datetime,
            customer_id: t.customer_id,
            fraud: t.tx_fraud,
            score: r.score.clone(),
        })
        .collect();
    store
        .record_evaluations(&samples)
        .await
        .expect("evaluations");
    let days = store.evaluation_days(100).await.expect("days");
    assert_eq!(days.len(), 10, "30 samples a third of a day apart");
    let mut loaded = 0;
    for day in days {
        loaded += store.load_evaluations(day).await.expect("load").0.len();
    }
    assert_eq!(loaded, 30);
}

/// A shard that is down fails the calls that need its keys, and only those: an event whose card and
/// terminal live on the other shards is still scored from the store. A card decides before its terminal
/// (cards first, then terminals), so an event whose card lives but whose terminal is down is recorded on
/// the card (the call fails: scored without history): each key's windows are the batch definition's over
/// the transactions that key recorded.
#[tokio::test]
async fn a_shard_down_fails_only_the_calls_that_need_its_keys() {
    let Some(mut cluster) = RedisCluster::start_or_skip("shard_down", 3) else {
        return;
    };
    let store = FeatureStore::connect(&cluster.url(), Duration::from_millis(300)).expect("connect");
    let txs = random_transactions(51, 300);
    let order = processing_order(&txs);
    let (before, after) = order.split_at(200);
    for &i in before {
        let t = &txs[i as usize];
        store.observe(&[observation(t)]).await.expect("observe");
        store.apply_labels(&[label(t)]).await.expect("labels");
    }
    // Kill the shard of card 0.
    let dead = cluster.node_of_key(&keys::customer(Namespace::Real, 0));
    cluster.kill(dead);
    let card_dead = |t: &Transaction| {
        cluster.node_of_key_alive(&keys::customer(Namespace::Real, t.customer_id), dead)
    };
    let terminal_dead = |t: &Transaction| {
        cluster.node_of_key_alive(&keys::terminal(Namespace::Real, t.terminal_id), dead)
    };
    let (mut on_card, mut on_terminal): (Vec<u32>, Vec<u32>) = (before.to_vec(), before.to_vec());
    let mut served: Vec<(u32, Windows)> = Vec::new();
    let mut failed = 0;
    for &i in after {
        let t = &txs[i as usize];
        let result = store.observe(&[observation(t)]).await;
        if !card_dead(t) {
            on_card.push(i);
        }
        match result {
            Ok(w) => {
                assert!(
                    !card_dead(t) && !terminal_dead(t),
                    "tx {i} needs the dead shard and was answered"
                );
                on_terminal.push(i);
                served.push((i, w[0].windows));
            }
            Err(e) => {
                assert!(
                    card_dead(t) || terminal_dead(t),
                    "tx {i} lives on the live shards and failed: {e}"
                );
                failed += 1;
            }
        }
    }
    assert!(
        served.len() > 10 && failed > 10,
        "{} served, {failed} failed",
        served.len()
    );
    // Labels were applied for the first part only: the rest count as unlabelled at their terminals.
    let labelled: std::collections::HashSet<u32> = before.iter().copied().collect();
    let batch_over = |ids: &mut Vec<u32>| {
        ids.sort_unstable();
        let kept: Vec<Transaction> = ids
            .iter()
            .map(|&i| {
                let mut t = txs[i as usize].clone();
                t.tx_fraud &= labelled.contains(&i);
                t
            })
            .collect();
        compute(&kept)
    };
    let (by_card, by_terminal) = (batch_over(&mut on_card), batch_over(&mut on_terminal));
    for (i, w) in served {
        let t = &txs[i as usize];
        let store_row = vector(t, &w);
        let card_row = by_card.row(on_card.binary_search(&i).expect("on its card"));
        let terminal_row = by_terminal.row(on_terminal.binary_search(&i).expect("on its terminal"));
        for (k, name) in FEATURE_NAMES.iter().enumerate() {
            let want = if name.starts_with("TERMINAL_ID") {
                terminal_row[k]
            } else {
                card_row[k]
            };
            assert_eq!(want.to_bits(), store_row[k].to_bits(), "tx {i}: {name}");
        }
    }
}

/// `FEATURE_STORE_DRAIN=false` (once every older scorer is gone): the scripts no longer look for v1 keys,
/// so a v1 key left behind is neither read nor deleted; with the default, it is drained.
#[tokio::test]
async fn the_v1_drain_can_be_switched_off_after_the_rollout() {
    let Some(server) = RedisServer::start_or_skip("v1_drain_off", false) else {
        return;
    };
    let old = V1Scorer::new();
    let mut conn = server.connection();
    let first = tx(1, START, 7, 3, 10.0, false);
    let second = tx(2, START + 60, 7, 3, 20.0, false);
    let third = tx(3, START + 120, 7, 3, 30.0, false);
    old.observe(&mut conn, &first);
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let off = store.clone().with_drain(false);
    let w = off.observe(&[observation(&second)]).await.expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx[0], 1, "v1 not read");
    let v1_left: i64 = redis::cmd("EXISTS")
        .arg(keys::v1::customer(7))
        .query(&mut conn)
        .expect("exists");
    assert_eq!(v1_left, 1, "v1 not deleted");
    let w = store
        .observe(&[observation(&third)])
        .await
        .expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx[0], 3, "drained: all three");
}

/// During a rolling update, synthetic traffic never drains a real card's or terminal's v1 history into the
/// synthetic namespace: its calls and labels leave the v1 keys to the real scorer.
#[tokio::test]
async fn synthetic_calls_and_labels_leave_real_v1_keys_alone() {
    let Some(server) = RedisServer::start_or_skip("synthetic_leaves_v1", false) else {
        return;
    };
    let old = V1Scorer::new();
    let mut conn = server.connection();
    let real = tx(1, START, 7, 3, 10.0, true);
    old.observe(&mut conn, &real);
    old.label(&mut conn, &real);
    let store = FeatureStore::connect(&server.url(), DEADLINE).expect("connect");
    let mut fake = observation(&tx(2, START + 60, 7, 3, 99.0, false));
    fake.namespace = Namespace::Synthetic;
    let w = store.observe(&[fake]).await.expect("observe");
    assert_eq!(
        w[0].windows.customer.nb_tx[0], 1,
        "the real card's v1 history is not read"
    );
    let mut fake_label = label(&tx(2, START + 60, 7, 3, 99.0, true));
    fake_label.namespace = Namespace::Synthetic;
    store.apply_labels(&[fake_label]).await.expect("label");
    for key in [
        keys::v1::customer(7),
        keys::v1::terminal(3),
        keys::v1::terminal_fraud(3),
    ] {
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query(&mut conn)
            .expect("exists");
        assert_eq!(exists, 1, "{key} left for the real scorer");
    }
    // The real scorer then drains all of it.
    let next = tx(3, START + 120, 7, 3, 20.0, false);
    let w = store.observe(&[observation(&next)]).await.expect("observe");
    assert_eq!(w[0].windows.customer.nb_tx[0], 2);
}
