//! Everything that can stop an attack or a worker, in one enum so the binary can report it in one place.

use rdkafka::error::KafkaError;

/// Why an attack or a worker could not start or had to stop. Per-event problems (a poison message, a
/// failed delivery) are not errors here: they are counted, retried or dead-lettered, and the run goes on.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The broker refused or a client could not be created.
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    /// An option value that cannot work (an empty phase list, a zero rate, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A topic could not be created.
    #[error("creating topic {topic}: {reason}")]
    TopicCreation {
        /// The topic.
        topic: String,
        /// The broker's answer.
        reason: String,
    },
    /// Reading the replay file or writing results failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The replay file cannot be read as transactions.
    #[error("reading the replay file: {0}")]
    Replay(#[from] fraudops_data::reader::ReadError),
    /// The simulator configuration is unusable.
    #[error("simulator: {0}")]
    Simulator(#[from] fraudops_data::simulator::SimulatorError),
    /// The in-process model could not be loaded.
    #[error("loading the model: {0}")]
    Model(#[from] fraudops_model::ArtifactError),
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] reqwest::Error),
    /// The feature store's URL is unusable.
    #[error("feature store: {0}")]
    Store(#[from] fraudops_store::StoreError),
    /// Metrics could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The closed loop ran out of escalation without seeing the alert.
    #[error(
        "alert {alert} did not fire up to {max_rate} msg/s (raise --max-rate or check Alertmanager at {url})"
    )]
    AlertNeverFired {
        /// The awaited alert.
        alert: String,
        /// The highest rate tried.
        max_rate: f64,
        /// Where it was polled.
        url: String,
    },
}

impl StreamError {
    /// An [`StreamError::Io`] with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
