//! The label consumer's loop: read a batch, parse, apply (retrying while the store fails), store the
//! offsets past it; on shutdown stop reading and commit.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use fraudops_store::{EvaluatedLabel, FeatureStore, Label};
use fraudops_wire::{LabelEvent, MAX_ID_LEN};
use rdkafka::consumer::{CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::error::StreamError;
use crate::labels::config::LabelsConfig;
use crate::labels::evaluation::{Sample, Window};
use crate::telemetry::{
    EvaluationMetrics, KafkaMetrics, LabelMetrics, bind_metrics, serve_metrics,
};

/// First pause before applying a batch again after the store failed; doubled per attempt. Longer than
/// the store client's breaker pause (250 ms), so a retry is a real call rather than a refusal.
const STORE_BACKOFF_START: Duration = Duration::from_millis(300);
/// Longest pause between attempts.
const STORE_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How often librdkafka commits the offsets stored after each applied batch.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// How long the group waits for a silent consumer before giving its partitions to another.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// What a label consumer did, for its exit line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelsSummary {
    /// Messages read.
    pub consumed: u64,
    /// Fraud labels applied.
    pub fraud: u64,
    /// Genuine labels applied.
    pub genuine: u64,
    /// Messages skipped as not a label.
    pub invalid: u64,
    /// Failed store calls (each retried).
    pub store_errors: u64,
    /// Labels joined with their transaction's recorded score (online evaluation).
    pub scored: u64,
    /// Labels without a recorded score.
    pub unscored: u64,
    /// True if every message read was applied (or skipped) and its offset committed before exit.
    pub drained: bool,
}

/// Logs commits that fail (the next commit carries the same offsets).
struct LabelsContext;

impl ClientContext for LabelsContext {}

impl ConsumerContext for LabelsContext {
    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        crate::commit::log_commit(result, offsets);
    }
}

/// A message's payload as a store label and its card, or why it is not one.
fn parse_label(payload: &[u8]) -> Result<(Label, u64), String> {
    let event: LabelEvent = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let time = event.time().ok_or_else(|| {
        format!(
            "tx_datetime {:?} is not YYYY-MM-DD HH:MM:SS",
            event.tx_datetime
        )
    })?;
    let transaction_id = event.transaction_id.to_string();
    if transaction_id.is_empty() || transaction_id.chars().count() > MAX_ID_LEN {
        return Err(format!(
            "transaction_id must be 1 to {MAX_ID_LEN} characters"
        ));
    }
    Ok((
        Label {
            transaction_id,
            terminal_id: event.terminal_id,
            time,
            fraud: event.tx_fraud,
            namespace: if event.synthetic {
                fraudops_store::Namespace::Synthetic
            } else {
                fraudops_store::Namespace::Real
            },
        },
        event.customer_id,
    ))
}

/// One batch read from the topic: the labels to apply and, per partition, the offset after the batch.
#[derive(Default)]
struct Batch {
    labels: Vec<Label>,
    /// The card of each label (Card Precision@k of the online evaluation).
    customers: Vec<u64>,
    next_offsets: BTreeMap<i32, i64>,
    read: usize,
}

impl Batch {
    fn add(&mut self, partition: i32, offset: i64, payload: &[u8], metrics: &LabelMetrics) -> bool {
        self.read += 1;
        let next = self.next_offsets.entry(partition).or_insert(offset + 1);
        *next = (*next).max(offset + 1);
        match parse_label(payload) {
            Ok((label, customer)) => {
                self.labels.push(label);
                self.customers.push(customer);
                true
            }
            Err(reason) => {
                tracing::warn!(event = "label_invalid", partition, offset, reason = %reason,
                    "skipped; its offset is committed with the batch");
                metrics.invalid();
                false
            }
        }
    }
}

