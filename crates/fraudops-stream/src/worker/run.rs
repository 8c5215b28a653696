//! The worker loop: consume, compute features, score concurrently, produce, store offsets; drain and
//! commit on shutdown.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fraudops_model::Model;
use fraudops_store::{ScoreRecord, ScoreRecorder, StoredScore};
use fraudops_wire::{DeadLetter, FeatureSource, PredictionEvent, ScoredBy};
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::error::StreamError;
use crate::lag::{LagProbe, spawn_reporter};
use crate::message::{Event, parse_event};
use crate::telemetry::{KafkaMetrics, bind_metrics, serve_metrics};
use crate::worker::config::WorkerConfig;
use crate::worker::features::Found;
use crate::worker::offsets::{OffsetTracker, Ticket};
use crate::worker::scorer::{HttpScorer, InProcessScorer, Scorer};

/// First pause before producing a prediction again after a failed delivery; doubled per attempt.
const DELIVERY_BACKOFF_START: Duration = Duration::from_millis(100);
/// Longest pause between delivery attempts.
const DELIVERY_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// What a worker did, for its exit log and for benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WorkerSummary {
    /// Events read.
    pub consumed: u64,
    /// Predictions acknowledged on the output topic.
    pub predicted: u64,
    /// Dead letters acknowledged.
    pub dead_lettered: u64,
    /// Seconds from the first event read to the last one done.
    pub busy_seconds: f64,
    /// CPU seconds (user + system) the whole process used.
    pub cpu_seconds: f64,
    /// True if every event read was done and committed before exit.
    pub drained: bool,
}

impl WorkerSummary {
    /// Events done per second of busy time.
    pub fn events_per_second(&self) -> f64 {
        (self.predicted + self.dead_lettered) as f64 / self.busy_seconds.max(1e-9)
    }

    /// Events done per CPU second: throughput per core.
    pub fn events_per_cpu_second(&self) -> f64 {
        (self.predicted + self.dead_lettered) as f64 / self.cpu_seconds.max(1e-9)
    }
}

/// Forgets revoked partitions' in-flight events (the new owner reads them again).
struct WorkerContext {
    tracker: Arc<OffsetTracker>,
}

impl ClientContext for WorkerContext {}

impl ConsumerContext for WorkerContext {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(event = "partitions_revoked", partitions = ?partitions);
                // Store what is done before librdkafka commits on revocation: fewer repeats for the new owner.
                let done = self.tracker.revoke(&partitions);
                if let Some(topic) = tpl.elements().first().map(|e| e.topic().to_owned()) {
                    store(consumer, &topic, &done);
                }
            }
            Rebalance::Assign(tpl) => {
                let partitions: Vec<i32> = tpl.elements().iter().map(|e| e.partition()).collect();
                tracing::info!(event = "partitions_assigned", partitions = ?partitions);
            }
            Rebalance::Error(e) => tracing::warn!(event = "rebalance_failed", error = %e),
        }
    }

    fn commit_callback(
        &self,
        result: rdkafka::error::KafkaResult<()>,
        offsets: &TopicPartitionList,
    ) {
        crate::commit::log_commit(result, offsets);
    }
}

/// Hands committable offsets to librdkafka, which commits them at the next auto-commit (or on revocation
/// and close). A partition revoked meanwhile refuses the store: its new owner reads those events again.
fn store<C: ConsumerContext>(consumer: &impl Consumer<C>, topic: &str, offsets: &[(i32, i64)]) {
    if offsets.is_empty() {
        return;
    }
    let mut tpl = TopicPartitionList::new();
    for &(partition, offset) in offsets {
        if let Err(e) = tpl.add_partition_offset(topic, partition, Offset::Offset(offset)) {
            tracing::warn!(event = "offset_not_stored", partition, error = %e);
        }
    }
    if let Err(e) = consumer.store_offsets(&tpl) {
        tracing::debug!(event = "offset_not_stored", error = %e);
    }
}

