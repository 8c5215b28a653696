//! The local attack drill (SPEC §7.1; issues 7 and 9): the mission's story — 4 replicas, the attack, the
//! HPA taking them to 6, the administrator told when 6 are not enough — reproduced on one machine from the
//! files that are deployed.
//!
//! * [`manifest`] — the Deployment, ConfigMap and HPA from the rendered kustomize output;
//! * [`hpa`] — the Kubernetes HPA algorithm (utilisation of requests, tolerance, not-ready and missing
//!   pods, max over metrics, stabilisation windows, policies, min/max);
//! * [`cgroup`] — one cgroup per replica with a CFS quota equal to its CPU limit (v1 or v2), usage and
//!   throttling read back; accounting fallback, loudly;
//! * [`cluster`] — the Deployment: replica processes, readiness, termination, metrics-server window, the
//!   HPA controller loop and its `scaling_event`s;
//! * [`balancer`] — the Service/ingress: round robin over ready replicas;
//! * [`exporter`] — stand-in kube-state-metrics and cAdvisor series, so the deployed
//!   `recording.cluster.yaml` runs unchanged;
//! * [`rules`] — the deployed rule files with `for:` time-scaled (nothing else);
//! * [`monitoring`] — real Prometheus and Alertmanager on the deployed configuration;
//! * [`control`] — the webhook sink (the administrator) and the exporters' HTTP endpoints;
//! * [`process`] — children by PID: process groups, SIGTERM then SIGKILL, parent-death signal;
//! * [`report`] — `series.csv`, `replicas.csv`, `chart.svg`;
//! * [`capacity`] — the CPU cost per prediction fitted from the replicas' cgroups, and the attack rates
//!   at which an overlay crosses the HPA target and the admin alert's line;
//! * [`run`] — the drill from start to report; [`config`] — its options.
//!
//! Architecture invariant: the drill reads `deploy/` and never writes it; it knows no Kafka or model
//! internals — the broker, the worker, the attack and the replicas are the project's own binaries, run as
//! processes and observed through their metrics, exactly as in the cluster.

pub mod balancer;
pub mod capacity;
pub mod cgroup;
pub mod cluster;
mod components;
mod conclude;
pub mod config;
pub mod control;
pub mod error;
pub mod exporter;
pub mod hpa;
pub mod manifest;
pub mod monitoring;
mod plan;
pub mod process;
pub mod report;
pub mod rules;
pub mod run;
mod sampler;
pub mod summary;
pub mod verdict;

pub use config::DrillArgs;
pub use error::DrillError;
pub use run::{Progress, run};
pub use summary::{DrillOutcome, Summary};
