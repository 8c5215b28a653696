//! The hostile-input suite (issue 29): each attack on the API and its feature store, tried against a real
//! server on a random port and a real `redis-server`, and shown refused or harmless: the store's windows
//! bit-identical, Redis not grown, no 5xx, honest callers still answered.

use std::sync::Arc;
use std::time::Duration;

use fraudops_store::testing::RedisServer;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::support::{KeysFile, TestServer, metric, transaction, wait_for};

const PAYMENTS: &str = "k-payments";
const PROBE: &str = "k-probe";
const WORKER: &str = "k-worker";

fn keys() -> KeysFile {
    KeysFile::new(&[
        ("payments", "record", PAYMENTS),
        ("probe", "score", PROBE),
        ("worker", "record,history", WORKER),
    ])
}

/// A payment flow's direct call: card, terminal and time, nothing precomputed.
fn direct(id: u64, card: u64, terminal: u64, at: &str, amount: f64) -> Value {
    json!({
        "transaction_id": id, "amount": amount, "customer_id": card, "terminal_id": terminal,
        "tx_datetime": at, "merchant_category": "grocery", "user_age": 41, "account_balance": 900.0
    })
}

/// A card's recent history at a terminal with fraud on record: windows the model weighs heavily.
fn history_of_card_7() -> Vec<Value> {
    vec![
        direct(1, 7, 3, "2018-04-01 10:00:00", 50.0),
        direct(2, 7, 3, "2018-04-01 11:00:00", 900.0),
        direct(3, 7, 3, "2018-04-01 12:00:00", 950.0),
    ]
}

/// The next transaction of card 7, whose score shows whether its history is intact.
fn next_of_card_7() -> Value {
    direct(4, 7, 3, "2018-04-01 13:00:00", 1000.0)
}

async fn send(
    server: &TestServer,
    key: Option<&str>,
    path: &str,
    body: &Value,
) -> reqwest::Response {
    let mut request = server.client.post(server.url(path)).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.expect("request sent")
}

async fn score(server: &TestServer, key: &str, body: &Value) -> f64 {
    let response = send(server, Some(key), "/predict", body).await;
    assert_eq!(response.status(), 200, "{body}");
    let answer: Value = response.json().await.expect("json");
    answer["fraud_probability"].as_f64().expect("probability")
}

fn dbsize(redis: &RedisServer) -> i64 {
    redis::cmd("DBSIZE")
        .query(&mut redis.connection())
        .expect("dbsize")
}

/// A server with the keys above and the store, as production runs it (quota on, metrics on their port).
async fn guarded(
    redis: &RedisServer,
    keys: &KeysFile,
    configure: impl FnOnce(&mut fraudops_serve::ServeConfig),
) -> TestServer {
    let (url, path) = (redis.url(), keys.path());
    TestServer::configured(move |c| {
        c.feature_store.url = Some(url);
        c.feature_store.timeout = Duration::from_secs(2);
        c.api_keys_file = Some(path);
        c.metrics_port = Some(0);
        configure(c);
    })
    .await
}

/// Card 7's history recorded alike on two guarded servers with stores of their own: the test attacks
/// `server`; `twin` never sees the attack, so its next score for the card is the one `server` must give.
struct Twins {
    redis: RedisServer,
    server: TestServer,
    twin: TestServer,
    _twin_redis: RedisServer,
    _keys: KeysFile,
}

async fn twins(test: &str) -> Option<Twins> {
    let redis = RedisServer::start_or_skip(test, false)?;
    let twin_redis = RedisServer::start_or_skip(&format!("{test}_twin"), false)?;
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    let twin = guarded(&twin_redis, &keys, |_| {}).await;
    for tx in history_of_card_7() {
        score(&server, PAYMENTS, &tx).await;
        score(&twin, PAYMENTS, &tx).await;
    }
    Some(Twins {
        redis,
        server,
        twin,
        _twin_redis: twin_redis,
        _keys: keys,
    })
}