/// How often finished offsets are handed to librdkafka (commits happen at the commit interval).
const STORE_EVERY: Duration = Duration::from_millis(50);
/// Scores queued for the feature store at most; past it they are dropped and counted, never waited for.
const SCORE_QUEUE: usize = 65_536;

/// What every event task needs.
struct Shared {
    producer: FutureProducer,
    tracker: Arc<OffsetTracker>,
    metrics: KafkaMetrics,
    input_topic: String,
    output_topic: String,
    dead_letter_topic: String,
    replica_id: String,
    predicted: AtomicU64,
    dead_lettered: AtomicU64,
    last_done: Mutex<Option<Instant>>,
    /// Records each prediction's score in the feature store for the label consumer (with a store).
    scores: Option<ScoreRecorder>,
}

impl Shared {
    /// Produces `payload` until the broker acknowledges it: an event is never given up on while the
    /// worker runs (a crash leaves its offset uncommitted, so it is read again). The producer is
    /// idempotent and has no delivery timeout, so an error here means the message was not written: sending
    /// it again cannot make a second copy.
    async fn deliver(&self, topic: &str, key: Option<&[u8]>, payload: &[u8]) {
        let mut backoff = DELIVERY_BACKOFF_START;
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(payload);
            if let Some(key) = key {
                record = record.key(key);
            }
            match self.producer.send(record, Duration::from_secs(5)).await {
                Ok(_) => {
                    self.metrics.produced(topic);
                    return;
                }
                Err((e, _)) => {
                    tracing::warn!(event = "delivery_failed", topic, error = %e);
                    self.metrics.retried("delivery");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(DELIVERY_BACKOFF_MAX);
                }
            }
        }
    }

    /// The event's output is acknowledged: let its offset be committed, count, time.
    fn done(&self, ticket: Ticket, received: Instant) {
        self.tracker.complete(ticket);
        self.metrics.processed(received.elapsed().as_secs_f64());
        if let Ok(mut last) = self.last_done.lock() {
            *last = Some(Instant::now());
        }
    }

    async fn dead_letter(&self, letter: DeadLetter, key: Option<&[u8]>) {
        tracing::warn!(event = "dead_lettered", partition = letter.source_partition,
            offset = letter.source_offset, field = ?letter.field, reason = %letter.reason);
        self.metrics.dead_lettered(letter.field.as_deref());
        let payload = serde_json::to_vec(&letter).unwrap_or_default();
        self.deliver(&self.dead_letter_topic, key, &payload).await;
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
    }
}

/// One event read from the input.
struct Received {
    ticket: Ticket,
    at: Instant,
    key: Option<Vec<u8>>,
    payload: Vec<u8>,
}

/// Scores one event and produces its prediction (or dead letter), then marks it done.
async fn process(shared: Arc<Shared>, scorer: Scorer, event: Event, found: Found, input: Received) {
    match scorer.score(&event, found.row.as_ref()).await {
        Ok((mut prediction, scored_by)) => {
            // The worker's own store lookup is the prediction's source; without windows the API (its own
            // store) or the in-process model (none) said.
            match (found.source, scored_by) {
                (FeatureSource::Store, _) => prediction.feature_source = FeatureSource::Store,
                (source, ScoredBy::InProcess) => prediction.feature_source = source,
                _ => {}
            }
            if let Some(recorder) = &shared.scores {
                let queued = recorder.record(ScoreRecord {
                    transaction_id: event.id.to_string(),
                    time: event.tx.tx_datetime,
                    namespace: event.namespace(),
                    score: StoredScore {
                        fraud_probability: prediction.fraud_probability,
                        is_fraud: prediction.is_fraud,
                        model_version: prediction.model_version.clone(),
                    },
                });
                if !queued {
                    shared.metrics.scores_not_recorded(1);
                }
            }
            let message = PredictionEvent {
                prediction,
                customer_id: event.tx.customer_id,
                tx_datetime: Some(fraudops_data::writer::format_datetime(event.tx.tx_datetime)),
                scored_by,
                source_partition: input.ticket.partition,
                source_offset: input.ticket.offset,
            };
            let payload = serde_json::to_vec(&message).unwrap_or_default();
            shared
                .deliver(&shared.output_topic, input.key.as_deref(), &payload)
                .await;
            shared.predicted.fetch_add(1, Ordering::Relaxed);
        }
        Err(rejection) => {
            let letter = DeadLetter::new(
                rejection.reason,
                rejection.field,
                &shared.input_topic,
                input.ticket.partition,
                input.ticket.offset,
                &input.payload,
                &shared.replica_id,
            );
            shared.dead_letter(letter, input.key.as_deref()).await;
        }
    }
    shared.done(input.ticket, input.at);
}

