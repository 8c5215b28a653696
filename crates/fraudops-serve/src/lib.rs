//! `fraudops serve`: the scoring API of SPEC §4.
//!
//! * the wire types and their validation (bytes → a validated transaction, or an error naming the
//!   field) are `fraudops-wire`'s, shared with the stream worker;
//! * `openapi` — the OpenAPI document: the routes' paths and the wire types' schemas;
//! * `error` — every way a request can fail (a wire validation error among them), mapped to one status
//!   and one JSON body in one place;
//! * `telemetry` — the SPEC §4.1 metric names and label values, written once;
//! * `events` — every observable event as a type whose `emit` logs and counts together;
//! * `logging` — JSON log lines, formatted by hand and written to stdout in batches;
//! * `model_store` — the served model behind an atomic pointer, its sources and the hot-swap poller;
//! * `drift` — the served model's sliding window of live scores and features, and their PSI against the
//!   reference in its artifact;
//! * `dispatch` — the service each connection runs: scoring routes straight from hyper, the rest
//!   through the axum router;
//! * `auth` — API keys with scopes (`score`, `record`, `history`) from API_KEYS_FILE, re-read on change;
//! * `protection` — load shedding, per-client quotas, the body budget and deadline (admission to the
//!   scoring routes);
//! * `queue_wait` — how long each request waited for the CPU (the signal shedding acts on);
//! * `connections` — the accept loop and the bounds on connections (count, header/idle timeout, buffer);
//! * `tracking` — the tower layer that counts the router's requests by route template;
//! * `system` — CPU (against the container limit) and memory sampling from cgroups and procfs;
//! * `routes` — the handlers; `startup` — wiring, binding, graceful shutdown.
//!
//! Modules are private; the API is the re-exports below: the configuration, the server, the model sources
//! (the CLI plugs the MLflow registry in through `RegistryFetcher`), logging and the shutdown signal.
//!
//! Architecture invariant: handlers never touch metric names or JSON field names directly; the scoring
//! path cannot fail once a transaction is validated.

mod auth;
mod config;
mod connections;
mod dispatch;
mod drift;
mod error;
mod events;
mod logging;
mod model_store;
mod openapi;
mod protection;
mod queue_wait;
mod routes;
mod startup;
mod system;
mod telemetry;
mod tracking;

pub use auth::{key_digest, keys_file_line};
pub use config::{DriftClock, ServeConfig};
pub use logging::{JsonLines, init_logging};
pub use model_store::{FetchFuture, Fetched, ModelSource, RegistryFetcher};
pub use startup::{Server, shutdown_signal};
