//! Airflow 3's public REST API, the two calls the bridge needs: `POST /auth/token` (username and
//! password → a JWT) and `POST /api/v2/dags/{dag_id}/dagRuns` with our run id, conf and note.
//!
//! Why the REST API and not an Asset event: only a DAG run created by the API can carry a caller's
//! run id, so repeated notifications of one incident meet Airflow's unique `(dag_id, run_id)` and
//! get 409 instead of a second retraining; an asset event has no such key (every event queues
//! work), and its payload reaches tasks as `triggering_asset_events`, not as the run's `conf` and
//! params the DAG already reads. See docs/retraining.md.
//!
//! The password is read from a file (a mounted Kubernetes Secret) each time a token is fetched, so a
//! rotated Secret is picked up without a restart and the password never sits in the environment or on
//! the command line. The token is cached; when Airflow refuses a cached token (401 "Token Expired", or
//! 403 "Invalid JWT token" after its JWT secret changed) the bridge logs in again once and retries.

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Mutex;

/// One attempt per call, bounded; Alertmanager retries a notification the bridge failed.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Where Airflow is and how to log in.
#[derive(Debug, Clone)]
pub struct AirflowConfig {
    /// The API server's base URL, e.g. `http://airflow-api-server.airflow.svc:8080`.
    pub url: reqwest::Url,
    /// The user the bridge logs in as (needs permission to trigger the DAG).
    pub username: String,
    /// The file holding that user's password (trailing newline ignored).
    pub password_file: PathBuf,
    /// The DAG to start.
    pub dag_id: String,
}

/// What a trigger did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Triggered {
    /// Airflow created the run (201/200).
    Created,
    /// A run with this id exists (409): an earlier notification of the same incident made it.
    AlreadyExists,
}

/// Why a trigger failed (answered 502 to Alertmanager, which retries the notification).
#[derive(Debug, thiserror::Error)]
pub enum AirflowError {
    /// The password file could not be read.
    #[error("reading the Airflow password from {path}: {source}")]
    Password {
        path: PathBuf,
        source: std::io::Error,
    },
    /// No answer (connection refused, timeout, TLS).
    #[error("Airflow at {url} is unreachable: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// `/auth/token` refused the credentials or answered something else.
    #[error("Airflow login as {username:?} failed: HTTP {status}: {body}")]
    Login {
        username: String,
        status: u16,
        body: String,
    },
    /// The trigger call answered an error (404: no such DAG; 403: the user may not trigger it; 400:
    /// the DAG has import errors or refused the conf).
    #[error("Airflow refused to start {dag_id} run {run_id}: HTTP {status}: {body}")]
    Trigger {
        dag_id: String,
        run_id: String,
        status: u16,
        body: String,
    },
}

/// The client: one HTTP connection pool and the cached token.
#[derive(Debug)]
pub struct Airflow {
    config: AirflowConfig,
    http: reqwest::Client,
    token: Mutex<Option<String>>,
}

impl Airflow {
    /// A client; nothing is contacted until the first trigger.
    pub fn new(config: AirflowConfig) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .unwrap_or_default();
        Self {
            config,
            http,
            token: Mutex::new(None),
        }
    }

    /// The DAG this client starts.
    pub fn dag_id(&self) -> &str {
        &self.config.dag_id
    }

    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.config.url.as_str().trim_end_matches('/'))
    }

    /// POSTs `body` as JSON (with the bearer token, if any); only a request that got no answer at all
    /// is an error here, the status is the caller's to judge.
    async fn post_json(
        &self,
        url: &str,
        bearer: Option<&str>,
        body: &serde_json::Value,
    ) -> Result<reqwest::Response, AirflowError> {
        let request = self.http.post(url).json(body);
        let request = match bearer {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        request
            .send()
            .await
            .map_err(|source| AirflowError::Unreachable {
                url: url.to_owned(),
                source,
            })
    }

    /// Logs in: `POST /auth/token` with the username and the password file's content.
    async fn login(&self) -> Result<String, AirflowError> {
        let path = &self.config.password_file;
        let password = std::fs::read_to_string(path).map_err(|source| AirflowError::Password {
            path: path.clone(),
            source,
        })?;
        let credentials = serde_json::json!({
            "username": self.config.username,
            "password": password.trim_end_matches(['\r', '\n']),
        });
        let response = self
            .post_json(&self.endpoint("/auth/token"), None, &credentials)
            .await?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let token = status
            .is_success()
            .then(|| serde_json::from_str::<serde_json::Value>(&body).ok())
            .flatten()
            .and_then(|v| v["access_token"].as_str().map(str::to_owned));
        token.ok_or_else(|| AirflowError::Login {
            username: self.config.username.clone(),
            status: status.as_u16(),
            body: truncate(&body),
        })
    }

    /// Starts the DAG with `run_id`, `conf` and `note` (logical date null: a run "now", as the UI's
    /// Trigger does). 409 is success: the incident's run exists. A cached token that is refused (401
    /// or 403) is replaced by a fresh login once; a fresh token refused is an error (the user may not
    /// trigger the DAG).
    pub async fn trigger(
        &self,
        run_id: &str,
        conf: &serde_json::Value,
        note: &str,
    ) -> Result<Triggered, AirflowError> {
        let url = self.endpoint(&format!("/api/v2/dags/{}/dagRuns", self.config.dag_id));
        let body = serde_json::json!({
            "dag_run_id": run_id,
            "logical_date": null,
            "conf": conf,
            "note": note,
        });
        // Held for the whole call: notifications are a few a week, and one at a time means one login
        // when the token expires, not one per notification in flight.
        let mut token = self.token.lock().await;
        loop {
            let (bearer, cached) = match token.as_ref() {
                Some(t) => (t.clone(), true),
                None => (token.insert(self.login().await?).clone(), false),
            };
            let response = self.post_json(&url, Some(&bearer), &body).await?;
            let status = response.status().as_u16();
            match status {
                200 | 201 => return Ok(Triggered::Created),
                409 => return Ok(Triggered::AlreadyExists),
                401 | 403 if cached => {
                    *token = None;
                    continue;
                }
                _ => {
                    return Err(AirflowError::Trigger {
                        dag_id: self.config.dag_id.clone(),
                        run_id: run_id.to_owned(),
                        status,
                        body: truncate(&response.text().await.unwrap_or_default()),
                    });
                }
            }
        }
    }
}

/// An error body as far as a log line needs it.
fn truncate(body: &str) -> String {
    let body = body.trim();
    match body.char_indices().nth(500) {
        Some((i, _)) => format!("{}…", &body[..i]),
        None => body.to_owned(),
    }
}
