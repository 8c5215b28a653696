//! Everything `fraudops stream` can be told; each option is also an environment variable, and the names
//! match deploy/k8s/base (KAFKA_BOOTSTRAP_SERVERS, KAFKA_TOPIC, METRICS_PORT=9100, REPLICA_ID).

use std::path::PathBuf;
use std::time::Duration;

use crate::config::{DEFAULT_DEAD_LETTER_TOPIC, DEFAULT_OUTPUT_TOPIC, KafkaArgs};
use crate::phases::parse_duration;

/// Options of `fraudops stream`.
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerConfig {
    /// Broker and input topic.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Topic the predictions are written to.
    #[arg(long, env = "KAFKA_OUTPUT_TOPIC", default_value = DEFAULT_OUTPUT_TOPIC)]
    pub output_topic: String,
    /// Topic unparsable events are written to, with the reason.
    #[arg(long, env = "KAFKA_DEAD_LETTER_TOPIC", default_value = DEFAULT_DEAD_LETTER_TOPIC)]
    pub dead_letter_topic: String,
    /// Partitions of the dead-letter topic when it has to be created (it is low-traffic).
    #[arg(long, env = "KAFKA_DEAD_LETTER_PARTITIONS", default_value_t = 3)]
    pub dead_letter_partitions: i32,
    /// Consumer group: workers with the same group share the input's partitions.
    #[arg(long, env = "KAFKA_GROUP_ID", default_value = "fraudops-stream")]
    pub group: String,
    /// Score through the API at this base URL (`POST <URL>/predict`); the load that drives its autoscaling.
    #[arg(long, env = "API_URL", conflicts_with = "in_process")]
    pub api_url: Option<String>,
    /// The worker's API key (an API with API_KEYS_FILE requires one; the worker's needs the scopes
    /// `record` and `history`: it sends the store's windows as history).
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Score with the model inside the worker instead of calling the API.
    #[arg(long, env = "STREAM_IN_PROCESS")]
    pub in_process: bool,
    /// In-process model artifact (`model.json`); the embedded default model when unset or empty.
    #[arg(long, env = "MODEL_PATH")]
    pub model_path: Option<PathBuf>,
    /// API calls at once (HTTP mode), over as many keep-alive connections.
    #[arg(long, env = "STREAM_CONCURRENCY", default_value_t = 64)]
    pub concurrency: usize,
    /// Events read but not yet done (scored and acknowledged) at most; the consumer waits beyond it. Bounds
    /// memory and how many events a crash makes the group process again.
    #[arg(long, env = "STREAM_MAX_IN_FLIGHT", default_value_t = 5000)]
    pub max_in_flight: usize,
    /// Timeout of one API call.
    #[arg(long, env = "STREAM_HTTP_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub http_timeout: Duration,
    /// Attempts per event before it goes to the dead-letter topic; 0 retries until the API answers
    /// (an outage then grows the lag instead of losing or dead-lettering events).
    #[arg(long, env = "STREAM_MAX_ATTEMPTS", default_value_t = 0)]
    pub max_attempts: u32,
    /// Port of `/metrics`.
    #[arg(long, env = "METRICS_PORT", default_value_t = 9100)]
    pub metrics_port: u16,
    /// How often lag and queue length are read from the broker.
    #[arg(long, env = "STREAM_LAG_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub lag_interval: Duration,
    /// How long the group waits for a silent worker before giving its partitions to others (a crashed
    /// worker's events resume after at most this).
    #[arg(long, env = "KAFKA_SESSION_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub session_timeout: Duration,
    /// How often offsets of finished events are committed.
    #[arg(long, env = "KAFKA_COMMIT_INTERVAL", default_value = "1s", value_parser = parse_duration)]
    pub commit_interval: Duration,
    /// On SIGTERM, how long events in flight get to finish before the worker exits anyway (their offsets
    /// are then not committed; they are processed again after the restart).
    #[arg(long, env = "SHUTDOWN_GRACE_SECONDS", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
    /// Worker identity in predictions, dead letters and the Kafka client id; the pod name in Kubernetes.
    #[arg(long, env = "REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Stop (committing) once this many events are done; for benchmarks and one-off replays.
    #[arg(long)]
    pub stop_after: Option<u64>,
    /// The shared online feature store: each event's windows are read and recorded there (set it in
    /// production: it is what makes N workers exact). Unset: events are sent without history.
    #[command(flatten)]
    pub feature_store: fraudops_store::StoreArgs,
    /// Longest a batch of events waits for a failing feature store (retried with backoff, not committed:
    /// the lag grows and HighKafkaQueueLength fires) before it is scored without history
    /// (`feature_source: store_unavailable`, counted in stream_scored_without_history_total). Longer than
    /// the alert's 2 minutes, so an outage is seen before scores degrade.
    #[arg(long, env = "FEATURE_STORE_MAX_WAIT", default_value = "5m",
          value_parser = fraudops_store::parse_duration)]
    pub feature_store_max_wait: Duration,
}

impl WorkerConfig {
    /// The replica id: explicit, else the host name (the pod name in Kubernetes), else `stream`.
    pub fn resolved_replica_id(&self) -> String {
        crate::config::replica_id(self.replica_id.as_deref(), "stream")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: WorkerConfig,
    }

    #[test]
    fn defaults_match_the_deployment() {
        let c = Cli::try_parse_from(["stream", "--api-url", "http://fraudops-api.fraudops.svc"])
            .unwrap()
            .config;
        assert_eq!(
            c.metrics_port, 9100,
            "deploy/k8s/base/stream-deployment.yaml scrapes 9100"
        );
        assert_eq!(c.kafka.topic, "transactions-input");
        assert_eq!(c.output_topic, "fraud-predictions");
        assert_eq!(c.dead_letter_topic, "transactions-dead-letter");
        assert_eq!(c.kafka.partitions, 12, "deploy/k8s/base/kafka-topics.yaml");
    }

    #[test]
    fn grace_accepts_the_configmaps_plain_seconds() {
        let c = Cli::try_parse_from(["stream", "--in-process", "--shutdown-grace", "20"])
            .unwrap()
            .config;
        assert_eq!(c.shutdown_grace, Duration::from_secs(20));
    }

    #[test]
    fn http_and_in_process_exclude_each_other() {
        assert!(Cli::try_parse_from(["stream", "--in-process", "--api-url", "http://x"]).is_err());
    }
}