/// CPU seconds (user + system) used by this process so far.
fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the zeroed struct we own.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return 0.0;
        }
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Picks the scorer: the API when `--api-url` is set, the model in-process with `--in-process`.
fn scorer(config: &WorkerConfig, metrics: &KafkaMetrics) -> Result<Scorer, StreamError> {
    match (&config.api_url, config.in_process) {
        (Some(url), false) => Ok(Scorer::Http(Arc::new(HttpScorer::new(
            url,
            config.api_key.as_deref(),
            config.concurrency,
            config.http_timeout,
            config.max_attempts,
            metrics.clone(),
        )?))),
        (None, true) => {
            let model = match config
                .model_path
                .as_ref()
                .filter(|p| !p.as_os_str().is_empty())
            {
                Some(path) => Model::load(path)?,
                None => Model::embedded()?,
            };
            tracing::info!(event = "model_loaded", model_version = %model.version());
            Ok(Scorer::InProcess(Arc::new(InProcessScorer::new(
                model,
                config.resolved_replica_id(),
            ))))
        }
        (Some(_), true) => Err(StreamError::Config(
            "choose either --api-url or --in-process, not both".into(),
        )),
        (None, false) => Err(StreamError::Config(
            "choose how to score: --api-url URL (the API, as deployed) or --in-process".into(),
        )),
    }
}

