//! Kafka for fraudops (SPEC §5): the escalating attack producer, the stream worker and the label
//! consumer.
//!
//! * `config` — how to reach the broker and which topics to use (`KAFKA_BOOTSTRAP_SERVERS`, `KAFKA_TOPIC`);
//! * `admin` — creates the topics when they are missing;
//! * `api_client` — the HTTP client of the API's `/predict` (attack `--http`, worker `--api-url`);
//! * `message` — the one parse of an event (the API's validation, so a dead-letter reason reads like
//!   the API's 4xx body) and the API request built from it; the JSON on the topics (transaction events,
//!   predictions, dead letters) is `fraudops-wire`'s;
//! * `telemetry` — the SPEC §4.1 Kafka metric names, written once, and the `/metrics` listener;
//! * `commit` — how the consumers log librdkafka's commits;
//! * `lag` — consumer lag and queue length of a group, read from the broker;
//! * `phases` — the attack's `rate:duration` phases;
//! * `source` — the events an attack sends: the simulator's endless stream or a looping file replay;
//! * [`attack`] — open-model pacing into Kafka or straight into the API, per-phase results, closed loop
//!   on an Alertmanager alert, each transaction's label to `fraud-labels` after the label delay;
//! * [`worker`] — consumer group → online features → score (HTTP or in-process) → predictions, with
//!   offsets committed only after the prediction is acknowledged;
//! * [`labels`] — consumer group of `fraud-labels` → the feature store's terminal risk, offsets committed
//!   only after the labels are applied;
//! * [`direct`] — a file replayed straight into the API without history, labels on `fraud-labels` after
//!   their delay (what `fraudops eval-online` measures the online path with);
//! * [`archive`] — consumer group of all three topics → the transaction lake (Parquet on object storage),
//!   exactly once through the lake's ledger; and a file replayed once into the topics;
//! * `topic` — reading a topic back to its end (tests, benchmarks, operators).
//!
//! The entry points are public namespaces, `attack`, `worker` and `labels` (each with its config and
//! `run`); the other modules are private behind the re-exports below.
//!
//! Architecture invariant: no code here draws progress bars or parses command lines beyond the clap
//! config structs; the `fraudops` binary does that. The API's wire types and the topics' JSON come from
//! `fraudops-wire` and are never redefined here; this crate does not link the API server.

mod admin;
mod api_client;
pub mod archive;
pub mod attack;
mod commit;
mod config;
pub mod direct;
mod error;
pub mod labels;
mod lag;
mod message;
mod phases;
mod source;
mod telemetry;
mod topic;
pub mod worker;

pub use admin::ensure_topics;
pub use config::{KafkaArgs, KafkaSecurity};
pub use error::StreamError;
pub use lag::LagProbe;
pub use topic::{Record, produce_all, read_to_end};