/// Runs the consumer until `shutdown` resolves: reads batches, applies them to the store, commits.
pub async fn run(
    config: LabelsConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<LabelsSummary, StreamError> {
    if config.batch_size == 0 {
        return Err(StreamError::Config(
            "--batch-size must be at least 1".into(),
        ));
    }
    let url = config
        .store
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| {
            StreamError::Config(
                "fraudops labels applies labels to the feature store: give it with --feature-store \
                 or FEATURE_STORE_URL (e.g. redis://127.0.0.1:6379/0)"
                    .into(),
            )
        })?;
    let store = FeatureStore::connect(url, config.store.timeout)?;
    let metrics = KafkaMetrics::new()?;
    let label_metrics = LabelMetrics::register(&metrics)?;
    let mut eval_metrics = EvaluationMetrics::register(&metrics)?;
    let mut window = Window::new(config.eval_window_days, config.eval_max_samples);
    let mut eval_tick = tokio::time::interval(config.eval_interval.max(Duration::from_millis(10)));
    eval_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let listener = bind_metrics(config.metrics_port).await?;
    let metrics_addr = listener.local_addr().ok();
    let metrics_task = tokio::spawn(serve_metrics(listener, metrics.clone()));
    let replica_id = config.resolved_replica_id();
    let topic = config.labels_topic.as_str();
    crate::admin::ensure_topics(&config.kafka, &[(topic, config.kafka.partitions)]).await?;

    let session_ms = SESSION_TIMEOUT.as_millis();
    let consumer: StreamConsumer<LabelsContext> = config
        .kafka
        .client_config(&format!("fraudops-labels-{replica_id}"))
        .set("group.id", &config.group)
        // librdkafka commits what we store, and we store an offset only once its batch is applied.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            COMMIT_INTERVAL.as_millis().to_string(),
        )
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session_ms.to_string())
        .set("heartbeat.interval.ms", (session_ms / 3).to_string())
        .create_with_context(LabelsContext)?;
    consumer.subscribe(&[topic])?;
    match store.ping().await {
        Ok(()) => tracing::info!(event = "feature_store_reachable"),
        Err(e) => {
            tracing::warn!(event = "feature_store_unreachable", error = %e, "labels wait until it answers")
        }
    }
    tokio::pin!(shutdown);
    let Some(restored) =
        restore_window(&store, &mut window, config.eval_window_days, &mut shutdown).await
    else {
        tracing::info!(
            event = "labels_stopped",
            restored = false,
            "stopped before the window was restored"
        );
        metrics_task.abort();
        return Ok(LabelsSummary {
            drained: true,
            ..LabelsSummary::default()
        });
    };
    let mut window_changed = restored > 0;
    let mut dropped_before = window.oldest_day();
    tracing::info!(event = "labels_started", replica_id = %replica_id, group = %config.group,
        topic, metrics_addr = metrics_addr.map(tracing::field::display), batch_size = config.batch_size,
        store_timeout_ms = config.store.timeout.as_millis() as u64);

    let mut summary = LabelsSummary {
        drained: true,
        ..LabelsSummary::default()
    };
    'read: loop {
        let first = tokio::select! {
            biased;
            () = &mut shutdown => break 'read,
            _ = eval_tick.tick() => {
                if std::mem::take(&mut window_changed) {
                    evaluate(&mut window, &mut eval_metrics);
                }
                continue 'read;
            }
            m = consumer.recv() => m,
        };
        let mut batch = Batch::default();
        match first {
            Ok(m) => {
                batch.add(
                    m.partition(),
                    m.offset(),
                    m.payload().unwrap_or_default(),
                    &label_metrics,
                );
            }
            Err(e) => {
                tracing::warn!(event = "consume_failed", error = %e);
                continue;
            }
        }
        // The rest of the batch: whatever is ready now, without waiting.
        while batch.read < config.batch_size {
            match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                Ok(Ok(m)) => {
                    batch.add(
                        m.partition(),
                        m.offset(),
                        m.payload().unwrap_or_default(),
                        &label_metrics,
                    );
                }
                Ok(Err(e)) => {
                    tracing::warn!(event = "consume_failed", error = %e);
                    break;
                }
                Err(_) => break,
            }
        }
        summary.consumed += batch.read as u64;
        for _ in 0..batch.read {
            metrics.consumed(topic);
        }
        summary.invalid += (batch.read - batch.labels.len()) as u64;

        // Apply; while the store fails, wait and apply again. Nothing is committed meanwhile.
        let mut backoff = STORE_BACKOFF_START;
        let mut stored = Vec::new();
        while !batch.labels.is_empty() {
            match store.apply_labels(&batch.labels).await {
                Ok(scores) => {
                    stored = scores;
                    break;
                }
                Err(e) => {
                    summary.store_errors += 1;
                    label_metrics.store_error();
                    tracing::warn!(event = "labels_not_applied", error = %e, labels = batch.labels.len(),
                        retry_in_ms = backoff.as_millis() as u64);
                    tokio::select! {
                        () = &mut shutdown => {
                            summary.drained = false;
                            tracing::warn!(event = "labels_abandoned", labels = batch.labels.len(),
                                "not committed: they are read again after a restart");
                            break 'read;
                        }
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(STORE_BACKOFF_MAX);
                }
            }
        }
        // Online evaluation: each label with the score its transaction was given, kept in the window and
        // in the store (so a restarted consumer starts from the same window).
        let (mut scored, mut unscored) = (0u64, 0u64);
        let mut kept = Vec::new();
        for ((label, &customer_id), score) in batch.labels.iter().zip(&batch.customers).zip(stored)
        {
            // A synthetic transaction's label says nothing about the model on real traffic.
            if label.namespace == fraudops_store::Namespace::Synthetic {
                continue;
            }
            let Some(score) = score else {
                unscored += 1;
                continue;
            };
            scored += 1;
            let sample = Sample {
                model_version: window.version(&score.model_version),
                customer_id,
                score: score.fraud_probability,
                predicted_fraud: score.is_fraud,
                fraud: label.fraud,
            };
            if window.insert(&label.transaction_id, label.time, sample) {
                kept.push(EvaluatedLabel {
                    transaction_id: label.transaction_id.clone(),
                    time: label.time,
                    customer_id,
                    fraud: label.fraud,
                    score,
                });
            }
        }
        if let Err(e) = store.record_evaluations(&kept).await {
            eval_metrics.not_saved(kept.len());
            tracing::warn!(event = "evaluation_not_saved", samples = kept.len(), error = %e,
                "the window has them; a restarted consumer's would not");
        }
        if window.oldest_day() > dropped_before {
            match store
                .drop_evaluations_before(window.oldest_day().unwrap_or(i64::MIN))
                .await
            {
                Ok(()) => dropped_before = window.oldest_day(),
                Err(e) => tracing::debug!(event = "evaluation_days_not_dropped", error = %e,
                    "tried again after the next batch; their TTL bounds them anyway"),
            }
        }
        eval_metrics.joined(scored, unscored);
        window_changed |= scored > 0;
        summary.scored += scored;
        summary.unscored += unscored;
        let fraud = batch.labels.iter().filter(|l| l.fraud).count() as u64;
        let genuine = batch.labels.len() as u64 - fraud;
        label_metrics.applied(true, fraud);
        label_metrics.applied(false, genuine);
        summary.fraud += fraud;
        summary.genuine += genuine;
        tracing::debug!(event = "labels_applied", fraud, genuine, read = batch.read);

        let mut tpl = TopicPartitionList::new();
        for (&partition, &next) in &batch.next_offsets {
            if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(next)) {
                tracing::warn!(event = "offset_not_stored", partition, error = %e);
            }
        }
        // A partition revoked meanwhile refuses the store: its new owner applies those labels again.
        if let Err(e) = consumer.store_offsets(&tpl) {
            tracing::debug!(event = "offset_not_stored", error = %e);
        }
    }

    tracing::info!(event = "labels_stopping");
    let consumer = std::sync::Arc::new(consumer);
    let commit = tokio::task::spawn_blocking({
        let consumer = consumer.clone();
        move || consumer.commit_consumer_state(CommitMode::Sync)
    })
    .await;
    match commit {
        Ok(Ok(())) | Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => {}
        Ok(Err(e)) => {
            summary.drained = false;
            tracing::warn!(event = "final_commit_failed", error = %e);
        }
        Err(e) => {
            summary.drained = false;
            tracing::warn!(event = "final_commit_failed", error = %e);
        }
    }
    metrics_task.abort();
    tracing::info!(
        event = "labels_stopped",
        consumed = summary.consumed,
        fraud = summary.fraud,
        genuine = summary.genuine,
        invalid = summary.invalid,
        store_errors = summary.store_errors,
        scored = summary.scored,
        unscored = summary.unscored,
        window_samples = window.len(),
        drained = summary.drained
    );
    Ok(summary)
}

