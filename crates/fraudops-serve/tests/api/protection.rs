//! Overload is shed at once with 503 + Retry-After; noisy clients get 429; probes are never blocked.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestServer, metric, transaction, wait_for};

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

#[tokio::test]
async fn excess_requests_are_shed_immediately_with_retry_after() {
    let server = TestServer::configured(|config| config.max_in_flight = 2).await;
    let a = SlowRequest::begin(&server).await;
    let b = SlowRequest::begin(&server).await;
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

    assert_eq!(a.finish().await, 200);
    assert_eq!(b.finish().await, 200);
    assert_eq!(server.predict_status("after").await, 200);
    server
        .assert_samples(&[
            ("http_requests_rejected_total{reason=\"overload\"}", 1.0),
            ("http_errors_total{status_class=\"5xx\"}", 1.0),
        ])
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
async fn clients_over_their_rate_get_429_others_do_not() {
    let server = TestServer::configured(|config| {
        config.rate_limit_rps = 1;
        config.rate_limit_burst = 2;
        config.rate_limit_key_header = Some("X-Api-Key".into());
    })
    .await;
    let send = |key: &'static str| {
        let request = server
            .client
            .post(server.url("/predict"))
            .header("x-api-key", key)
            .json(&transaction("r"));
        async move { request.send().await.expect("send") }
    };
    assert_eq!(send("noisy").await.status(), 200);
    assert_eq!(send("noisy").await.status(), 200);
    let limited = send("noisy").await;
    assert_eq!(limited.status(), 429);
    let retry_after: u64 = limited.headers()["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=2).contains(&retry_after));
    assert_eq!(send("quiet").await.status(), 200);
    // Without the header, clients are told apart by address; health is never limited.
    for _ in 0..5 {
        assert_eq!(server.get("/health").await.status(), 200);
    }
    server
        .assert_samples(&[
            ("http_requests_rejected_total{reason=\"rate_limit\"}", 1.0),
            ("http_errors_total{status_class=\"4xx\"}", 1.0),
        ])
        .await;
}
