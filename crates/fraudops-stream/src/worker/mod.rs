//! `fraudops stream`: the stream worker of SPEC §5.
//!
//! A consumer group reads `transactions-input`; each event is parsed (the API's validation), its windows
//! read from and recorded in the shared feature store in arrival order (`features`), then it is scored over HTTP or
//! in-process while the next events are read (up to `--max-in-flight` events, `--concurrency` API calls).
//! The prediction is produced to `fraud-predictions`; unparsable events go to the dead-letter topic with
//! the reason. An offset is stored for commit only when every event before it in its partition has its
//! prediction (or dead letter) acknowledged by the broker: at-least-once, a crash never loses an event, it
//! only repeats some.
//!
//! * [`config`] — the options; [`offsets`] — which offsets may be committed;
//! * [`scorer`] — HTTP with retries, or the model in-process; [`run`] — the loop and graceful shutdown.
//!
//! Architecture invariant: nothing here commits an offset directly; only a completed [`offsets::Ticket`]
//! moves the committable offset, and librdkafka commits what was stored.

pub mod config;
mod features;
pub mod offsets;
mod run;
pub mod scorer;

pub use config::WorkerConfig;
pub use run::{WorkerSummary, run};
