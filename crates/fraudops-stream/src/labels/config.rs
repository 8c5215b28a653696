//! Everything `fraudops labels` can be told; each option is also an environment variable, and the names
//! match deploy/k8s/base (KAFKA_BOOTSTRAP_SERVERS, LABELS_TOPIC, LABELS_GROUP, FEATURE_STORE_URL,
//! METRICS_PORT=9102, REPLICA_ID).

use fraudops_store::StoreArgs;

use crate::config::{DEFAULT_LABELS_TOPIC, KafkaArgs};

/// Options of `fraudops labels`.
#[derive(Debug, Clone, clap::Args)]
pub struct LabelsConfig {
    /// Broker (its `--topic` is the transactions' and is not read here; see `--labels-topic`).
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic of the labels (confirmed outcomes, keyed by terminal id).
    #[arg(long, env = "LABELS_TOPIC", default_value = DEFAULT_LABELS_TOPIC)]
    pub labels_topic: String,
    /// Consumer group: label consumers with the same group share the topic's partitions (never the
    /// stream worker's group).
    #[arg(long, env = "LABELS_GROUP", default_value = "fraudops-labels")]
    pub group: String,
    /// The feature store the labels are applied to (required).
    #[command(flatten)]
    pub store: StoreArgs,
    /// Port of `/metrics` (9100 is the stream worker's, 9101 the attack's).
    #[arg(long, env = "METRICS_PORT", default_value_t = 9102)]
    pub metrics_port: u16,
    /// Labels applied in one store call at most (the messages ready when a batch starts, up to this).
    #[arg(long, env = "LABELS_BATCH_SIZE", default_value_t = 500)]
    pub batch_size: usize,
    /// Online evaluation: event-time days of labelled transactions the metrics are computed over.
    #[arg(long, env = "EVAL_WINDOW_DAYS", default_value_t = 7)]
    pub eval_window_days: u32,
    /// Online evaluation: labelled samples kept at most (about 50 bytes each); past it the oldest days
    /// of the window are dropped.
    #[arg(long, env = "EVAL_MAX_SAMPLES", default_value_t = 1_000_000)]
    pub eval_max_samples: usize,
    /// Online evaluation: how often the metrics are recomputed when labels arrived (a sort of the window).
    #[arg(long, env = "EVAL_INTERVAL", default_value = "10s", value_parser = crate::phases::parse_duration)]
    pub eval_interval: std::time::Duration,
    /// Identity in the Kafka client id and the logs; the pod name in Kubernetes.
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
}

impl LabelsConfig {
    /// The replica id: explicit, else the host name (the pod name in Kubernetes), else `labels`.
    pub fn resolved_replica_id(&self) -> String {
        crate::config::replica_id(self.replica_id.as_deref(), "labels")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: LabelsConfig,
    }

    #[test]
    fn defaults_match_the_deployment() {
        let c = Cli::try_parse_from(["labels", "--feature-store", "redis://r:6379/0"])
            .unwrap()
            .config;
        assert_eq!(
            c.metrics_port, 9102,
            "deploy/k8s/base/labels-deployment.yaml scrapes 9102"
        );
        assert_eq!(c.labels_topic, "fraud-labels");
        assert_eq!(c.group, "fraudops-labels");
        assert_eq!(c.store.url.as_deref(), Some("redis://r:6379/0"));
        assert_eq!(c.kafka.partitions, 12, "deploy/k8s/base/kafka-topics.yaml");
        assert_eq!(c.eval_window_days, 7, "the label delay is at most 7 days");
    }
}
