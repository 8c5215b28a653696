//! Overload where the CPU is the bottleneck, and connections as an attack surface: a server on one
//! thread is flooded with batches; shedding on the queue wait answers the excess with 503 + Retry-After
//! and keeps the admitted requests' latency far below what the same flood costs without it. Idle,
//! slow-header and surplus connections are closed.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use fraudops_serve::{ModelSource, ServeConfig, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestServer, metric, transaction, wait_for};

/// A server alone on its own thread and single-threaded runtime: one core's worth of CPU, which the
/// flood saturates. Stops when dropped.
struct OneCoreServer {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl OneCoreServer {
    fn start(max_queue_wait_ms: u64) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("server runtime");
            runtime.block_on(async move {
                let mut config = ServeConfig::for_tests();
                config.max_queue_wait_ms = max_queue_wait_ms;
                config.max_in_flight = 100_000;
                let server = Server::bind(config, ModelSource::Embedded)
                    .await
                    .expect("server binds");
                addr_tx.send(server.local_addr()).expect("test waits");
                server
                    .run_until(async move {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("server ran cleanly");
            });
        });
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("server started");
        Self {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for OneCoreServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What a flood saw: latencies of the 200s, count of 503s, and whether every 503 said when to retry.
#[derive(Debug, Default)]
struct Flood {
    ok: Vec<Duration>,
    shed: usize,
    shed_without_retry_after: usize,
    other: usize,
}

impl Flood {
    fn median_ok(&mut self) -> Duration {
        self.ok.sort_unstable();
        self.ok
            .get(self.ok.len() / 2)
            .copied()
            .unwrap_or(Duration::MAX)
    }
}

/// `connections` clients each sending batches of 100 back to back for `length`.
async fn flood(addr: SocketAddr, connections: usize, length: Duration) -> Flood {
    let batch = serde_json::json!({
        "transactions": (0..100).map(|i| transaction(&format!("f{i}"))).collect::<Vec<_>>()
    })
    .to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let url = format!("http://{addr}/predict/batch");
    let until = Instant::now() + length;
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            let (client, url, batch) = (client.clone(), url.clone(), batch.clone());
            tokio::spawn(async move {
                let mut seen = Flood::default();
                while Instant::now() < until {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(batch.clone())
                        .send()
                        .await;
                    let Ok(response) = response else {
                        seen.other += 1;
                        continue;
                    };
                    match response.status().as_u16() {
                        200 => {
                            let _ = response.bytes().await;
                            seen.ok.push(sent.elapsed());
                        }
                        503 => {
                            seen.shed += 1;
                            if response.headers().get("retry-after").is_none() {
                                seen.shed_without_retry_after += 1;
                            }
                            let _ = response.bytes().await;
                        }
                        _ => seen.other += 1,
                    }
                }
                seen
            })
        })
        .collect();
    let mut total = Flood::default();
    for task in tasks {
        let seen = task.await.expect("client task");
        total.ok.extend(seen.ok);
        total.shed += seen.shed;
        total.shed_without_retry_after += seen.shed_without_retry_after;
        total.other += seen.other;
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_saturated_core_sheds_with_retry_after_and_keeps_admitted_requests_fast() {
    let length = Duration::from_secs(3);
    let connections = 300;
    let mut without = {
        let server = OneCoreServer::start(0);
        flood(server.addr, connections, length).await
    };
    let mut with = {
        let server = OneCoreServer::start(5);
        flood(server.addr, connections, length).await
    };
    let (median_without, median_with) = (without.median_ok(), with.median_ok());
    eprintln!(
        "flood of {connections} connections for {length:?}: without shedding {} ok (median {median_without:?}), {} shed; with MAX_QUEUE_WAIT_MS=5 {} ok (median {median_with:?}), {} shed",
        without.ok.len(),
        without.shed,
        with.ok.len(),
        with.shed
    );
    assert_eq!(
        (without.other, with.other),
        (0, 0),
        "every request gets a 200 or a 503"
    );
    assert_eq!(without.shed, 0, "without the wait limit nothing is shed");
    assert!(with.shed > 0, "a saturated core sheds");
    assert_eq!(
        with.shed_without_retry_after, 0,
        "every 503 says when to retry"
    );
    assert!(!with.ok.is_empty(), "shedding still answers requests");
    assert!(
        median_with * 2 < median_without,
        "admitted requests are answered much faster with shedding: median {median_with:?} vs {median_without:?}"
    );
}

/// Reads until the server closes the connection; `false` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(limit, read).await.is_ok()
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed_after_the_header_timeout() {
    let server = TestServer::configured(|config| config.header_read_timeout_seconds = 1).await;
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"POST /predict HTTP/1.1\r\nHost: t")
        .await
        .expect("write part of a header");
    // A keep-alive connection that has had its answer, then goes quiet.
    let mut idle = TcpStream::connect(server.addr).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .expect("write request");
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).await.expect("read answer");
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    for (name, stream) in [
        ("silent", &mut silent),
        ("slow header", &mut slow),
        ("idle", &mut idle),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(10)).await,
            "{name} connection still open 10 s after a 1 s header timeout"
        );
    }
    assert_eq!(server.predict_status("after").await, 200);
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_counted() {
    let server = TestServer::configured(|config| config.max_connections = 3).await;
    // The test client's own connection for /metrics needs a place too: hold two.
    let held = [
        TcpStream::connect(server.addr).await.expect("connect"),
        TcpStream::connect(server.addr).await.expect("connect"),
    ];
    assert!(
        wait_for(Duration::from_secs(5), || async {
            metric(&server.metrics().await, "http_connections_open") == Some(3.0)
        })
        .await,
        "two held connections and the metrics request's own"
    );
    let mut surplus = TcpStream::connect(server.addr).await.expect("connect");
    assert!(
        closed_within(&mut surplus, Duration::from_secs(5)).await,
        "a connection past the cap is closed"
    );
    drop(held);
    assert!(
        wait_for(Duration::from_secs(5), || async {
            metric(&server.metrics().await, "http_connections_refused_total")
                .is_some_and(|n| n >= 1.0)
        })
        .await
    );
}
