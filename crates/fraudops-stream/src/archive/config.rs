//! `fraudops archive`'s options.

use std::time::Duration;

use crate::config::{
    DEFAULT_DEAD_LETTER_TOPIC, DEFAULT_LABELS_TOPIC, DEFAULT_OUTPUT_TOPIC, KafkaArgs,
};
use crate::phases::parse_duration;

/// Where the archive reads, where it writes, and when a buffer becomes a file.
#[derive(Debug, Clone, clap::Args)]
pub struct ArchiveConfig {
    /// Broker and the transactions topic (`KAFKA_TOPIC`).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// The predictions topic.
    #[arg(long, env = "KAFKA_OUTPUT_TOPIC", default_value = DEFAULT_OUTPUT_TOPIC)]
    pub predictions_topic: String,
    /// The labels topic.
    #[arg(long, env = "LABELS_TOPIC", default_value = DEFAULT_LABELS_TOPIC)]
    pub labels_topic: String,
    /// Where records that cannot be archived go.
    #[arg(long, env = "KAFKA_DEAD_LETTER_TOPIC", default_value = DEFAULT_DEAD_LETTER_TOPIC)]
    pub dead_letter_topic: String,
    /// The consumer group.
    #[arg(long, env = "ARCHIVE_GROUP", default_value = "fraudops-archive")]
    pub group: String,
    /// The lake: a directory, `file:///DIR`, or `s3://BUCKET/PREFIX` (credentials and endpoint from
    /// `AWS_*`).
    #[arg(long, env = "LAKE_URL", default_value = "lake")]
    pub lake: String,
    /// Flush a partition's buffer at this many rows.
    #[arg(long, env = "LAKE_FLUSH_ROWS", default_value_t = 1_000_000)]
    pub flush_rows: usize,
    /// Flush a partition's buffer at this many (approximate) bytes.
    #[arg(long, env = "LAKE_FLUSH_BYTES", default_value_t = 64 << 20)]
    pub flush_bytes: usize,
    /// Flush a partition's buffer when its oldest record is this old.
    #[arg(long, env = "LAKE_FLUSH_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub flush_interval: Duration,
    /// All partitions' buffers together: above this, the largest is flushed early (bounds memory).
    #[arg(long, env = "LAKE_BUFFER_BYTES", default_value_t = 256 << 20)]
    pub buffer_bytes: usize,
    /// Merge a day's small files of a partition once there are this many (0: never).
    #[arg(long, env = "LAKE_COMPACT_MIN_FILES", default_value_t = 8)]
    pub compact_min_files: usize,
    /// Files below this size are small.
    #[arg(long, env = "LAKE_SMALL_FILE_BYTES", default_value_t = 32 << 20)]
    pub small_file_bytes: u64,
    /// Port of `/metrics`.
    #[arg(long, env = "METRICS_PORT", default_value_t = 9103)]
    pub metrics_port: u16,
    /// How often the group's lag is read from the broker.
    #[arg(long, env = "ARCHIVE_LAG_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub lag_interval: Duration,
    /// Archive identity in dead letters and the Kafka client id; the pod name in Kubernetes.
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
}

impl ArchiveConfig {
    /// The replica id: explicit, else the host name, else `archive`.
    pub fn resolved_replica_id(&self) -> String {
        crate::config::replica_id(self.replica_id.as_deref(), "archive")
    }

    /// The topics and the table each feeds.
    pub fn topics(&self) -> [(&str, fraudops_lake::Table); 3] {
        use fraudops_lake::Table;
        [
            (self.kafka.topic.as_str(), Table::Transactions),
            (self.predictions_topic.as_str(), Table::Predictions),
            (self.labels_topic.as_str(), Table::Labels),
        ]
    }
}