/// Runs the worker until `shutdown` resolves (or `--stop-after` events are done), then stops reading,
/// lets the events in flight finish (at most `--shutdown-grace`), commits, and returns what it did.
pub async fn run(
    config: WorkerConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerSummary, StreamError> {
    if config.concurrency == 0 || config.max_in_flight == 0 {
        return Err(StreamError::Config(
            "--concurrency and --max-in-flight must be at least 1".into(),
        ));
    }
    let metrics = KafkaMetrics::new()?;
    let scorer = scorer(&config, &metrics)?;
    let feature_store = match config.feature_store.connect()? {
        Some(store) => Some(store),
        None => {
            if config.in_process {
                tracing::warn!(
                    event = "no_feature_store",
                    "scoring in-process without FEATURE_STORE_URL: every event is scored without history"
                );
            }
            None
        }
    };
    let listener = bind_metrics(config.metrics_port).await?;
    let metrics_addr = listener.local_addr().ok();
    let metrics_task = tokio::spawn(serve_metrics(listener, metrics.clone()));
    let replica_id = config.resolved_replica_id();
    let kafka = &config.kafka;
    crate::admin::ensure_topics(
        kafka,
        &[
            (kafka.topic.as_str(), kafka.partitions),
            (config.output_topic.as_str(), kafka.partitions),
            (
                config.dead_letter_topic.as_str(),
                config.dead_letter_partitions,
            ),
        ],
    )
    .await?;

    let tracker = Arc::new(OffsetTracker::new());
    let session_ms = config.session_timeout.as_millis().max(6000);
    let consumer: StreamConsumer<WorkerContext> = kafka
        .client_config(&format!("fraudops-stream-{replica_id}"))
        .set("group.id", &config.group)
        // librdkafka commits every interval what we stored: only offsets whose events are all done.
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set(
            "auto.commit.interval.ms",
            config.commit_interval.as_millis().max(10).to_string(),
        )
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", session_ms.to_string())
        .set(
            "heartbeat.interval.ms",
            (session_ms / 3).min(3000).to_string(),
        )
        .create_with_context(WorkerContext {
            tracker: tracker.clone(),
        })?;
    let consumer = Arc::new(consumer);
    consumer.subscribe(&[kafka.topic.as_str()])?;
    let producer: FutureProducer = kafka
        .client_config(&format!("fraudops-stream-{replica_id}"))
        .set("linger.ms", "5")
        // librdkafka retries a send itself, with sequence numbers the broker deduplicates, and without a
        // client-side timeout: a slow or restarting broker delays a prediction (the consumer stops at
        // MAX_IN_FLIGHT, the lag alert fires) but never writes it twice. What still fails (a permanent
        // error: the message was not written) is sent again by `deliver`.
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "0")
        .create()?;

    let stop_lag = Arc::new(AtomicBool::new(false));
    let owner = consumer.clone();
    let lag_thread = spawn_reporter(
        LagProbe::new(kafka, &config.group)?,
        metrics.clone(),
        config.lag_interval,
        Box::new(move || {
            owner.assignment().ok().map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| e.partition())
                    .collect::<HashSet<i32>>()
            })
        }),
        stop_lag.clone(),
    )
    .map_err(|e| StreamError::io("starting the lag reporter", e))?;

    tracing::info!(event = "worker_started", replica_id = %replica_id, group = %config.group,
        input = %kafka.topic, output = %config.output_topic, dead_letter = %config.dead_letter_topic,
        scoring = if config.in_process { "in-process" } else { "api" },
        metrics_addr = metrics_addr.map(tracing::field::display),
        feature_store = config.feature_store.url.is_some(),
        concurrency = config.concurrency, max_in_flight = config.max_in_flight);

    // The scores for the label consumer go on a connection and breakers of their own.
    let recorder_store = feature_store
        .as_ref()
        .map(fraudops_store::FeatureStore::own_connection)
        .transpose()?;
    let shared = Arc::new(Shared {
        producer,
        tracker: tracker.clone(),
        metrics: metrics.clone(),
        input_topic: kafka.topic.clone(),
        output_topic: config.output_topic.clone(),
        dead_letter_topic: config.dead_letter_topic.clone(),
        replica_id: replica_id.clone(),
        predicted: AtomicU64::new(0),
        dead_lettered: AtomicU64::new(0),
        scores: recorder_store.map(|store| {
            let metrics = metrics.clone();
            ScoreRecorder::spawn(store, SCORE_QUEUE, move |n, _| {
                metrics.scores_not_recorded(n)
            })
            .0
        }),
        last_done: Mutex::new(None),
    });
    // The one place offsets are stored from, so a stored offset never goes backwards.
    let storer = tokio::spawn({
        let (consumer, tracker, topic) = (consumer.clone(), tracker.clone(), kafka.topic.clone());
        async move {
            let mut tick = tokio::time::interval(STORE_EVERY);
            loop {
                tick.tick().await;
                store(consumer.as_ref(), &topic, &tracker.advanced());
            }
        }
    });
    let permits = Arc::new(Semaphore::new(config.max_in_flight));
    // Parsed events go through the feature stage in arrival order, then to scoring concurrently.
    let (to_features, staged) = mpsc::channel::<(Event, (Received, OwnedSemaphorePermit))>(
        config
            .max_in_flight
            .min(4 * crate::worker::features::MAX_BATCH),
    );
    let stage = crate::worker::features::spawn(
        feature_store,
        config.feature_store_max_wait,
        metrics.clone(),
        staged,
        {
            let (shared, scorer) = (shared.clone(), scorer.clone());
            move |event, found, (input, permit)| {
                let (shared, scorer) = (shared.clone(), scorer.clone());
                tokio::spawn(async move {
                    process(shared, scorer, event, found, input).await;
                    drop(permit);
                });
            }
        },
    );
    let mut consumed: u64 = 0;
    let mut first_at: Option<Instant> = None;
    tokio::pin!(shutdown);

    loop {
        if config.stop_after.is_some_and(|n| consumed >= n) {
            break;
        }
        let permit = tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let message = tokio::select! {
            biased;
            () = shutdown.as_mut() => break,
            m = consumer.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(event = "consume_failed", error = %e);
                continue;
            }
        };
        consumed += 1;
        first_at.get_or_insert_with(Instant::now);
        metrics.consumed(&kafka.topic);
        let payload = message.payload().unwrap_or_default().to_vec();
        let input = Received {
            ticket: tracker.begin(message.partition(), message.offset()),
            at: Instant::now(),
            key: message.key().map(<[u8]>::to_vec),
            payload,
        };
        drop(message);
        let shared = shared.clone();
        match parse_event(&input.payload) {
            Ok(event) => {
                // In arrival order: a card's events reach the store in order.
                if to_features.send((event, (input, permit))).await.is_err() {
                    break;
                }
            }
            Err(rejection) => {
                let letter = DeadLetter::new(
                    rejection.reason,
                    rejection.field,
                    &kafka.topic,
                    input.ticket.partition,
                    input.ticket.offset,
                    &input.payload,
                    &replica_id,
                );
                tokio::spawn(async move {
                    shared.dead_letter(letter, input.key.as_deref()).await;
                    shared.done(input.ticket, input.at);
                    drop(permit);
                });
            }
        }
    }

    // Stop reading; the feature stage passes on what it holds; the events in flight finish; commit.
    drop(to_features);
    let _ = stage.await;
    tracing::info!(event = "draining", in_flight = tracker.in_flight());
    let all = u32::try_from(config.max_in_flight).unwrap_or(u32::MAX);
    let drained = tokio::time::timeout(config.shutdown_grace, permits.acquire_many(all))
        .await
        .is_ok_and(|p| p.is_ok());
    if !drained {
        tracing::warn!(
            event = "drain_timeout",
            in_flight = tracker.in_flight(),
            "events still in flight are not committed; they are processed again after a restart"
        );
    }
    storer.abort();
    store(consumer.as_ref(), &kafka.topic, &tracker.advanced());
    let commit = tokio::task::spawn_blocking({
        let consumer = consumer.clone();
        move || consumer.commit_consumer_state(CommitMode::Sync)
    })
    .await;
    match commit {
        Ok(Ok(())) => {}
        // Nothing new since the last automatic commit.
        Ok(Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset))) => {}
        Ok(Err(e)) => tracing::warn!(event = "final_commit_failed", error = %e),
        Err(e) => tracing::warn!(event = "final_commit_failed", error = %e),
    }
    stop_lag.store(true, Ordering::Relaxed);
    let _ = tokio::task::spawn_blocking(move || lag_thread.join()).await;
    metrics_task.abort();

    let last_done = shared.last_done.lock().ok().and_then(|l| *l);
    let summary = WorkerSummary {
        consumed,
        predicted: shared.predicted.load(Ordering::Relaxed),
        dead_lettered: shared.dead_lettered.load(Ordering::Relaxed),
        busy_seconds: match (first_at, last_done) {
            (Some(a), Some(b)) => b.saturating_duration_since(a).as_secs_f64(),
            _ => 0.0,
        },
        cpu_seconds: cpu_seconds(),
        drained,
    };
    tracing::info!(
        event = "worker_stopped",
        consumed = summary.consumed,
        predicted = summary.predicted,
        dead_lettered = summary.dead_lettered,
        drained = summary.drained
    );
    Ok(summary)
}
