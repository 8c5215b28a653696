//! The retraining loop end to end, with the real `fraudops` binary and a real `mlflow server`
//! (SPEC §6, issue 5): train → MLflow run, registered version, champion gate; `serve` following
//! `models:/NAME@champion`; a registered version as an MLflow 3 model Python describes; behaviour when
//! MLflow is down; the outcome pushed to a real Pushgateway.
//!
//! Tests that need MLflow print `SKIPPED` and pass when `MLFLOW_BIN` is unset; run them with
//! `scripts/test-mlflow.sh`, which installs MLflow into a venv and refuses to let them skip.
//! Each test uses its own experiment and registered-model names, so they share one server. The
//! Pushgateway test also needs `prometheus-pushgateway` (same skip rule, `FRAUDOPS_REQUIRE_PUSHGATEWAY`).

#[path = "../common/mod.rs"]
mod common;
mod down;
mod gate;
mod pushgateway;
mod registered_model;
mod serve_follow;
mod support;
