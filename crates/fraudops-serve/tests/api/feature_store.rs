//! Direct `POST /predict` calls with the online feature store (real `redis-server`): scored exactly as if
//! the caller had sent the training definition's windows, and never failed by a store that is down.

use std::time::{Duration, Instant};

use fraudops_data::writer::format_datetime;
use fraudops_data::{MerchantCategory, Transaction};
use fraudops_features::FeatureVector;
use fraudops_features::batch::{compute, processing_order};
use fraudops_features::definition::DAY;
use fraudops_store::testing::RedisServer;
use fraudops_store::{FeatureStore, Label};
use serde_json::{Value, json};

use crate::support::{TestServer, metric};

const START: i64 = 1_533_081_600; // 2018-08-01
const ERRORS: &str = "ml_model_feature_store_errors_total{op=\"observe\"}";

/// A month of a few cards and terminals, some fraud: windows fill up and terminal risk is non-zero.
fn transactions() -> Vec<Transaction> {
    (0..90u64)
        .map(|i| {
            let t = START + i64::try_from(i).unwrap_or(0) * 8 * 3600 + (i as i64 % 5) * 600;
            Transaction {
                transaction_id: 1000 + i,
                tx_datetime: t,
                customer_id: i % 4,
                terminal_id: i % 3,
                tx_amount: 10.0 + (i % 7) as f64 * 13.25,
                tx_time_seconds: t - START,
                tx_time_days: (t - START) / DAY,
                tx_fraud: i % 6 == 0,
                tx_fraud_scenario: 0,
                merchant_category: Some(MerchantCategory::Grocery),
                user_age: Some(41.0),
                account_balance: Some(900.0),
            }
        })
        .collect()
}

/// The request a payment flow sends: the transaction and nothing precomputed.
fn direct(tx: &Transaction) -> Value {
    json!({
        "transaction_id": tx.transaction_id, "amount": tx.tx_amount,
        "customer_id": tx.customer_id, "terminal_id": tx.terminal_id,
        "tx_datetime": format_datetime(tx.tx_datetime), "merchant_category": "grocery",
        "user_age": 41, "account_balance": 900.0
    })
}

/// The same request with the batch definition's windows as `history`.
fn with_history(tx: &Transaction, v: &FeatureVector) -> Value {
    let n = |x: f64| x as u32;
    let mut body = direct(tx);
    body["history"] = json!({
        "customer": {"nb_tx_1day": n(v[3]), "avg_amount_1day": v[4], "nb_tx_7day": n(v[5]),
                     "avg_amount_7day": v[6], "nb_tx_30day": n(v[7]), "avg_amount_30day": v[8]},
        "terminal": {"nb_tx_1day": n(v[9]), "risk_1day": v[10], "nb_tx_7day": n(v[11]),
                     "risk_7day": v[12], "nb_tx_30day": n(v[13]), "risk_30day": v[14]}
    });
    body
}

async fn probability(server: &TestServer, body: &Value) -> f64 {
    let answer = server.post_for_json("/predict", body).await;
    answer["fraud_probability"]
        .as_f64()
        .unwrap_or_else(|| panic!("no prediction: {answer}"))
}

async fn with_store(redis: &RedisServer, timeout: Duration) -> TestServer {
    let url = redis.url();
    TestServer::configured(move |c| {
        c.feature_store.url = Some(url);
        c.feature_store.timeout = timeout;
    })
    .await
}

/// A server on the store, a reference scoring the training windows sent as history, and the label
/// consumer's store: a direct call must score as the reference does.
struct AgainstTraining {
    server: TestServer,
    reference: TestServer,
    labels: FeatureStore,
}

impl AgainstTraining {
    async fn start(redis: &RedisServer) -> Self {
        Self {
            server: with_store(redis, Duration::from_secs(2)).await,
            reference: TestServer::embedded().await,
            labels: FeatureStore::connect(&redis.url(), Duration::from_secs(2)).expect("store"),
        }
    }

    /// Scores `tx` directly, checks it against its training windows `row`, then applies its label (the
    /// chargeback arrives; only labels 7 days old count).
    async fn direct_call_scores_like_training(
        &self,
        i: u32,
        tx: &Transaction,
        row: &FeatureVector,
    ) {
        let got = probability(&self.server, &direct(tx)).await;
        let expected = probability(&self.reference, &with_history(tx, row)).await;
        assert_eq!(
            got.to_bits(),
            expected.to_bits(),
            "transaction {i}: {got} vs {expected}"
        );
        self.labels
            .apply_labels(&[Label::from(tx)])
            .await
            .expect("label");
    }
}

