//! Reading a topic back to its end and writing raw messages: what tests, benchmarks and an operator
//! checking a dead-letter topic need, without a consumer group (nothing is committed).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::config::KafkaArgs;
use crate::error::StreamError;

/// How long one metadata or watermark query may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// One message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Partition.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// Key bytes, if any.
    pub key: Option<Vec<u8>>,
    /// Payload bytes (empty for a null payload).
    pub payload: Vec<u8>,
}

/// After the high watermarks are reached, reading goes on until the topic has been quiet this long.
const SETTLE: Duration = Duration::from_millis(300);

/// Every message of `topic` (at least all written before the call), sorted by partition and offset.
/// Fails if they cannot all be read within `timeout`.
///
/// The high watermarks are only a lower bound: tansu 0.6 reports a partition's high watermark as its last
/// batch's base offset + 1, short of the batch's other records. So reading goes on past them until the topic
/// has been quiet for a moment.
pub fn read_to_end(
    bootstrap_servers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<Record>, StreamError> {
    let kafka = KafkaArgs::local(bootstrap_servers);
    let consumer: BaseConsumer = kafka
        .client_config("fraudops-topic-reader")
        .set("group.id", "fraudops-topic-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()?;
    let metadata = consumer.fetch_metadata(Some(topic), QUERY_TIMEOUT)?;
    let partitions: Vec<i32> = metadata
        .topics()
        .iter()
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    let mut remaining: HashMap<i32, i64> = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, QUERY_TIMEOUT)?;
        if high > low {
            remaining.insert(p, high);
        }
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    let mut out = Vec::new();
    if tpl.count() == 0 {
        return Ok(out);
    }
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut last_message = Instant::now();
    while !remaining.is_empty() || last_message.elapsed() < SETTLE {
        if Instant::now() > deadline {
            return Err(StreamError::Config(format!(
                "reading {topic}: {} partitions not read to their end within {timeout:?}",
                remaining.len()
            )));
        }
        let Some(message) = consumer.poll(Duration::from_millis(50)) else {
            continue;
        };
        let message = message?;
        last_message = Instant::now();
        let p = message.partition();
        out.push(Record {
            partition: p,
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        });
        if remaining
            .get(&p)
            .is_some_and(|&high| message.offset() + 1 >= high)
        {
            remaining.remove(&p);
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    Ok(out)
}

/// Writes `(key, payload)` messages to `topic` and waits until the broker acknowledged every one.
pub async fn produce_all(
    bootstrap_servers: &str,
    topic: &str,
    messages: &[(Option<&[u8]>, &[u8])],
) -> Result<(), StreamError> {
    let producer: FutureProducer = KafkaArgs::local(bootstrap_servers)
        .client_config("fraudops-topic-writer")
        .create()?;
    for (key, payload) in messages {
        let mut record = FutureRecord::to(topic).payload(*payload);
        if let Some(key) = key {
            record = record.key(*key);
        }
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)?;
    }
    Ok(())
}
