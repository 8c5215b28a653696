//! Consumer lag and queue length of a group, read from the broker (committed offsets and high
//! watermarks) rather than from the consumer's memory: the number is what a restarted worker would face,
//! and any process can report it, including the attack while the workers are down.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaArgs;
use crate::telemetry::KafkaMetrics;

/// How long one broker query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// One partition's backlog for the group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionLag {
    /// Partition number.
    pub partition: i32,
    /// Offset the next produced message will get.
    pub high_watermark: i64,
    /// The group's committed offset (the next message it will read); `None` if it never committed.
    pub committed: Option<i64>,
    /// Messages not yet committed by the group.
    pub lag: i64,
}

/// The backlog of a group on a topic, partition by partition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupLag {
    /// Every partition of the topic.
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// Messages waiting for the group in the whole topic: `kafka_queue_length`.
    pub fn total(&self) -> i64 {
        self.partitions.iter().map(|p| p.lag).sum()
    }
}

/// A client that asks the broker about a group's offsets without joining the group.
pub struct LagProbe {
    consumer: BaseConsumer,
    group: String,
    topic: String,
}

impl LagProbe {
    /// A probe for `group` on `kafka.topic`.
    pub fn new(kafka: &KafkaArgs, group: &str) -> Result<Self, KafkaError> {
        let consumer: BaseConsumer = kafka
            .client_config("fraudops-lag-probe")
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()?;
        Ok(Self {
            consumer,
            group: group.to_owned(),
            topic: kafka.topic.clone(),
        })
    }

    /// The group's lag on every partition of the topic. A partition the group never committed counts
    /// from its low watermark (the worker starts at the earliest offset).
    ///
    /// Exact on Kafka. tansu 0.6 reports a high watermark short by the last batch's records but one, so
    /// there the lag can read up to that many messages low (and 0 a moment before the last batch is done).
    pub fn measure(&self) -> Result<GroupLag, KafkaError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(&self.topic), QUERY_TIMEOUT)?;
        let mut partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == self.topic)
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        partitions.sort_unstable();
        let mut tpl = TopicPartitionList::new();
        for &p in &partitions {
            tpl.add_partition(&self.topic, p);
        }
        let committed = self.consumer.committed_offsets(tpl, QUERY_TIMEOUT)?;
        let mut out = Vec::with_capacity(partitions.len());
        for p in partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p, QUERY_TIMEOUT)?;
            let committed =
                committed
                    .find_partition(&self.topic, p)
                    .and_then(|e| match e.offset() {
                        Offset::Offset(o) if o >= 0 => Some(o),
                        _ => None,
                    });
            let from = committed.unwrap_or(low).max(low);
            out.push(PartitionLag {
                partition: p,
                high_watermark: high,
                committed,
                lag: (high - from).max(0),
            });
        }
        Ok(GroupLag { partitions: out })
    }

    /// The group this probe reports on.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The topic this probe reports on.
    pub fn topic(&self) -> &str {
        &self.topic
    }
}

/// Which partitions' lag a process reports: a worker reports only the partitions assigned to it (so the
/// per-partition series summed over workers is the group's lag), the attack reports all of them.
pub type OwnedPartitions = Box<dyn Fn() -> Option<HashSet<i32>> + Send>;

/// Refreshes `kafka_consumer_lag` and `kafka_queue_length` every `interval` on a thread of its own (the
/// queries block) until `stop` is set.
pub fn spawn_reporter(
    probe: LagProbe,
    metrics: KafkaMetrics,
    interval: Duration,
    owned: OwnedPartitions,
    stop: Arc<AtomicBool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("lag-reporter".into())
        .spawn(move || {
            let mut reported: HashSet<i32> = HashSet::new();
            while !stop.load(Ordering::Relaxed) {
                match probe.measure() {
                    Ok(lag) => {
                        metrics.set_queue_length(probe.group(), probe.topic(), lag.total());
                        let owned = owned();
                        let mut now = HashSet::new();
                        for p in &lag.partitions {
                            if owned.as_ref().is_none_or(|o| o.contains(&p.partition)) {
                                metrics.set_lag(probe.group(), probe.topic(), p.partition, p.lag);
                                now.insert(p.partition);
                            }
                        }
                        for gone in reported.difference(&now) {
                            metrics.forget_lag(probe.group(), probe.topic(), *gone);
                        }
                        reported = now;
                    }
                    Err(e) => tracing::warn!(event = "lag_query_failed", error = %e),
                }
                sleep_unless_stopped(interval, &stop);
            }
        })
}

/// Sleeps `total` in short steps so a stop request is seen within 100 ms.
fn sleep_unless_stopped(total: Duration, stop: &AtomicBool) {
    let step = Duration::from_millis(100);
    let mut left = total;
    while !left.is_zero() && !stop.load(Ordering::Relaxed) {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}