/// Recomputes the window's metrics per model version and exports them.
fn evaluate(window: &mut Window, metrics: &mut EvaluationMetrics) {
    let started = std::time::Instant::now();
    let summaries = window.summaries();
    metrics.set(&summaries);
    for (version, s) in &summaries {
        tracing::debug!(event = "online_evaluation", model_version = %version, samples = s.samples,
            frauds = s.frauds, roc_auc = ?s.roc_auc, average_precision = ?s.average_precision,
            card_precision_at_100 = s.card_precision_at_100, precision = ?s.precision,
            recall = ?s.recall, seconds = started.elapsed().as_secs_f64());
    }
}

/// Fills the window with the samples the store kept (the last `days` days that have any), waiting with
/// backoff while the store does not answer: labels cannot be applied without it either. `None` if
/// `shutdown` came first; else the samples restored.
async fn restore_window(
    store: &FeatureStore,
    window: &mut Window,
    days: u32,
    shutdown: &mut (impl Future<Output = ()> + Unpin),
) -> Option<usize> {
    let mut backoff = STORE_BACKOFF_START;
    loop {
        match load_window(store, window, days).await {
            Ok((restored, unreadable)) => {
                tracing::info!(
                    event = "evaluation_window_restored",
                    samples = restored,
                    unreadable,
                    window_samples = window.len()
                );
                return Some(restored);
            }
            Err(e) => {
                tracing::warn!(event = "evaluation_window_not_restored", error = %e,
                    retry_in_ms = backoff.as_millis() as u64);
                tokio::select! {
                    () = &mut *shutdown => return None,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(STORE_BACKOFF_MAX);
            }
        }
    }
}

/// One attempt of [`restore_window`]: the samples restored and the entries that could not be read.
async fn load_window(
    store: &FeatureStore,
    window: &mut Window,
    days: u32,
) -> Result<(usize, usize), fraudops_store::StoreError> {
    let (mut restored, mut unreadable) = (0, 0);
    for day in store.evaluation_days(days as usize).await? {
        let (rows, bad) = store.load_evaluations(day).await?;
        unreadable += bad;
        for row in rows {
            let sample = Sample {
                model_version: window.version(&row.score.model_version),
                customer_id: row.customer_id,
                score: row.score.fraud_probability,
                predicted_fraud: row.score.is_fraud,
                fraud: row.fraud,
            };
            restored += usize::from(window.insert(&row.transaction_id, row.time, sample));
        }
    }
    Ok((restored, unreadable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_event_becomes_a_store_label() {
        let (label, customer) = parse_label(
            br#"{"transaction_id":17,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#,
        )
        .unwrap();
        assert_eq!(label.transaction_id, "17");
        assert_eq!(label.terminal_id, 3107);
        assert_eq!(
            label.time,
            fraudops_data::writer::parse_datetime("2018-04-02 03:04:05").unwrap()
        );
        assert!(label.fraud);
        assert_eq!(customer, 42);
        let (text, _) = parse_label(
            br#"{"transaction_id":"tx-1","customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":false}"#,
        )
        .unwrap();
        assert_eq!(text.transaction_id, "tx-1");
        assert!(!text.fraud);
    }

    #[test]
    fn what_is_not_a_label_says_why() {
        for (payload, why) in [
            (&b"{not json"[..], "key must be a string"),
            (br#"{"transaction_id":1,"terminal_id":2}"#, "missing field"),
            (
                br#"{"transaction_id":1,"customer_id":1,"terminal_id":2,"tx_datetime":"soon","tx_fraud":true}"#,
                "tx_datetime",
            ),
            (
                br#"{"transaction_id":"","customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#,
                "transaction_id",
            ),
            (b"", "EOF"),
        ] {
            let err = parse_label(payload).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn a_batch_commits_past_its_last_message_per_partition_invalid_ones_included() {
        let metrics = LabelMetrics::register(&KafkaMetrics::new().unwrap()).unwrap();
        let mut batch = Batch::default();
        let ok = br#"{"transaction_id":1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#;
        assert!(batch.add(0, 5, ok, &metrics));
        assert!(!batch.add(0, 6, b"junk", &metrics));
        assert!(batch.add(3, 9, ok, &metrics));
        assert_eq!(batch.labels.len(), 2);
        assert_eq!(
            batch.next_offsets.into_iter().collect::<Vec<_>>(),
            [(0, 7), (3, 10)]
        );
    }
}
