//! The archive's loop. librdkafka's consumer runs on a thread of its own (Parquet encoding is CPU work,
//! and the rebalance callback must block until a partition is recovered); object storage calls run on
//! the tokio runtime the thread blocks on.
//!
//! Architecture invariant: a Kafka offset is committed only after the lake's ledger committed it, and
//! reading a partition always resumes at the ledger's offset, not Kafka's: the ledger is the truth, the
//! group's offsets are what the lag metrics and the alert read.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fraudops_lake::{
    Committed, CompactionPolicy, FlushPolicy, Lake, PartitionSink, Provenance, Table,
};
use fraudops_wire::DeadLetter;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaResult;
use rdkafka::message::BorrowedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use crate::archive::config::ArchiveConfig;
use crate::error::StreamError;
use crate::lag::{LagProbe, spawn_reporter};
use crate::telemetry::{KafkaMetrics, LakeMetrics, bind_metrics, serve_metrics};

/// How long the rebalance callback keeps trying to recover a partition's ledger before the archive
/// gives up (and exits: the pod restarts, the alert sees it).
const RECOVER_DEADLINE: Duration = Duration::from_secs(60);
/// First pause after a failed write; doubled per failure.
const BACKOFF_START: Duration = Duration::from_millis(500);
/// Longest pause between write attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How often days are checked for small files to merge.
const COMPACT_EVERY: Duration = Duration::from_secs(10);
/// At shutdown, how long the final flush may keep retrying a failing store.
const FINAL_FLUSH_DEADLINE: Duration = Duration::from_secs(30);
/// How long a dead letter may take to be acknowledged.
const DEAD_LETTER_TIMEOUT: Duration = Duration::from_secs(30);

/// What an archive did, for its exit line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArchiveSummary {
    /// Records read.
    pub consumed: u64,
    /// Records already in the lake when read again (a redelivery), skipped.
    pub redelivered: u64,
    /// Rows committed, per table name.
    pub rows: BTreeMap<&'static str, u64>,
    /// Files committed.
    pub files: u64,
    /// Small files merged away.
    pub compacted: u64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Failed write attempts.
    pub write_errors: u64,
    /// True when every record read was committed to the lake before exit.
    pub drained: bool,
}

/// Each owned partition's sink, by table (one topic each) and partition: a key the per-record lookup
/// builds without allocating.
type Sinks = Arc<Mutex<BTreeMap<(Table, i32), PartitionSink>>>;

/// The consumer's callbacks: recover a partition's ledger before it is assigned, flush it before it is
/// revoked.
struct ArchiveContext {
    lake: Lake,
    tables: HashMap<String, Table>,
    sinks: Sinks,
    runtime: tokio::runtime::Handle,
    metrics: LakeMetrics,
    summary: Arc<Mutex<ArchiveSummary>>,
    /// Set when a partition could not be recovered: the loop stops with this error.
    fatal: Mutex<Option<String>>,
    /// Partitions owned, per topic (the lag reporters read it).
    owned: Arc<Mutex<HashMap<String, HashSet<i32>>>>,
}

impl ClientContext for ArchiveContext {}