#[tokio::test]
async fn a_future_dated_call_cannot_erase_a_cards_history() {
    // Bound whole: the twin's Redis and the keys file live as long as the test.
    let Some(twins) = twins("hostile_future_dated").await else {
        return;
    };
    let (redis, server, twin) = (&twins.redis, &twins.server, &twins.twin);
    let before = redis.dump_windows();
    // The attack of issue 29: the card's and the terminal's ids, a time far ahead (and one just ahead).
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    for at in ["2099-01-01 00:00:00", tomorrow.as_str()] {
        for key in [PAYMENTS, WORKER] {
            let refused = send(server, Some(key), "/predict", &direct(99, 7, 3, at, 1.0)).await;
            assert_eq!(refused.status(), 422, "{at}");
            let body: Value = refused.json().await.expect("json");
            assert_eq!(body["field"], "tx_datetime", "{body}");
        }
        let batch = json!({"transactions": [direct(98, 8, 3, "2018-04-01 12:30:00", 1.0), direct(99, 7, 3, at, 1.0)]});
        let refused = send(server, Some(PAYMENTS), "/predict/batch", &batch).await;
        assert_eq!(refused.status(), 422);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["field"], "transactions[1].tx_datetime", "{body}");
    }
    assert_eq!(redis.dump_windows(), before, "every window bit-identical");
    let next = next_of_card_7();
    assert_eq!(
        score(server, PAYMENTS, &next).await.to_bits(),
        score(twin, PAYMENTS, &next).await.to_bits(),
        "the card's next score is the one it would have had without the attack"
    );
}

