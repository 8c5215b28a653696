//! The local attack drill (SPEC §7.1): the mission's story — 4 replicas, the attack, the
//! HPA taking them to 6, the administrator told when 6 are not enough — reproduced on one machine from the
//! files that are deployed.
//!
//! * `manifest` — the Deployment, ConfigMap and HPA from the rendered kustomize output;
//! * `hpa` — the Kubernetes HPA algorithm (utilisation of requests, tolerance, not-ready and missing
//!   pods, max over metrics, stabilisation windows, policies, min/max);
//! * `cgroup` — one cgroup per replica with a CFS quota equal to its CPU limit (v1 or v2), usage and
//!   throttling read back; accounting fallback, loudly;
//! * `cluster` — the Deployment: replica processes, readiness, termination, the
//!   HPA controller loop and its `scaling_event`s;
//! * `balancer` — the Service/ingress: round robin over ready replicas;
//! * `exporter` — stand-in kube-state-metrics and cAdvisor series, so the deployed
//!   `recording.cluster.yaml` runs unchanged;
//! * `rules` — the deployed rule files with `for:` time-scaled (nothing else);
//! * `monitoring` — real Prometheus and Alertmanager on the deployed configuration;
//! * `control` — the webhook sink (the administrator) and the exporters' HTTP endpoints;
//! * `process` — children by PID: process groups, SIGTERM then SIGKILL, parent-death signal;
//! * `report` — `series.csv`, `replicas.csv`, `chart.svg`;
//! * `capacity` — the CPU cost per prediction fitted from the replicas' cgroups, and the attack rates
//!   at which an overlay crosses the HPA target and the admin alert's line;
//! * `metrics_server` — what the HPA reads of each pod (CPU over a window, memory);
//! * `plan` — the run resolved up front; `components` — start and stop everything; `sampler` — one sample;
//! * `verdict` — the pass/fail rules, a pure function; `summary` — `summary.json` and `summary.md`;
//!   `conclude` — the verdict and the report files;
//! * `run` — the drill from start to report; `config` — its options.
//!
//! Modules are private: the public API is the re-exports below (options, entry point, what it reports).
//!
//! Architecture invariant: the drill reads `deploy/` and never writes it; it knows no Kafka or model
//! internals — the broker, the worker, the attack and the replicas are the project's own binaries, run as
//! processes and observed through their metrics, exactly as in the cluster.

mod balancer;
mod capacity;
mod cgroup;
mod cluster;
mod components;
mod conclude;
mod config;
mod control;
mod error;
mod exporter;
mod hpa;
mod manifest;
mod metrics_server;
mod monitoring;
mod plan;
mod process;
mod report;
mod rules;
mod run;
mod sampler;
mod summary;
#[cfg(test)]
mod test_support;
mod verdict;

// The API the CLI uses: the options, the entry point and what it reports. Everything else is private, so
// rustc reports what nothing calls.
pub use capacity::{Capacity, CpuCost, OverlayCapacity};
pub use cgroup::Mechanism;
pub use cluster::ScalingEvent;
pub use config::{DrillArgs, ScaleDown};
pub use control::Notification;
pub use error::DrillError;
pub use hpa::{ControllerSettings, HpaSpec};
pub use monitoring::AlertState;
pub use report::Sample;
pub use run::{Progress, run};
pub use summary::{Check, DrillOutcome, ReplicaTimes, Summary};
