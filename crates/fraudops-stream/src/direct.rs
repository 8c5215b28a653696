//! Direct replay: a file's transactions sent to `POST /predict` without history, the way a payment flow
//! calls a fraud API, while each transaction's label goes to `fraud-labels` once the replay's event-time
//! clock passes its time plus the label delay. What `fraudops eval-online` measures the online path with.
//!
//! Order: a card's transactions are sent one after the other on one lane (lanes are chosen by card, as
//! Kafka partitions are), so the store records them in time order; lanes run concurrently. Labels: every
//! time the clock enters a new day, the replay waits until the label consumer has committed every label
//! produced before the previous day began. A transaction reads labels at least 7 days old and a label
//! leaves at most the delay (≤ 7 days) after its transaction, so with a delay under 6 days the labels a
//! transaction needs were produced more than a day before it and are applied when it is scored.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use fraudops_data::{EpochSeconds, Transaction};
use fraudops_features::definition::DAY;
use fraudops_wire::{PredictResponse, TransactionEvent};
use tokio::sync::mpsc;

use crate::attack::labels::Labels;
use crate::config::KafkaArgs;
use crate::error::StreamError;
use crate::lag::{GroupLag, LagProbe};
use crate::telemetry::KafkaMetrics;

/// First pause before sending a request again after a failure (shed, connection); doubled per try.
const BACKOFF_START: Duration = Duration::from_millis(20);
/// Attempts per transaction before the replay gives up (the API is down, not shedding).
const MAX_ATTEMPTS: u32 = 50;
/// Longest wait for the label consumer at a day boundary.
const LABEL_WAIT: Duration = Duration::from_secs(120);

/// Where the replay sends what.
#[derive(Debug, Clone)]
pub struct DirectReplay {
    /// The API's base URL.
    pub api_url: String,
    /// Its key (scope `record`: each call is recorded in the store), if it requires one.
    pub api_key: Option<String>,
    /// The broker, for labels.
    pub kafka: KafkaArgs,
    /// The labels topic.
    pub labels_topic: String,
    /// The label consumer's group, whose commits the replay waits for.
    pub labels_group: String,
    /// Event time between a transaction and its label.
    pub label_delay: EpochSeconds,
    /// Card lanes sending at once.
    pub lanes: usize,
    /// Per-request timeout.
    pub timeout: Duration,
}

/// What the replay saw.
#[derive(Debug, Clone, Default)]
pub struct ReplayOutcome {
    /// Fraud probability per transaction id.
    pub scores: HashMap<u64, f64>,
    /// Requests answered 200.
    pub predicted: u64,
    /// Requests retried (shed or failed), each counted once per retry.
    pub retries: u64,
    /// Labels produced.
    pub labels_sent: u64,
    /// Seconds spent waiting for the label consumer at day boundaries.
    pub label_wait_seconds: f64,
}

