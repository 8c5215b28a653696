//! Everything `fraudops attack` can be told; each option is also an environment variable.

use std::path::PathBuf;
use std::time::Duration;

use fraudops_data::EpochSeconds;

use crate::attack::labels::{LabelMode, parse_label_delay};
use crate::config::{DEFAULT_LABELS_TOPIC, KafkaArgs};
use crate::phases::{DEFAULT_PHASES, Phases, parse_duration};

/// Options of `fraudops attack`.
#[derive(Debug, Clone, clap::Args)]
pub struct AttackConfig {
    /// Broker and topic.
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Phases as `rate:duration` (msg/s : `500ms`/`30s`/`5m`/`1h`), comma-separated; `max` as the rate
    /// sends as fast as the broker takes messages.
    #[arg(long, env = "ATTACK_PHASES", default_value = DEFAULT_PHASES)]
    pub phases: Phases,
    /// Replay this transactions file (CSV, plain or gzip, any header the readers accept) in a loop instead
    /// of simulating.
    #[arg(long, env = "ATTACK_REPLAY")]
    pub replay: Option<PathBuf>,
    /// Send straight to the scoring API at this base URL (`POST <URL>/predict`) instead of Kafka.
    #[arg(long, env = "ATTACK_HTTP_URL")]
    pub http: Option<String>,
    /// The attack's API key for `--http` (an API with API_KEYS_FILE requires one).
    #[arg(long, env = "API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Closed loop: keep escalating until this Alertmanager alert is firing, then stop.
    #[arg(long, env = "ATTACK_UNTIL_ALERT", requires = "alertmanager")]
    pub until_alert: Option<String>,
    /// Alertmanager base URL for `--until-alert` (its API v2 is polled).
    #[arg(long, env = "ALERTMANAGER_URL")]
    pub alertmanager: Option<String>,
    /// After the listed phases, each further phase multiplies the rate by this (closed loop only).
    #[arg(long, env = "ATTACK_STEP", default_value_t = 2.0)]
    pub step: f64,
    /// The closed loop gives up (exit status 1) rather than escalate beyond this rate, msg/s.
    #[arg(long, env = "ATTACK_MAX_RATE", default_value_t = 100_000.0)]
    pub max_rate: f64,
    /// How often Alertmanager is asked.
    #[arg(long, env = "ATTACK_ALERT_POLL", default_value = "5s", value_parser = parse_duration)]
    pub alert_poll: Duration,
    /// Write the per-phase results as JSON to this file (read back by pipelines).
    #[arg(long, env = "ATTACK_RESULTS")]
    pub results: Option<PathBuf>,
    /// Port of `/metrics` (`kafka_messages_produced_total`, ...); 9101 so it can run beside a worker on 9100.
    #[arg(long, env = "ATTACK_METRICS_PORT", default_value_t = 9101)]
    pub metrics_port: u16,
    /// Also report `kafka_queue_length` and `kafka_consumer_lag` of this consumer group (e.g.
    /// `fraudops-stream`), so the backlog the attack builds is visible even while no worker runs.
    #[arg(long, env = "ATTACK_LAG_GROUP")]
    pub lag_group: Option<String>,
    /// How often the lag of `--lag-group` is read.
    #[arg(long, env = "ATTACK_LAG_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub lag_interval: Duration,
    /// Simulator seed (same seed, same transactions).
    #[arg(long, env = "ATTACK_SEED", default_value_t = 42)]
    pub seed: u64,
    /// Simulated customers (cards).
    #[arg(long, env = "ATTACK_CUSTOMERS", default_value_t = 5_000)]
    pub customers: usize,
    /// Simulated terminals.
    #[arg(long, env = "ATTACK_TERMINALS", default_value_t = 10_000)]
    pub terminals: usize,
    /// HTTP mode: requests in flight at most; beyond it a due request is counted as an error, not queued
    /// (open model: the attack never waits for the API).
    #[arg(long, env = "ATTACK_HTTP_MAX_IN_FLIGHT", default_value_t = 4096)]
    pub http_max_in_flight: usize,
    /// HTTP mode: per-request timeout.
    #[arg(long, env = "ATTACK_HTTP_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http_timeout: Duration,
    /// Produce each transaction's label (fraud or genuine) to `--labels-topic` after `--label-delay`:
    /// `auto` in Kafka mode only, `on` also with `--http` (labels still go to Kafka), `off` never.
    #[arg(long, env = "ATTACK_LABELS", value_enum, default_value_t = LabelMode::Auto)]
    pub labels: LabelMode,
    /// Topic of the labels (confirmed outcomes), keyed by terminal id.
    #[arg(long, env = "LABELS_TOPIC", default_value = DEFAULT_LABELS_TOPIC)]
    pub labels_topic: String,
    /// A label is produced once the attack's event-time clock (the latest transaction's `tx_datetime`)
    /// passes its transaction's time plus this: `3d`, `12h`, `90s`; at most 7d, the delay after which the
    /// terminal-risk features use labels. Labels not due when the attack ends are not sent.
    #[arg(long, env = "ATTACK_LABEL_DELAY", default_value = "3d", value_parser = parse_label_delay)]
    pub label_delay: EpochSeconds,
}