#[tokio::test]
async fn a_direct_call_scores_like_the_training_windows() {
    let Some(redis) = RedisServer::start_or_skip("a_direct_call_scores_like_training", false)
    else {
        return;
    };
    let check = AgainstTraining::start(&redis).await;
    let txs = transactions();
    let batch = compute(&txs);
    let mut with_terminal_risk = 0;
    for i in processing_order(&txs) {
        let row = batch.row(i as usize);
        check
            .direct_call_scores_like_training(i, &txs[i as usize], row)
            .await;
        with_terminal_risk += usize::from(row[14] > 0.0);
    }
    assert!(with_terminal_risk > 20, "the data exercises terminal risk");
    check.server.assert_samples(&[(ERRORS, 0.0)]).await;
}

/// The attack's and the drills' events are marked `synthetic`: interleaved with a real payment flow on the
/// same card and terminal ids, at odd amounts, they never change a real transaction's score, which stays
/// the training definition's bit for bit; their history is kept in keys of their own.
#[tokio::test]
async fn synthetic_traffic_never_changes_a_real_card_s_windows() {
    let Some(redis) = RedisServer::start_or_skip("synthetic_traffic_apart", false) else {
        return;
    };
    let check = AgainstTraining::start(&redis).await;
    let txs = transactions();
    let batch = compute(&txs);
    for i in processing_order(&txs) {
        let tx = &txs[i as usize];
        // An attack on the same card and terminal a minute before, three times, at ten times the amount.
        for k in 0..3u64 {
            let mut fake = tx.clone();
            fake.transaction_id = 900_000 + tx.transaction_id * 3 + k;
            fake.tx_datetime -= 60;
            fake.tx_amount *= 10.0;
            let mut body = direct(&fake);
            body["synthetic"] = json!(true);
            let answer = check.server.post_for_json("/predict", &body).await;
            assert_eq!(answer["feature_source"], "store", "{answer}");
        }
        check
            .direct_call_scores_like_training(i, tx, batch.row(i as usize))
            .await;
    }
    let mut conn = redis.connection();
    let count = |pattern: &str, conn: &mut redis::Connection| -> usize {
        redis::cmd("KEYS")
            .arg(pattern)
            .query::<Vec<String>>(conn)
            .expect("keys")
            .len()
    };
    assert_eq!(count("fraudops:v3:{c*", &mut conn), 4, "the real cards");
    assert_eq!(
        count("fraudops:v3:{sync*", &mut conn),
        4,
        "the attack's, apart"
    );
}

#[tokio::test]
async fn history_in_the_request_wins_and_is_not_recorded() {
    let Some(redis) = RedisServer::start_or_skip("history_in_the_request_wins", false) else {
        return;
    };
    let server = with_store(&redis, Duration::from_secs(2)).await;
    let txs = transactions();
    let batch = compute(&txs);
    let answer = server
        .post_for_json("/predict", &with_history(&txs[0], batch.row(0)))
        .await;
    assert_eq!(answer["feature_source"], "request", "{answer}");
    // The seed's minimal schema: no card, nothing to look up.
    let minimal = json!({"transaction_id": 1, "amount": 12.5});
    let answer = server.post_for_json("/predict", &minimal).await;
    assert_eq!(answer["feature_source"], "none", "{answer}");
    let mut conn = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let keys: i64 = redis::cmd("DBSIZE").query(&mut conn).expect("dbsize");
    assert_eq!(
        keys, 0,
        "nothing recorded for requests that bring or cannot have history"
    );
}