impl ConsumerContext for ArchiveContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let partitions: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                for (topic, partition) in partitions {
                    let Some(&table) = self.tables.get(&topic) else {
                        continue;
                    };
                    match self.recover(&topic, partition, table) {
                        Ok(sink) => {
                            if let Some(next) = sink.resume_offset() {
                                let _ = tpl.set_partition_offset(
                                    &topic,
                                    partition,
                                    Offset::Offset(next),
                                );
                            }
                            tracing::info!(
                                event = "lake_partition_assigned",
                                topic,
                                partition,
                                resume_offset = sink.resume_offset()
                            );
                            self.owned_mut(|o| {
                                o.entry(topic.clone()).or_default().insert(partition);
                            });
                            lock(&self.sinks).insert((table, partition), sink);
                        }
                        Err(e) => {
                            tracing::error!(event = "lake_recovery_failed", topic, partition, error = %e);
                            *lock(&self.fatal) = Some(format!(
                                "recovering {topic}/{partition} from the lake's ledger: {e}"
                            ));
                        }
                    }
                }
                if let Err(e) = consumer.assign(tpl) {
                    tracing::error!(event = "assign_failed", error = %e);
                }
                // The group's offsets catch up with the ledger at once: a crash between a ledger commit and
                // its Kafka commit must not leave a quiet partition showing lag (and the stall alert firing).
                let mut resumed = TopicPartitionList::new();
                for elem in tpl.elements() {
                    if let Offset::Offset(next) = elem.offset() {
                        let _ = resumed.add_partition_offset(
                            elem.topic(),
                            elem.partition(),
                            Offset::Offset(next),
                        );
                    }
                }
                if resumed.count() > 0
                    && let Err(e) = consumer.commit(&resumed, CommitMode::Async)
                {
                    tracing::debug!(event = "offset_not_committed", error = %e);
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                let revoked: Vec<(String, i32)> = tpl
                    .elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect();
                for (topic, partition) in revoked {
                    let Some(&table) = self.tables.get(&topic) else {
                        continue;
                    };
                    let sink = lock(&self.sinks).remove(&(table, partition));
                    if let Some(mut sink) = sink {
                        // Hand the partition over with its buffer in the lake when the store allows;
                        // otherwise the next owner reads those records again.
                        if let Ok(committed) = self.runtime.block_on(sink.flush()) {
                            self.count(&committed, &sink);
                            commit_offset(consumer, &sink, committed.next_offset, CommitMode::Sync);
                        }
                        tracing::info!(event = "lake_partition_revoked", topic, partition);
                    }
                    self.owned_mut(|o| {
                        if let Some(set) = o.get_mut(&topic) {
                            set.remove(&partition);
                        }
                    });
                }
                if let Err(e) = consumer.unassign() {
                    tracing::warn!(event = "unassign_failed", error = %e);
                }
            }
            other => {
                tracing::warn!(event = "rebalance_error", error = ?other);
                let _ = consumer.unassign();
            }
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, offsets: &TopicPartitionList) {
        crate::commit::log_commit(result, offsets);
    }
}

