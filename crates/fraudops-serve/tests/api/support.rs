//! A real server on an ephemeral loopback port, driven over HTTP; stopped when the handle drops.

use std::net::SocketAddr;
use std::sync::Arc;

use fraudops_model::{Model, ModelArtifact};
use fraudops_serve::ModelSource;
use fraudops_serve::{ServeConfig, Server};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running server; dropping it shuts the server down.
pub struct TestServer {
    pub addr: SocketAddr,
    pub metrics_addr: Option<SocketAddr>,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    pub async fn start(config: ServeConfig, source: ModelSource) -> Self {
        let server = Server::bind(config, source).await.expect("server binds");
        let addr = server.local_addr();
        let metrics_addr = server.metrics_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run_until(async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            metrics_addr,
            client: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn embedded() -> Self {
        Self::start(ServeConfig::for_tests(), ModelSource::Embedded).await
    }

    /// A server on the embedded model with the test configuration changed by `configure`.
    pub async fn configured(configure: impl FnOnce(&mut ServeConfig)) -> Self {
        let mut config = ServeConfig::for_tests();
        configure(&mut config);
        Self::start(config, ModelSource::Embedded).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request sent")
    }

    /// POSTs `body` and parses the JSON answer, whatever its status.
    pub async fn post_for_json(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        self.post_json(path, body).await.json().await.expect("json")
    }

    /// The status of `POST /predict` with [`transaction`] `id`.
    pub async fn predict_status(&self, id: &str) -> u16 {
        self.post_json("/predict", &transaction(id))
            .await
            .status()
            .as_u16()
    }

    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        req.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }

    /// `/metrics`, from the metrics port when the server has one (the API port then does not serve it).
    pub async fn metrics(&self) -> String {
        let url = match self.metrics_addr {
            Some(addr) => format!("http://{addr}/metrics"),
            None => self.url("/metrics"),
        };
        self.client
            .get(url)
            .send()
            .await
            .expect("request sent")
            .text()
            .await
            .expect("metrics body")
    }

    /// Asserts the value of each `(series, value)` sample (see [`metric`]) in one read of `/metrics`.
    pub async fn assert_samples(&self, expected: &[(&str, f64)]) {
        let text = self.metrics().await;
        for &(series, value) in expected {
            assert_eq!(metric(&text, series), Some(value), "{series}");
        }
    }

    /// Stops the server and waits for the drain to finish.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await
                .expect("server task")
                .expect("server ran cleanly");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The value of one sample in Prometheus text, e.g. `metric(&text, "ml_model_errors_total{type=\"validation\"}")`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|v| v.trim().parse().ok())
    })
}

/// A valid transaction, as the SPEC's example.
pub fn transaction(id: &str) -> serde_json::Value {
    serde_json::json!({
        "transaction_id": id, "amount": 129.9, "customer_id": 42, "terminal_id": 3107,
        "tx_datetime": "2018-08-15 02:13:00", "merchant_category": "electronics",
        "user_age": 37, "account_balance": 2400.5
    })
}

/// A second valid model with a different version: the embedded one with a shifted base score, resealed.
pub fn other_model_json(shift: f64) -> String {
    let a = Model::embedded()
        .expect("embedded model")
        .artifact()
        .clone();
    let mut ensemble = a.ensemble.clone();
    ensemble.base_score += shift;
    ModelArtifact::seal(
        a.library,
        a.hyperparameters,
        a.training,
        a.metrics,
        a.decision_threshold,
        ensemble,
    )
    .to_json()
}

/// The embedded model's artifact JSON.
pub fn embedded_model_json() -> String {
    Model::embedded()
        .expect("embedded model")
        .artifact()
        .to_json()
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

/// Shared flag for tests that need a registry whose answer they control.
pub type Shared<T> = Arc<std::sync::Mutex<T>>;

/// An API_KEYS_FILE in a temporary directory: `(client id, scopes, key)` per line, keys stored as their
/// digests as an operator would.
pub struct KeysFile {
    dir: tempfile::TempDir,
}

impl KeysFile {
    pub fn new(keys: &[(&str, &str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = Self { dir };
        file.write(keys);
        file
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("api-keys")
    }

    /// Replaces the file's keys (as a Secret update does).
    pub fn write(&self, keys: &[(&str, &str, &str)]) {
        let text: String = keys
            .iter()
            .map(|(client, scopes, key)| {
                format!("{client} {scopes} {}\n", fraudops_serve::key_digest(key))
            })
            .collect();
        std::fs::write(self.path(), text).expect("write keys");
    }
}