#[tokio::test]
async fn a_store_that_stops_under_load_degrades_scoring_and_comes_back() {
    let Some(mut redis) = RedisServer::start_or_skip("a_store_that_stops_under_load", false) else {
        return;
    };
    let server = std::sync::Arc::new(with_store(&redis, Duration::from_millis(50)).await);
    let load = |from: u64, n: u64| {
        let server = server.clone();
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in from..from + n {
                let mut tx = transactions()[(i % 90) as usize].clone();
                tx.transaction_id = i;
                statuses.push(
                    server
                        .post_json("/predict", &direct(&tx))
                        .await
                        .status()
                        .as_u16(),
                );
            }
            statuses
        })
    };
    let before = server
        .post_for_json("/predict", &direct(&transactions()[0]))
        .await;
    assert_eq!(before["feature_source"], "store", "{before}");
    let running = load(0, 400);
    // Stop the store while requests are flowing: after 50 of them used it.
    while metric(
        &server.metrics().await,
        "ml_model_feature_store_duration_seconds_count",
    )
    .is_none_or(|n| n < 50.0)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    redis.kill();
    let statuses = running.await.expect("load");
    assert!(
        statuses.iter().all(|&s| s == 200),
        "every request answered 200 while the store was down: {:?}",
        statuses.iter().filter(|&&s| s != 200).collect::<Vec<_>>()
    );
    let text = server.metrics().await;
    let errors = metric(&text, ERRORS).expect("error counter");
    assert!(errors > 0.0, "store failures are counted");
    let unavailable = server
        .post_for_json("/predict", &direct(&transactions()[1]))
        .await;
    assert_eq!(
        unavailable["feature_source"], "store_unavailable",
        "the answer says it was scored without the history it needed: {unavailable}"
    );
    let text = server.metrics().await;
    assert!(
        metric(
            &text,
            "ml_model_feature_source_total{source=\"store_unavailable\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "counted by value"
    );
    assert_eq!(server.get("/ready").await.status(), 200, "still ready");

    // Back: within the breaker's pause requests use the store again, and stop counting errors.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut conn = loop {
        if let Ok(c) = redis::Client::open(redis.url()).and_then(|c| c.get_connection()) {
            break c;
        }
        assert!(Instant::now() < deadline, "redis did not come back");
    };
    let mut next = 10_000;
    loop {
        let mut tx = transactions()[0].clone();
        tx.transaction_id = next;
        tx.customer_id = 777;
        next += 1;
        assert_eq!(
            server.post_json("/predict", &direct(&tx)).await.status(),
            200
        );
        let recorded: i64 = redis::cmd("ZCARD")
            .arg(fraudops_store::keys::customer(
                fraudops_store::Namespace::Real,
                777,
            ))
            .query(&mut conn)
            .expect("zcard");
        if recorded > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "scoring never used the store again"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_slow_store_call_does_not_degrade_the_next_calls() {
    let Some(redis) = RedisServer::start_or_skip("one_slow_store_call", false) else {
        return;
    };
    let server = with_store(&redis, Duration::from_millis(50)).await;
    let txs = transactions();
    let source = |answer: Value| answer["feature_source"].as_str().unwrap_or("?").to_owned();
    assert_eq!(
        source(server.post_for_json("/predict", &direct(&txs[0])).await),
        "store"
    );
    // Redis stalls 150 ms (as during a fork or a slow disk): the call in flight misses its 50 ms deadline.
    // (The old breaker then refused every call for 250 ms: the calls below, at ~150 ms, with it.)
    let mut admin = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(150)
        .arg("ALL")
        .query(&mut admin)
        .expect("pause");
    assert_eq!(
        source(server.post_for_json("/predict", &direct(&txs[1])).await),
        "store_unavailable"
    );
    // As soon as Redis answers again (a PING returns when the pause ends), the next calls use it: one
    // failure does not open the breaker, so no pause of every call follows it.
    let url = redis.url();
    tokio::task::spawn_blocking(move || {
        let mut c = redis::Client::open(url)
            .and_then(|c| c.get_connection())
            .expect("redis");
        let _: String = redis::cmd("PING").query(&mut c).expect("ping");
    })
    .await
    .expect("ping task");
    for tx in &txs[2..6] {
        assert_eq!(
            source(server.post_for_json("/predict", &direct(tx)).await),
            "store"
        );
    }
}

#[tokio::test]
async fn a_full_store_keeps_answers_coming_and_says_so() {
    let Some(redis) = RedisServer::start_or_skip("a_full_store", false) else {
        return;
    };
    let server = with_store(&redis, Duration::from_secs(1)).await;
    // Connections, the script cache and the recorder are in place before the store's memory is read.
    server
        .post_json("/predict", &direct(&transactions()[0]))
        .await;
    let mut admin = redis::Client::open(redis.url())
        .and_then(|c| c.get_connection())
        .expect("redis");
    let deadline = Instant::now() + Duration::from_secs(10);
    while redis::cmd("KEYS")
        .arg("fraudops:v2:{s*")
        .query::<Vec<String>>(&mut admin)
        .expect("keys")
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the score recorder wrote nothing"
        );
        tokio::task::yield_now().await;
    }
    let used: i64 = {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query(&mut admin)
            .expect("info");
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .expect("used_memory")
    };
    // As deployed (deploy/k8s/base/redis.conf): noeviction, so a full store refuses writes.
    for (k, v) in [
        ("maxmemory-policy", "noeviction".to_owned()),
        ("maxmemory", (used + 1024 * 1024).to_string()),
    ] {
        let _: () = redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(v)
            .query(&mut admin)
            .expect("config");
    }
    let mut sources = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..8_000u64 {
        let mut tx = transactions()[(i % 90) as usize].clone();
        tx.transaction_id = 100_000 + i;
        tx.customer_id = 1_000 + i;
        tx.terminal_id = 5_000 + i;
        let response = server.post_json("/predict", &direct(&tx)).await;
        assert_eq!(response.status(), 200, "answers keep coming at the limit");
        let answer: Value = response.json().await.expect("json");
        *sources
            .entry(answer["feature_source"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    assert!(
        sources.get("store").is_some_and(|&n| n > 100),
        "{sources:?}"
    );
    assert!(
        sources.get("store_unavailable").is_some_and(|&n| n > 100),
        "past maxmemory the calls say they were scored without the store: {sources:?}"
    );
    let text = server.metrics().await;
    assert!(
        metric(
            &text,
            "ml_model_feature_source_total{source=\"store_unavailable\"}"
        )
        .is_some_and(|n| n >= 100.0),
        "counted"
    );
}