#[tokio::test]
async fn without_a_valid_key_nothing_is_scored_or_recorded() {
    let Some(redis) = RedisServer::start_or_skip("hostile_no_key", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    for key in [None, Some("guessed"), Some("")] {
        for path in ["/predict", "/predict/batch"] {
            let body = if path == "/predict" {
                next_of_card_7()
            } else {
                json!({"transactions": [next_of_card_7()]})
            };
            let refused = send(&server, key, path, &body).await;
            assert_eq!(refused.status(), 401, "{key:?} {path}");
            assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        }
    }
    assert_eq!(dbsize(&redis), 0, "nothing reached the store");
    // Probes stay open to the kubelet.
    assert_eq!(server.get("/health").await.status(), 200);
    assert_eq!(server.get("/ready").await.status(), 200);
    let text = server.metrics().await;
    for (series, n) in [
        (
            "api_client_refusals_total{client=\"unknown\",reason=\"missing_key\"}",
            4.0,
        ),
        (
            "api_client_refusals_total{client=\"unknown\",reason=\"invalid_key\"}",
            2.0,
        ),
        (
            "http_requests_rejected_total{reason=\"unauthenticated\"}",
            6.0,
        ),
    ] {
        assert_eq!(metric(&text, series), Some(n), "{series}");
    }
    assert!(!text.contains("guessed"), "keys are never echoed");
}

#[tokio::test]
async fn a_score_only_key_reads_the_windows_and_writes_nothing() {
    // Bound whole: the twin's Redis and the keys file live as long as the test.
    let Some(twins) = twins("hostile_score_only").await else {
        return;
    };
    let (redis, server, twin) = (&twins.redis, &twins.server, &twins.twin);
    let before = redis.dump_windows();
    // Invented transactions for the real card and terminal, as an outsider with a scoring key would send.
    let next = next_of_card_7();
    let probed = score(server, PROBE, &next).await;
    for i in 0..20 {
        score(
            server,
            PROBE,
            &direct(500 + i, 7, 3, "2018-04-01 12:59:00", 5000.0),
        )
        .await;
    }
    assert_eq!(
        redis.dump_windows(),
        before,
        "a score-only key wrote nothing"
    );
    let recorded = score(server, PAYMENTS, &next).await;
    assert_eq!(
        recorded.to_bits(),
        probed.to_bits(),
        "the read-only score is the one recording it gives"
    );
    assert_eq!(
        recorded.to_bits(),
        score(twin, PAYMENTS, &next).await.to_bits(),
        "the next recorded call scores as if the probes never happened"
    );
}

#[tokio::test]
async fn random_ids_cannot_fill_the_store() {
    let Some(redis) = RedisServer::start_or_skip("hostile_random_ids", false) else {
        return;
    };
    let keys = keys();
    let server = Arc::new(guarded(&redis, &keys, |_| {}).await);
    let tasks: Vec<_> = (0..8u64)
        .map(|lane| {
            let server = server.clone();
            tokio::spawn(async move {
                for i in 0..250u64 {
                    let id = lane * 1_000_000 + i * 7919 + 13;
                    let body = direct(id, id, id + 1, "2018-04-01 10:00:00", 10.0);
                    let status = send(&server, Some(PROBE), "/predict", &body).await.status();
                    assert_eq!(status, 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("lane");
    }
    assert_eq!(
        dbsize(&redis),
        0,
        "2000 invented cards and terminals, no key created"
    );
}

#[tokio::test]
async fn history_needs_its_scope() {
    let Some(redis) = RedisServer::start_or_skip("hostile_history_scope", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    let mut forged = next_of_card_7();
    forged["history"] = json!({"terminal": {"nb_tx_1day": 1, "risk_1day": 0, "nb_tx_7day": 1,
        "risk_7day": 0, "nb_tx_30day": 1, "risk_30day": 0}});
    for key in [PAYMENTS, PROBE] {
        let refused = send(&server, Some(key), "/predict", &forged).await;
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["field"], "history", "{body}");
        let batch = json!({"transactions": [next_of_card_7(), forged.clone()]});
        let refused = send(&server, Some(key), "/predict/batch", &batch).await;
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.expect("json");
        assert_eq!(body["field"], "transactions[1].history", "{body}");
    }
    assert_eq!(
        send(&server, Some(WORKER), "/predict", &forged)
            .await
            .status(),
        200
    );
    assert_eq!(dbsize(&redis), 0, "the refused calls recorded nothing");
}

#[tokio::test]
async fn a_client_cannot_leave_its_quota_by_changing_what_it_controls() {
    let Some(redis) = RedisServer::start_or_skip("hostile_quota", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |c| {
        c.rate_limit_rps = 1;
        c.rate_limit_burst = 5;
    })
    .await;
    let mut statuses = Vec::new();
    for i in 0..20 {
        // A fresh connection, address header and key-like header each time.
        let client = reqwest::Client::new();
        let status = client
            .post(server.url("/predict"))
            .bearer_auth(PROBE)
            .header("x-forwarded-for", format!("10.0.0.{i}"))
            .header("x-api-key", format!("spoof-{i}"))
            .json(&transaction(&format!("q{i}")))
            .send()
            .await
            .expect("send")
            .status()
            .as_u16();
        statuses.push(status);
    }
    let ok = statuses.iter().filter(|&&s| s == 200).count();
    assert!((5..=6).contains(&ok), "{statuses:?}");
    assert!(
        statuses.iter().all(|&s| s == 200 || s == 429),
        "{statuses:?}"
    );
    assert_eq!(
        send(&server, Some(PAYMENTS), "/predict", &transaction("other"))
            .await
            .status(),
        200,
        "another client is not affected"
    );
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_only() {
    let Some(redis) = RedisServer::start_or_skip("hostile_metrics_port", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    assert_eq!(server.get("/metrics").await.status(), 404);
    let metrics = reqwest::get(format!(
        "http://{}/metrics",
        server.metrics_addr.expect("port")
    ))
    .await
    .expect("metrics");
    assert_eq!(metrics.status(), 200);
}

#[tokio::test]
async fn a_huge_bad_value_is_not_echoed() {
    let Some(redis) = RedisServer::start_or_skip("hostile_echo", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    let huge = "9".repeat(1_000_000);
    let mut body = next_of_card_7();
    body["tx_datetime"] = huge.into();
    let response = send(&server, Some(PAYMENTS), "/predict", &body).await;
    assert_eq!(response.status(), 422);
    let text = response.text().await.expect("text");
    assert!(text.len() < 512, "{} bytes: {text}", text.len());
}

/// Opens a connection and sends the headers of a `/predict` with a body of `declared` bytes and then
/// `sent` of them, and nothing more.
async fn stalled_body(server: &TestServer, declared: usize, sent: usize) -> TcpStream {
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    let head = format!(
        "POST /predict HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {PAYMENTS}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    stream
        .write_all(&vec![b' '; sent])
        .await
        .expect("part of the body");
    stream
}

#[tokio::test]
async fn slow_and_huge_bodies_cannot_starve_honest_callers() {
    let Some(redis) = RedisServer::start_or_skip("hostile_slow_bodies", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |c| {
        c.max_in_flight = 8;
        c.max_body_bytes = 1 << 20;
        c.max_body_bytes_in_flight = 4 << 20;
        c.body_read_timeout_seconds = 3;
    })
    .await;
    // Ten times the in-flight cap of slow single transactions, and maximum-size bodies held half sent:
    // together more than the body budget.
    let mut held = Vec::new();
    for _ in 0..80 {
        held.push(stalled_body(&server, 400, 200).await);
    }
    for _ in 0..8 {
        held.push(stalled_body(&server, 1 << 20, 600_000).await);
    }
    // The honest payment flow is answered meanwhile.
    for i in 0..20 {
        let s = score(
            &server,
            PAYMENTS,
            &direct(700 + i, 9, 4, "2018-04-02 10:00:00", 20.0),
        )
        .await;
        assert!(s.is_finite());
    }
    // The held bodies time out (408), freeing everything; no 5xx but the budget's 503s.
    assert!(
        wait_for(Duration::from_secs(10), || async {
            let text = server.metrics().await;
            metric(&text, "http_requests_in_progress") == Some(0.0)
        })
        .await,
        "the stalled requests end at their deadline"
    );
    drop(held);
    let text = server.metrics().await;
    let timed_out = metric(
        &text,
        "http_requests_rejected_total{reason=\"body_timeout\"}",
    )
    .unwrap_or(0.0);
    let shed = metric(&text, "http_requests_rejected_total{reason=\"overload\"}").unwrap_or(0.0);
    assert_eq!(
        timed_out + shed,
        88.0,
        "every stalled body was refused: {timed_out} timed out, {shed} shed"
    );
    assert!(
        shed >= 2.0,
        "the maximum-size bodies beyond the budget were shed: {shed}"
    );
    assert_eq!(
        metric(&text, "http_errors_total{status_class=\"5xx\"}"),
        Some(shed),
        "no 5xx but the sheds"
    );
}

#[tokio::test]
async fn keys_rotate_and_are_revoked_without_a_restart() {
    let Some(redis) = RedisServer::start_or_skip("hostile_rotation", false) else {
        return;
    };
    let keys = keys();
    let server = guarded(&redis, &keys, |_| {}).await;
    let body = transaction("rot");
    assert_eq!(
        send(&server, Some(PROBE), "/predict", &body).await.status(),
        200
    );
    // Rotation: the new key beside the old, then the old line removed (revocation).
    keys.write(&[("probe", "score", PROBE), ("probe", "score", "k-probe-2")]);
    assert!(
        wait_for(Duration::from_secs(15), || async {
            send(&server, Some("k-probe-2"), "/predict", &body)
                .await
                .status()
                == 200
        })
        .await
    );
    assert_eq!(
        send(&server, Some(PROBE), "/predict", &body).await.status(),
        200
    );
    keys.write(&[("probe", "score", "k-probe-2")]);
    assert!(
        wait_for(Duration::from_secs(15), || async {
            send(&server, Some(PROBE), "/predict", &body).await.status() == 401
        })
        .await
    );
    assert_eq!(
        send(&server, Some("k-probe-2"), "/predict", &body)
            .await
            .status(),
        200
    );
}
