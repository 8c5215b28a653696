//! Overload is shed at once with 503 + Retry-After; noisy clients get 429; probes are never blocked.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{KeysFile, TestServer, metric, transaction, wait_for};

/// A `/predict` request whose body is sent in two halves: between them it holds a slot in flight.
pub struct SlowRequest {
    stream: TcpStream,
    rest: Vec<u8>,
}

impl SlowRequest {
    pub async fn begin(server: &TestServer) -> Self {
        let body = transaction("slow").to_string().into_bytes();
        let (first, rest) = body.split_at(body.len() / 2);
        let mut stream = TcpStream::connect(server.addr).await.expect("connect");
        let head = format!(
            "POST /predict HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        stream.write_all(first).await.expect("write first half");
        Self {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body; returns the status code.
    pub async fn finish(mut self) -> u16 {
        self.stream.write_all(&self.rest).await.expect("write rest");
        self.wait_status().await
    }

    /// Sends nothing more; returns the status code the server answers with.
    pub async fn wait_status(mut self) -> u16 {
        let mut response = Vec::new();
        self.stream
            .read_to_end(&mut response)
            .await
            .expect("read response");
        let text = String::from_utf8_lossy(&response);
        text.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line")
    }
}

async fn in_progress(server: &TestServer) -> f64 {
    metric(&server.metrics().await, "http_requests_in_progress").unwrap_or(-1.0)
}

/// A "feature store" that accepts connections and never answers: requests that need it hold their place
/// among those in flight until the store's deadline.
async fn stalled_store() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("redis://{}/0", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

/// A direct call: card, terminal and time, no history (it asks the feature store).
fn direct(id: &str) -> Value {
    let mut body = transaction(id);
    body["customer_id"] = 1.into();
    body["terminal_id"] = 2.into();
    body["tx_datetime"] = "2018-04-01 10:00:00".into();
    body
}

#[tokio::test]
async fn excess_requests_are_shed_immediately_with_retry_after() {
    let (store, _stalled) = stalled_store().await;
    let server = std::sync::Arc::new(
        TestServer::configured(|config| {
            config.max_in_flight = 2;
            config.feature_store.url = Some(store);
            config.feature_store.timeout = Duration::from_secs(3);
        })
        .await,
    );
    // Two direct calls wait on the store, each holding a place in flight.
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let server = server.clone();
            tokio::spawn(async move {
                server
                    .post_json("/predict", &direct(&format!("w{i}")))
                    .await
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // The /metrics request itself is in progress while it renders, hence 3.
    assert!(
        wait_for(Duration::from_secs(5), || async {
            in_progress(&server).await == 3.0
        })
        .await
    );

    let started = std::time::Instant::now();
    let shed = server.post_json("/predict", &transaction("third")).await;
    assert_eq!(shed.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "shedding must not wait"
    );
    assert_eq!(shed.headers()["retry-after"], "1");
    let body: Value = shed.json().await.expect("json");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("capacity"))
    );

    // Probes and metrics are never behind the cap.
    assert_eq!(server.get("/health").await.status(), 200);
    assert_eq!(server.get("/ready").await.status(), 200);

    // The store's deadline passes: both are scored without history.
    for w in waiting {
        assert_eq!(w.await.expect("task"), 200);
    }
    assert_eq!(server.predict_status("after").await, 200);
    server
        .assert_samples(&[
            ("http_requests_rejected_total{reason=\"overload\"}", 1.0),
            ("http_errors_total{status_class=\"5xx\"}", 1.0),
        ])
        .await;
}

#[tokio::test]
async fn a_slow_body_holds_no_place_in_flight() {
    let server = TestServer::configured(|config| config.max_in_flight = 1).await;
    let slow = SlowRequest::begin(&server).await;
    assert!(
        wait_for(Duration::from_secs(5), || async {
            in_progress(&server).await == 2.0
        })
        .await
    );
    assert_eq!(
        server.predict_status("fast").await,
        200,
        "the one place in flight is taken only once a body is in"
    );
    assert_eq!(slow.finish().await, 200);
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408_and_frees_everything() {
    let server = TestServer::configured(|config| config.body_read_timeout_seconds = 1).await;
    let slow = SlowRequest::begin(&server).await;
    assert_eq!(slow.wait_status().await, 408);
    assert_eq!(server.predict_status("next").await, 200);
    server
        .assert_samples(&[("http_requests_rejected_total{reason=\"body_timeout\"}", 1.0)])
        .await;
}

#[tokio::test]
async fn a_client_that_hangs_up_mid_request_frees_its_slot_and_the_gauge() {
    let server = TestServer::configured(|config| config.max_in_flight = 1).await;
    let abandoned = SlowRequest::begin(&server).await;
    assert!(
        wait_for(Duration::from_secs(5), || async {
            in_progress(&server).await == 2.0
        })
        .await
    );
    drop(abandoned);
    // Only the /metrics request itself is left in progress.
    assert!(
        wait_for(Duration::from_secs(5), || async {
            in_progress(&server).await == 1.0
        })
        .await,
        "an abandoned request must not stay counted as in progress"
    );
    assert_eq!(
        server.predict_status("next").await,
        200,
        "the abandoned request's in-flight slot must be free again"
    );
}

#[tokio::test]
async fn a_flood_gets_only_answers_or_shedding_never_errors() {
    let server =
        std::sync::Arc::new(TestServer::configured(|config| config.max_in_flight = 4).await);
    let mut tasks = Vec::new();
    for worker in 0..32 {
        let server = server.clone();
        tasks.push(tokio::spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..25 {
                let r = server
                    .post_json("/predict", &transaction(&format!("{worker}-{i}")))
                    .await;
                statuses.push(r.status().as_u16());
            }
            statuses
        }));
    }
    let mut ok = 0;
    for task in tasks {
        for status in task.await.expect("task") {
            assert!(status == 200 || status == 503, "unexpected status {status}");
            ok += usize::from(status == 200);
        }
    }
    assert!(ok > 0);
    let text = server.metrics().await;
    let shed = metric(&text, "http_requests_rejected_total{reason=\"overload\"}").unwrap_or(0.0);
    assert_eq!(
        ok as f64 + shed,
        800.0,
        "every request was either answered or counted as shed"
    );
}

#[tokio::test]
async fn clients_over_their_quota_get_429_others_do_not() {
    let keys = KeysFile::new(&[("noisy", "score", "k-noisy"), ("quiet", "score", "k-quiet")]);
    let server = TestServer::configured(|config| {
        config.rate_limit_rps = 1;
        config.rate_limit_burst = 2;
        config.api_keys_file = Some(keys.path());
    })
    .await;
    let send = |key: &'static str| {
        let request = server
            .client
            .post(server.url("/predict"))
            .bearer_auth(key)
            // A header the client sets does not give it another bucket.
            .header("x-api-key", format!("{key}-{}", rand_suffix()))
            .json(&transaction("r"));
        async move { request.send().await.expect("send") }
    };
    assert_eq!(send("k-noisy").await.status(), 200);
    assert_eq!(send("k-noisy").await.status(), 200);
    let limited = send("k-noisy").await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after));
    assert_eq!(send("k-quiet").await.status(), 200);
    // Health is never limited nor authenticated.
    for _ in 0..5 {
        assert_eq!(server.get("/health").await.status(), 200);
    }
    server
        .assert_samples(&[
            ("http_requests_rejected_total{reason=\"rate_limit\"}", 1.0),
            (
                "api_client_refusals_total{client=\"noisy\",reason=\"quota\"}",
                1.0,
            ),
            ("http_errors_total{status_class=\"4xx\"}", 1.0),
        ])
        .await;
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

#[tokio::test]
async fn a_clients_own_quota_overrides_the_servers() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("api-keys");
    let lines = [
        fraudops_serve::keys_file_line("worker", "record,history", "k-worker", Some(1000), false),
        fraudops_serve::keys_file_line("payments", "record", "k-pay", None, false),
    ]
    .map(|l| l.expect("line"))
    .join("\n");
    std::fs::write(&path, lines).expect("write");
    let server = TestServer::configured(|config| {
        config.rate_limit_rps = 1;
        config.rate_limit_burst = 2;
        config.api_keys_file = Some(path);
    })
    .await;
    let status = |key: &'static str| {
        let request = server
            .client
            .post(server.url("/predict"))
            .bearer_auth(key)
            .json(&transaction("own"));
        async move { request.send().await.expect("send").status().as_u16() }
    };
    for _ in 0..50 {
        assert_eq!(status("k-worker").await, 200, "rps=1000: its own quota");
    }
    let payments: Vec<u16> = futures_util::future::join_all((0..5).map(|_| status("k-pay"))).await;
    assert!(
        payments.contains(&429),
        "the server's quota of 1/s: {payments:?}"
    );
}