impl ArchiveContext {
    /// Opens a partition's sink, retrying a failing store for [`RECOVER_DEADLINE`].
    fn recover(
        &self,
        topic: &str,
        partition: i32,
        table: Table,
    ) -> Result<PartitionSink, fraudops_lake::LakeError> {
        let deadline = Instant::now() + RECOVER_DEADLINE;
        let mut backoff = BACKOFF_START;
        loop {
            match self
                .runtime
                .block_on(PartitionSink::open(&self.lake, topic, partition, table))
            {
                Ok(sink) => return Ok(sink),
                Err(e) if Instant::now() + backoff < deadline => {
                    self.metrics.write_failed();
                    tracing::warn!(event = "lake_recovery_retry", topic, partition, error = %e,
                        retry_in_ms = backoff.as_millis() as u64);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn owned_mut(&self, f: impl FnOnce(&mut HashMap<String, HashSet<i32>>)) {
        f(&mut lock(&self.owned));
    }

    /// Counts a committed change in the metrics and the summary.
    fn count(&self, committed: &Committed, sink: &PartitionSink) {
        if committed.next_offset.is_some() || !committed.written.is_empty() {
            self.metrics.committed();
        }
        let mut summary = lock(&self.summary);
        for file in &committed.written {
            // A merged file holds rows already counted when they were first written.
            let new_rows = if committed.replaced == 0 {
                file.rows
            } else {
                0
            };
            self.metrics.file_written(file.table, new_rows, file.bytes);
            summary.files += 1;
            if committed.replaced == 0 {
                *summary.rows.entry(file.table.name()).or_default() += file.rows as u64;
            }
        }
        if committed.replaced > 0 {
            self.metrics.compacted(sink.table(), committed.replaced);
            summary.compacted += committed.replaced as u64;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Commits `next` for `sink`'s partition to the group (a hint for lag; the ledger is the truth).
fn commit_offset<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    sink: &PartitionSink,
    next: Option<i64>,
    mode: CommitMode,
) {
    let Some(next) = next else { return };
    let (topic, partition) = (sink.topic(), sink.partition());
    let mut tpl = TopicPartitionList::new();
    if tpl
        .add_partition_offset(topic, partition, Offset::Offset(next))
        .is_ok()
        && let Err(e) = consumer.commit(&tpl, mode)
    {
        tracing::debug!(event = "offset_not_committed", topic, partition, error = %e);
    }
}

/// Runs the archive until `shutdown` resolves; the final flush commits what was read.
pub async fn run(
    config: ArchiveConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<ArchiveSummary, StreamError> {
    if config.flush_rows == 0 || config.flush_bytes == 0 {
        return Err(StreamError::Config(
            "--flush-rows and --flush-bytes must be at least 1".into(),
        ));
    }
    let lake = Lake::open(&config.lake).map_err(|e| StreamError::Config(e.to_string()))?;
    let metrics = KafkaMetrics::new()?;
    let lake_metrics = LakeMetrics::register(&metrics)?;
    let listener = bind_metrics(config.metrics_port).await?;
    let metrics_addr = listener.local_addr().ok();
    let metrics_task = tokio::spawn(serve_metrics(listener, metrics.clone()));
    let replica_id = config.resolved_replica_id();
    let topics = config.topics();
    let mut wanted: Vec<(&str, i32)> = topics
        .iter()
        .map(|(t, _)| (*t, config.kafka.partitions))
        .collect();
    wanted.push((config.dead_letter_topic.as_str(), 3));
    crate::admin::ensure_topics(&config.kafka, &wanted).await?;

    let summary = Arc::new(Mutex::new(ArchiveSummary::default()));
    let owned: Arc<Mutex<HashMap<String, HashSet<i32>>>> = Arc::default();
    let context = ArchiveContext {
        lake: lake.clone(),
        tables: topics
            .iter()
            .map(|(t, table)| ((*t).to_owned(), *table))
            .collect(),
        sinks: Arc::default(),
        runtime: tokio::runtime::Handle::current(),
        metrics: lake_metrics.clone(),
        summary: summary.clone(),
        fatal: Mutex::new(None),
        owned: owned.clone(),
    };
    let consumer: BaseConsumer<ArchiveContext> = config
        .kafka
        .client_config(&format!("fraudops-archive-{replica_id}"))
        .set("group.id", &config.group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "3000")
        .create_with_context(context)?;
    let names: Vec<&str> = topics.iter().map(|(t, _)| *t).collect();
    consumer.subscribe(&names)?;
    let producer: FutureProducer = config
        .kafka
        .client_config(&format!("fraudops-archive-dlq-{replica_id}"))
        .set("acks", "all")
        .create()?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut reporters = Vec::new();
    for (topic, _) in &topics {
        let kafka = crate::config::KafkaArgs {
            topic: (*topic).to_owned(),
            ..config.kafka.clone()
        };
        let probe = LagProbe::new(&kafka, &config.group)?;
        let owned = owned.clone();
        let name = (*topic).to_owned();
        let reporter = spawn_reporter(
            probe,
            metrics.clone(),
            config.lag_interval,
            Box::new(move || Some(lock(&owned).get(&name).cloned().unwrap_or_default())),
            stop.clone(),
        )
        .map_err(|source| StreamError::Io {
            context: "starting the lag reporter".into(),
            source,
        })?;
        reporters.push(reporter);
    }
    tracing::info!(event = "archive_started", replica_id = %replica_id, group = %config.group,
        lake = %lake, topics = ?names, metrics_addr = metrics_addr.map(tracing::field::display),
        flush_rows = config.flush_rows, flush_bytes = config.flush_bytes,
        flush_interval_ms = config.flush_interval.as_millis() as u64);

    let loop_stop = stop.clone();
    let settings = LoopSettings {
        flush: FlushPolicy {
            max_rows: config.flush_rows,
            max_bytes: config.flush_bytes,
            max_age: config.flush_interval,
        },
        compaction: CompactionPolicy {
            min_files: config.compact_min_files,
            small_file_bytes: config.small_file_bytes,
        },
        buffer_bytes: config.buffer_bytes,
        dead_letter_topic: config.dead_letter_topic.clone(),
        replica_id,
    };
    let kafka_metrics = metrics.clone();
    let mut work = tokio::task::spawn_blocking(move || {
        consume(&consumer, &producer, &settings, &kafka_metrics, &loop_stop)
    });
    tokio::pin!(shutdown);
    let outcome = tokio::select! {
        outcome = &mut work => outcome,
        () = &mut shutdown => {
            tracing::info!(event = "archive_stopping");
            stop.store(true, Ordering::Relaxed);
            work.await
        }
    };
    stop.store(true, Ordering::Relaxed);
    for reporter in reporters {
        let _ = tokio::task::spawn_blocking(move || reporter.join()).await;
    }
    metrics_task.abort();
    let drained = match outcome {
        Ok(Ok(drained)) => drained,
        Ok(Err(e)) => return Err(e),
        Err(e) => return Err(StreamError::Config(format!("archive loop panicked: {e}"))),
    };
    let mut summary = lock(&summary).clone();
    summary.drained = drained;
    tracing::info!(event = "archive_stopped", consumed = summary.consumed, redelivered = summary.redelivered,
        rows = ?summary.rows, files = summary.files, compacted = summary.compacted,
        dead_letters = summary.dead_letters, write_errors = summary.write_errors, drained);
    Ok(summary)
}

struct LoopSettings {
    flush: FlushPolicy,
    compaction: CompactionPolicy,
    buffer_bytes: usize,
    dead_letter_topic: String,
    replica_id: String,
}

/// The consumer loop; returns whether everything read was committed.
fn consume(
    consumer: &BaseConsumer<ArchiveContext>,
    producer: &FutureProducer,
    settings: &LoopSettings,
    kafka_metrics: &KafkaMetrics,
    stop: &AtomicBool,
) -> Result<bool, StreamError> {
    let context = consumer.context();
    let mut failing: Option<(Instant, Duration)> = None;
    let mut paused = false;
    let mut last_compaction = Instant::now();
    let mut last_check = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(reason) = lock(&context.fatal).take() {
            return Err(StreamError::Config(reason));
        }
        match consumer.poll(Duration::from_millis(50)) {
            Some(Ok(message)) => {
                kafka_metrics.consumed(message.topic());
                take(context, producer, settings, &message, stop);
            }
            Some(Err(e)) => tracing::warn!(event = "consume_failed", error = %e),
            None => {}
        }
        let now = Instant::now();
        if now.duration_since(last_check) < Duration::from_millis(20) && failing.is_none() {
            continue;
        }
        last_check = now;
        if let Some((retry_at, _)) = failing
            && now < retry_at
        {
            continue;
        }
        match flush_due(consumer, settings, false) {
            Ok(()) => {
                if paused {
                    if let Ok(assignment) = consumer.assignment() {
                        let _ = consumer.resume(&assignment);
                    }
                    paused = false;
                    tracing::info!(event = "lake_writes_recovered");
                }
                failing = None;
            }
            Err(e) => {
                let backoff = failing.map_or(BACKOFF_START, |(_, b)| (b * 2).min(BACKOFF_MAX));
                context.metrics.write_failed();
                lock(&context.summary).write_errors += 1;
                tracing::warn!(event = "lake_flush_failed", error = %e, retry_in_ms = backoff.as_millis() as u64,
                    "nothing is committed until the lake takes the files; reading is paused");
                if !paused && let Ok(assignment) = consumer.assignment() {
                    let _ = consumer.pause(&assignment);
                    paused = true;
                }
                failing = Some((now + backoff, backoff));
                continue;
            }
        }
        if now.duration_since(last_compaction) >= COMPACT_EVERY {
            last_compaction = now;
            compact_all(context, &settings.compaction);
        }
        let buffered: usize = lock(&context.sinks)
            .values()
            .map(|s| s.buffered_rows())
            .sum();
        context.metrics.set_buffered(buffered);
    }
    // Shutdown: everything read goes to the lake (retrying a failing store for a while), then the offsets.
    let deadline = Instant::now() + FINAL_FLUSH_DEADLINE;
    let mut backoff = BACKOFF_START;
    let drained = loop {
        match flush_due(consumer, settings, true) {
            Ok(()) => break true,
            Err(e) if Instant::now() + backoff < deadline => {
                context.metrics.write_failed();
                tracing::warn!(event = "lake_flush_failed", error = %e, retry_in_ms = backoff.as_millis() as u64);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => {
                tracing::warn!(event = "lake_final_flush_failed", error = %e,
                    "not committed: read again after the restart");
                break false;
            }
        }
    };
    context.metrics.set_buffered(0);
    Ok(drained)
}

/// Routes one record: parsed into its partition's buffer, or dead-lettered (and then moved past).
fn take(
    context: &ArchiveContext,
    producer: &FutureProducer,
    settings: &LoopSettings,
    message: &BorrowedMessage<'_>,
    stop: &AtomicBool,
) {
    let topic = message.topic();
    let Some(&table) = context.tables.get(topic) else {
        return;
    };
    let (partition, offset) = (message.partition(), message.offset());
    let timestamp_ms = message.timestamp().to_millis();
    let parsed = match message.payload() {
        None | Some([]) => Err("empty record".to_owned()),
        Some(payload) => fraudops_lake::table::parse(table, payload, timestamp_ms),
    };
    lock(&context.summary).consumed += 1;
    let row = match parsed {
        Ok(row) => Some(row),
        Err(reason) => {
            if !dead_letter(producer, settings, message, reason, stop) {
                return;
            }
            context.metrics.dead_lettered(table);
            lock(&context.summary).dead_letters += 1;
            None
        }
    };
    let mut sinks = lock(&context.sinks);
    let Some(sink) = sinks.get_mut(&(table, partition)) else {
        tracing::debug!(
            event = "record_of_unowned_partition",
            topic,
            partition,
            offset
        );
        return;
    };
    let from = Provenance {
        partition,
        offset,
        timestamp_ms,
    };
    if !sink.push(offset, row.as_ref().map(|r| (r, from))) {
        lock(&context.summary).redelivered += 1;
    }
}

/// Sends the record to the dead-letter topic and waits for the broker's acknowledgement (retrying until
/// `stop`); false if it was not acknowledged (the record is then not moved past).
fn dead_letter(
    producer: &FutureProducer,
    settings: &LoopSettings,
    message: &BorrowedMessage<'_>,
    reason: String,
    stop: &AtomicBool,
) -> bool {
    tracing::warn!(event = "lake_dead_letter", topic = message.topic(), partition = message.partition(),
        offset = message.offset(), reason = %reason);
    let letter = DeadLetter::new(
        format!("not archived: {reason}"),
        None,
        message.topic(),
        message.partition(),
        message.offset(),
        message.payload().unwrap_or_default(),
        &settings.replica_id,
    );
    let payload = serde_json::to_vec(&letter).unwrap_or_default();
    let handle = tokio::runtime::Handle::current();
    let mut backoff = BACKOFF_START;
    while !stop.load(Ordering::Relaxed) {
        let mut record = FutureRecord::to(&settings.dead_letter_topic).payload(&payload);
        if let Some(key) = message.key() {
            record = record.key(key);
        }
        match handle.block_on(producer.send(record, DEAD_LETTER_TIMEOUT)) {
            Ok(_) => return true,
            Err((e, _)) => {
                tracing::warn!(event = "dead_letter_failed", error = %e, retry_in_ms = backoff.as_millis() as u64);
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    false
}

/// Flushes every partition whose buffer is due (all of them with `all`), and the largest while all
/// buffers together exceed the memory bound; commits each flushed partition's offset to the group.
fn flush_due(
    consumer: &BaseConsumer<ArchiveContext>,
    settings: &LoopSettings,
    all: bool,
) -> Result<(), fraudops_lake::LakeError> {
    let context = consumer.context();
    let now = Instant::now();
    let mut sinks = lock(&context.sinks);
    let mut total: usize = sinks.values().map(PartitionSink::buffered_bytes).sum();
    let mut due: Vec<(Table, i32)> = sinks
        .iter()
        .filter(|(_, s)| {
            s.due(&settings.flush, now) || (all && (s.buffered_rows() > 0 || s.has_staged()))
        })
        .map(|(k, _)| *k)
        .collect();
    if total > settings.buffer_bytes {
        let mut by_size: Vec<_> = sinks
            .iter()
            .map(|(k, s)| (s.buffered_bytes(), *k))
            .collect();
        by_size.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        for (bytes, key) in by_size {
            if total <= settings.buffer_bytes / 2 {
                break;
            }
            total -= bytes;
            due.push(key);
        }
    }
    due.sort();
    due.dedup();
    for key in due {
        let Some(sink) = sinks.get_mut(&key) else {
            continue;
        };
        let committed = context.runtime.block_on(sink.flush())?;
        context.count(&committed, sink);
        commit_offset(consumer, sink, committed.next_offset, CommitMode::Async);
    }
    Ok(())
}

/// Merges small files where a day has enough; a failure is logged and retried at the next check.
fn compact_all(context: &ArchiveContext, policy: &CompactionPolicy) {
    let mut sinks = lock(&context.sinks);
    for sink in sinks.values_mut() {
        let outcome = context.runtime.block_on(sink.compact(policy));
        let (topic, partition) = (sink.topic(), sink.partition());
        match outcome {
            Ok(committed) => {
                if committed.replaced > 0 {
                    tracing::info!(
                        event = "lake_compacted",
                        topic,
                        partition,
                        merged = committed.replaced,
                        into = committed.written.len()
                    );
                }
                context.count(&committed, sink);
            }
            Err(e) => {
                context.metrics.write_failed();
                tracing::warn!(event = "lake_compaction_failed", topic, partition, error = %e);
            }
        }
    }
}
