//! `fraudops labels`: the label consumer of SPEC §5. Confirmed outcomes arrive on `fraud-labels` (a
//! chargeback, or a confirmation that a transaction was genuine), after the label delay; this consumer
//! group applies them to the feature store's terminal-risk state, the only place terminal risk comes from
//! (no scored event reads a label from itself).
//!
//! Why a subcommand of its own rather than a part of the stream worker: labels come at a fraction of the
//! transactions' rate and must be applied even when no worker runs (a payment flow calling
//! `POST /predict` directly has no worker at all); they scale, restart and lag independently, so a label
//! backlog or a store outage never slows scoring, and a worker crash never delays labels.
//!
//! Guarantees:
//! * **at least once** — messages are read in batches (up to `--batch-size` that are ready), applied with
//!   one [`fraudops_store::FeatureStore::apply_labels`] call, and only then is each partition's offset
//!   past the batch stored for commit. While the store fails the batch is retried with backoff (counted in
//!   `fraudops_labels_store_errors_total`) and nothing is committed; a crash re-reads what was not
//!   committed. Applying is idempotent (a label sets the transaction's outcome), so a repeat changes
//!   nothing, and a second label for the same transaction (a reversed chargeback) replaces the first;
//! * **in order per terminal** — labels are keyed by terminal id, so one terminal's labels are on one
//!   partition, read and applied in order;
//! * **a poison message never blocks** — a payload that is not a label (bad JSON, a field missing, a date
//!   that is not one) is logged, counted in `fraudops_labels_invalid_total` and skipped, and its offset is
//!   committed with the batch: a label that can never be applied must not stop every label behind it.
//!
//! * **online evaluation** — the store returns each label's recorded score (the scorers write it,
//!   `fraudops_store::ScoreRecorder`); the joined samples of the last `--eval-window-days` of event time
//!   give `ml_model_online_*` (ROC AUC, AP, Card Precision@100, precision and recall at the serving
//!   threshold) on `/metrics`, recomputed every `--eval-interval`; labels without a score are counted
//!   apart (`evaluation`). One replica sees every partition, so its metrics are the whole window's
//!   (deploy/k8s/base/labels-deployment.yaml runs one; see docs/model-monitoring.md).
//!
//! * [`config`] — the options; [`run`](run()) — the loop and graceful shutdown (SIGTERM: stop reading,
//!   finish the batch in hand, commit).

pub mod config;
pub(crate) mod evaluation;
mod run;

pub use config::LabelsConfig;
pub use run::{LabelsSummary, run};