/// Replays `transactions` (in event-time order) through the API; `progress` is called with the number
/// sent so far.
pub async fn replay(
    config: &DirectReplay,
    transactions: &[Transaction],
    mut progress: impl FnMut(u64),
) -> Result<ReplayOutcome, StreamError> {
    if config.label_delay >= 6 * DAY {
        return Err(StreamError::Config(
            "the direct replay needs a label delay under 6 days (labels must be applied a day before they count)".into(),
        ));
    }
    let lanes = config.lanes.max(1);
    let (client, url) = crate::api_client::predict_client(
        &config.api_url,
        config.api_key.as_deref(),
        lanes,
        config.timeout,
    )?;
    crate::admin::ensure_topics(
        &config.kafka,
        &[(config.labels_topic.as_str(), config.kafka.partitions)],
    )
    .await?;
    let metrics = KafkaMetrics::new()?;
    let mut labels = Labels::new(
        &config.kafka,
        &config.labels_topic,
        config.label_delay,
        &metrics,
        false,
    )?;
    let probe = LagProbe::new(
        &KafkaArgs {
            topic: config.labels_topic.clone(),
            ..config.kafka.clone()
        },
        &config.labels_group,
    )?;

    let (results_tx, mut results_rx) = mpsc::unbounded_channel::<Result<(u64, f64, u32), String>>();
    let mut senders = Vec::with_capacity(lanes);
    let mut tasks = Vec::with_capacity(lanes);
    for _ in 0..lanes {
        // Short queues: lanes drift apart in event time by at most a few dozen of their events.
        let (tx, mut rx) = mpsc::channel::<Transaction>(32);
        senders.push(tx);
        let (client, url, results) = (client.clone(), url.clone(), results_tx.clone());
        tasks.push(tokio::spawn(async move {
            while let Some(t) = rx.recv().await {
                let answer = predict(&client, &url, &t).await;
                if results.send(answer).is_err() {
                    break;
                }
            }
        }));
    }
    drop(results_tx);

    let mut outcome = ReplayOutcome::default();
    let mut day: Option<i64> = None;
    let mut previous_marks: Option<GroupLag> = None;
    for (sent, t) in transactions.iter().enumerate() {
        let today = t.tx_datetime.div_euclid(DAY);
        if day.is_some_and(|d| d != today) {
            let started = Instant::now();
            let marks = probe.measure()?;
            if let Some(previous) = &previous_marks {
                wait_committed(&probe, previous).await?;
            }
            previous_marks = Some(marks);
            outcome.label_wait_seconds += started.elapsed().as_secs_f64();
        }
        day = Some(today);
        let lane = (t.customer_id % lanes as u64) as usize;
        senders[lane]
            .send(t.clone())
            .await
            .map_err(|_| StreamError::Config("a replay lane stopped".into()))?;
        labels.record(t);
        while let Ok(answer) = results_rx.try_recv() {
            take(&mut outcome, answer)?;
        }
        progress(sent as u64 + 1);
    }
    drop(senders);
    while let Some(answer) = results_rx.recv().await {
        take(&mut outcome, answer)?;
    }
    for task in tasks {
        let _ = task.await;
    }
    outcome.labels_sent = labels.finish(Duration::from_secs(30)).await.sent;
    Ok(outcome)
}

fn take(
    outcome: &mut ReplayOutcome,
    answer: Result<(u64, f64, u32), String>,
) -> Result<(), StreamError> {
    let (id, p, retries) = answer.map_err(StreamError::Config)?;
    outcome.scores.insert(id, p);
    outcome.predicted += 1;
    outcome.retries += u64::from(retries);
    Ok(())
}

/// Waits until the group has committed, on every partition, at least the high watermark of `marks`.
async fn wait_committed(probe: &LagProbe, marks: &GroupLag) -> Result<(), StreamError> {
    let deadline = Instant::now() + LABEL_WAIT;
    loop {
        let now = probe.measure()?;
        let behind = marks.partitions.iter().any(|m| {
            now.partitions
                .iter()
                .find(|p| p.partition == m.partition)
                .is_none_or(|p| m.high_watermark > 0 && p.committed.unwrap_or(0) < m.high_watermark)
        });
        if !behind {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(StreamError::Config(format!(
                "the label consumer (group {}) did not apply the labels within {LABEL_WAIT:?}; is `fraudops labels` running?",
                probe.group()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One transaction as a direct call, retried while the API sheds or fails; its id, score and retries.
async fn predict(
    client: &reqwest::Client,
    url: &str,
    t: &Transaction,
) -> Result<(u64, f64, u32), String> {
    let body = serde_json::to_vec(&TransactionEvent::from(t).request).map_err(|e| e.to_string())?;
    let mut backoff = BACKOFF_START;
    let mut last = String::new();
    for attempt in 0..MAX_ATTEMPTS {
        match client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                let p: PredictResponse = r.json().await.map_err(|e| e.to_string())?;
                return Ok((t.transaction_id, p.fraud_probability, attempt));
            }
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                return Err(format!(
                    "transaction {} refused: {} {}",
                    t.transaction_id,
                    r.status(),
                    r.text().await.unwrap_or_default()
                ));
            }
            Ok(r) => last = format!("API answered {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(format!(
        "transaction {}: no answer after {MAX_ATTEMPTS} attempts ({last})",
        t.transaction_id
    ))
}
