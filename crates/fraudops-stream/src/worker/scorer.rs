//! Turns an event and its online features into a prediction: over HTTP through the scoring API, or
//! in-process with the same model artifact the API serves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use fraudops_features::FeatureRow;
use fraudops_model::Model;
use fraudops_wire::{ErrorBody, FeatureSource, PredictResponse, ScoredBy};
use tokio::sync::Semaphore;

use crate::error::StreamError;
use crate::message::{Event, Rejection, predict_request};
use crate::telemetry::KafkaMetrics;

/// First pause before retrying a failed API call; doubled per attempt.
const BACKOFF_START: Duration = Duration::from_millis(50);
/// Longest pause between attempts (also caps an API's Retry-After).
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// How predictions are made.
#[derive(Clone)]
pub enum Scorer {
    /// `POST /predict` on the API, with retries.
    Http(Arc<HttpScorer>),
    /// The model in this process.
    InProcess(Arc<InProcessScorer>),
}

impl Scorer {
    /// Scores one event whose windows from the feature store are `row` (`None`: no store, or it failed).
    /// `Err` only for events the API refuses (4xx) or after `max_attempts`: those go to the dead-letter
    /// topic.
    pub async fn score(
        &self,
        event: &Event,
        row: Option<&FeatureRow>,
    ) -> Result<(PredictResponse, ScoredBy), Rejection> {
        match self {
            // Without windows the API decides: its own store, or no history.
            Self::Http(h) => h.score(event, row).await.map(|p| (p, ScoredBy::Api)),
            Self::InProcess(m) => {
                let row = row.copied().unwrap_or_else(|| event.row_without_history());
                Ok((m.score(event, &row), ScoredBy::InProcess))
            }
        }
    }
}

/// The model inside the worker.
pub struct InProcessScorer {
    model: Model,
    replica_id: String,
}

impl InProcessScorer {
    /// Wraps a loaded model; predictions carry `replica_id`.
    pub fn new(model: Model, replica_id: String) -> Self {
        Self { model, replica_id }
    }

    /// Scores without I/O; cannot fail on a parsed event.
    pub fn score(&self, event: &Event, row: &FeatureRow) -> PredictResponse {
        let started = Instant::now();
        let p = self.model.predict(&row.to_vector());
        PredictResponse {
            transaction_id: event.id.clone(),
            is_fraud: p.is_fraud,
            fraud_probability: p.fraud_probability,
            confidence: p.confidence,
            model_version: self.model.version().to_owned(),
            prediction_time: chrono::Utc::now()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
            replica_id: self.replica_id.clone(),
            // The caller knows where the row came from and sets it (`run.rs`).
            feature_source: FeatureSource::None,
        }
    }
}

/// The scoring API over keep-alive HTTP.
pub struct HttpScorer {
    client: reqwest::Client,
    url: String,
    /// Calls in flight at most: the API sheds load beyond its own limit, so more would only buy 503s.
    calls: Semaphore,
    max_attempts: u32,
    metrics: KafkaMetrics,
}

/// What one attempt came to.
enum Attempt {
    Scored(PredictResponse),
    /// Worth retrying (connection, timeout, 5xx, 429), after at least this long.
    Retry(String, Option<Duration>),
    /// The API refused the event itself: retrying cannot help.
    Refused(Rejection),
}

impl HttpScorer {
    /// A client for the API at `base_url`, making at most `concurrency` calls at once.
    pub fn new(
        base_url: &str,
        api_key: Option<&str>,
        concurrency: usize,
        timeout: Duration,
        max_attempts: u32,
        metrics: KafkaMetrics,
    ) -> Result<Self, StreamError> {
        let (client, url) =
            crate::api_client::predict_client(base_url, api_key, concurrency, timeout)?;
        Ok(Self {
            client,
            url,
            calls: Semaphore::new(concurrency),
            max_attempts,
            metrics,
        })
    }

    /// Scores with exponential backoff between attempts (honouring Retry-After when the API sheds load).
    pub async fn score(
        &self,
        event: &Event,
        row: Option<&FeatureRow>,
    ) -> Result<PredictResponse, Rejection> {
        let body = serde_json::to_vec(&predict_request(event, row)).map_err(|e| Rejection {
            reason: format!("cannot encode the API request: {e}"),
            field: None,
        })?;
        let mut backoff = BACKOFF_START;
        let mut attempt: u32 = 1;
        loop {
            match self.attempt(body.clone()).await {
                Attempt::Scored(p) => return Ok(p),
                Attempt::Refused(r) => return Err(r),
                Attempt::Retry(reason, retry_after) => {
                    if self.max_attempts != 0 && attempt >= self.max_attempts {
                        return Err(Rejection {
                            reason: format!("scoring failed after {attempt} attempts: {reason}"),
                            field: None,
                        });
                    }
                    if attempt == 1 || attempt.is_power_of_two() {
                        tracing::warn!(event = "scoring_retry", attempt, reason = %reason);
                    }
                    self.metrics.retried("scoring");
                    let pause = retry_after.unwrap_or(backoff).min(BACKOFF_MAX);
                    tokio::time::sleep(pause).await;
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    attempt += 1;
                }
            }
        }
    }

    async fn attempt(&self, body: Vec<u8>) -> Attempt {
        let Ok(_call) = self.calls.acquire().await else {
            return Attempt::Retry("scorer closed".into(), None);
        };
        let response = match self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return Attempt::Retry(e.to_string(), None),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => return Attempt::Retry(e.to_string(), None),
        };
        if status.is_success() {
            return match serde_json::from_slice::<PredictResponse>(&bytes) {
                Ok(p) => Attempt::Scored(p),
                Err(e) => Attempt::Retry(format!("unreadable API response: {e}"), None),
            };
        }
        // Only a verdict on the event itself (bad JSON, invalid field, too large) is final; anything
        // else (5xx, 429 shedding, or a 404 from a wrong URL) must not dead-letter the whole stream.
        if !matches!(status.as_u16(), 400 | 413 | 422) {
            return Attempt::Retry(format!("API answered {status}"), retry_after);
        }
        let rejection = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => Rejection {
                reason: format!("API answered {status}: {}", body.error),
                field: body.field,
            },
            Err(_) => Rejection {
                reason: format!("API answered {status}"),
                field: None,
            },
        };
        Attempt::Refused(rejection)
    }
}
