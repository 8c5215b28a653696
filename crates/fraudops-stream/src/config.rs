//! How to reach the broker and which input topic to use: the SPEC's `KAFKA_BOOTSTRAP_SERVERS` and
//! `KAFKA_TOPIC`, shared by `attack` and `stream` so both always talk about the same topic.

use rdkafka::ClientConfig;

/// The input topic of SPEC §5 (and `KAFKA_TOPIC` in deploy/k8s/base/configmap.yaml).
pub const DEFAULT_INPUT_TOPIC: &str = "transactions-input";
/// The predictions topic of SPEC §5.
pub const DEFAULT_OUTPUT_TOPIC: &str = "fraud-predictions";
/// The dead-letter topic (deploy/k8s/base/kafka-topics.yaml).
pub const DEFAULT_DEAD_LETTER_TOPIC: &str = "transactions-dead-letter";
/// The confirmed outcomes (SPEC §5, `LABELS_TOPIC` in deploy/k8s/base/configmap.yaml): the attack writes
/// them after the label delay, `fraudops labels` applies them to the feature store.
pub const DEFAULT_LABELS_TOPIC: &str = "fraud-labels";

/// Broker and input topic options, flattened into both commands.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// Topic of the transaction events (the attack writes it, the worker reads it).
    #[arg(long, env = "KAFKA_TOPIC", default_value = DEFAULT_INPUT_TOPIC)]
    pub topic: String,
    /// Partitions of topics this command creates when they are missing (existing topics are left as they are).
    #[arg(long, env = "KAFKA_PARTITIONS", default_value_t = 12)]
    pub partitions: i32,
    /// Replication factor of topics this command creates.
    #[arg(long, env = "KAFKA_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
}

impl KafkaArgs {
    /// Local defaults with the given bootstrap servers (tests, benchmarks).
    pub fn local(bootstrap_servers: impl Into<String>) -> Self {
        Self {
            bootstrap_servers: bootstrap_servers.into(),
            topic: DEFAULT_INPUT_TOPIC.into(),
            partitions: 12,
            replication_factor: 1,
        }
    }

    /// A librdkafka configuration with the bootstrap servers and a client id; callers add their role's
    /// settings. The client id shows up in broker logs, which is how an operator tells workers apart.
    pub fn client_config(&self, client_id: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            // The broker's metadata may briefly lag a topic we just created.
            .set("topic.metadata.refresh.interval.ms", "10000");
        // librdkafka's own debug contexts (e.g. `cgrp,fetch`) for an operator chasing a broker problem.
        if let Ok(debug) = std::env::var("KAFKA_DEBUG")
            && !debug.trim().is_empty()
        {
            config.set("debug", debug.trim());
        }
        config
    }
}

/// A process's replica id: `explicit` when given, else the host name (the pod name in Kubernetes), else
/// `fallback` (the subcommand's name). Shared by the worker and the label consumer.
pub fn replica_id(explicit: Option<&str>, fallback: &str) -> String {
    explicit
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| fallback.into())
}
