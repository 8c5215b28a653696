//! The lake archive (`fraudops archive`): a consumer group that writes `transactions-input`,
//! `fraud-predictions` and `fraud-labels` into the transaction lake exactly once.
//!
//! * `config` — options (each an env var);
//! * `run` — the consumer loop: a librdkafka consumer on a thread of its own, one
//!   [`fraudops_lake::PartitionSink`] per assigned partition, recovered from the lake's ledger on
//!   assignment (its offset is where reading resumes), flushed by rows, bytes and age, Kafka offsets
//!   committed after the lake's;
//! * `replay` — a transaction file and all its labels produced to the topics once (what
//!   `scripts/eval-lake.sh` archives).

mod config;
mod replay;
mod run;

pub use config::ArchiveConfig;
pub use replay::{ReplaySummary, replay_file};
pub use run::{ArchiveSummary, run};
