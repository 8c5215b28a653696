//! `serve` following `models:/NAME@champion` picks up a promotion while under load, without a
//! single failed request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fraudops_mlflow::testing;
use tokio::sync::Mutex;

use crate::support::{Retraining, Serve, TINY, transaction};

/// Concurrent clients hammering `/predict`.
const CLIENTS: u64 = 4;
/// Upper bound on the whole load phase, whatever happens.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// What the load clients saw.
#[derive(Default)]
struct Seen {
    /// Responses per `model_version`.
    versions: BTreeMap<String, u64>,
    /// Non-200 answers and transport errors, with detail.
    failures: Vec<String>,
    /// The `model_version` of each client's last response.
    last: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_switches_to_the_promoted_version_under_load_with_zero_failed_requests() {
    let Some(uri) = testing::shared("serve_switches_to_the_promoted_version_under_load") else {
        return;
    };
    let t = Arc::new(Retraining::new(&uri, "follow-experiment", "follow-model"));
    t.train_ok("v1", &TINY);
    let v1 = t.version_in("v1");

    let serve = Serve::follow(t.dir.path(), &uri, t.model);
    assert_eq!(serve.wait_ready().await, v1, "serves the champion");

    // Load: a few clients in a loop, each recording status and served version.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..CLIENTS {
        let (stop, sent, seen, http) = (stop.clone(), sent.clone(), seen.clone(), http.clone());
        let url = serve.url("/predict");
        clients.push(tokio::spawn(async move {
            let mut i = c;
            let mut last = String::new();
            while !stop.load(Ordering::Relaxed) && started.elapsed() < LOAD_LIMIT {
                let outcome = http.post(&url).json(&transaction(i)).send().await;
                sent.fetch_add(1, Ordering::Relaxed);
                i += CLIENTS;
                let result = match outcome {
                    Ok(r) if r.status() == 200 => r
                        .json::<serde_json::Value>()
                        .await
                        .map(|body| body["model_version"].as_str().unwrap_or("?").to_owned())
                        .map_err(|e| format!("body: {e}")),
                    Ok(r) => {
                        let status = r.status();
                        Err(format!("{status}: {}", r.text().await.unwrap_or_default()))
                    }
                    Err(e) => Err(format!("transport: {e}")),
                };
                let mut seen = seen.lock().await;
                match result {
                    Ok(version) => {
                        *seen.versions.entry(version.clone()).or_default() += 1;
                        last = version;
                    }
                    Err(failure) => seen.failures.push(failure),
                }
            }
            seen.lock().await.last.push(last);
        }));
    }
    wait_until("the load is running", Duration::from_secs(30), || async {
        sent.load(Ordering::Relaxed) >= 200
    })
    .await;

    // Promote a better model while the load runs.
    let trainer = t.clone();
    let stdout = tokio::task::spawn_blocking(move || trainer.train_ok("v2", &[]))
        .await
        .expect("train task");
    t.assert_gate(&stdout, "PROMOTED", "2").await;
    let v2 = t.version_in("v2");
    assert_ne!(v1, v2);

    // The replicas pick it up on their next poll; keep loading a little after the switch.
    let switched_at = {
        let seen = seen.clone();
        let v2 = v2.clone();
        wait_until(
            "serve switched to the new champion",
            Duration::from_secs(60),
            move || {
                let (seen, v2) = (seen.clone(), v2.clone());
                async move { seen.lock().await.versions.contains_key(&v2) }
            },
        )
        .await;
        sent.load(Ordering::Relaxed)
    };
    wait_until(
        "load continues after the switch",
        Duration::from_secs(30),
        || async { sent.load(Ordering::Relaxed) >= switched_at + 200 },
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.expect("client task");
    }

    let seen = seen.lock().await;
    let total: u64 = seen.versions.values().sum();
    assert!(
        seen.failures.is_empty(),
        "{} of {} requests failed, first: {:?}",
        seen.failures.len(),
        total + seen.failures.len() as u64,
        seen.failures.first()
    );
    assert!(
        seen.versions.get(&v1).copied().unwrap_or(0) > 0,
        "{:?}",
        seen.versions
    );
    assert!(
        seen.versions.get(&v2).copied().unwrap_or(0) > 0,
        "{:?}",
        seen.versions
    );
    assert_eq!(
        seen.versions.len(),
        2,
        "only the two champions served: {:?}",
        seen.versions
    );
    assert!(
        seen.last.iter().all(|v| *v == v2),
        "every client ends on the new champion: {:?}",
        seen.last
    );
    eprintln!(
        "served {total} requests with zero failures: {:?}",
        seen.versions
    );
}

/// Polls `check` every 50 ms until it holds, panicking with `what` after `limit`.
async fn wait_until<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
