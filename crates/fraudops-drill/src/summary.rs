//! What a drill concluded: `summary.json`'s types and `summary.md`'s text.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::capacity::{self, Capacity, OverlayCapacity};
use crate::cgroup::Mechanism;
use crate::cluster::ScalingEvent;
use crate::control::Notification;
use crate::hpa::{ControllerSettings, HpaSpec};
use crate::verdict::ADMIN_ALERT;

/// One check of the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it holds.
    pub passed: bool,
    /// The evidence.
    pub detail: String,
}

/// A replica's life in seconds since the attack started.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaTimes {
    /// Pod name.
    pub pod: String,
    /// Started.
    pub started_s: f64,
    /// Became ready.
    pub ready_s: Option<f64>,
    /// Began terminating.
    pub terminating_s: Option<f64>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `passed`, `failed` or `interrupted`.
    pub verdict: String,
    /// `full`, `quick`, `full negative`, `quick negative`.
    pub mode: String,
    /// The clock factor.
    pub time_scale: f64,
    /// How CPU limits were enforced.
    pub cpu_mechanism: Mechanism,
    /// Said in words.
    pub cpu_mechanism_description: String,
    /// Where the deployed objects came from.
    pub manifest_source: String,
    /// The overlay the drill reproduced (relative to `deploy/`), or the `--manifest` file.
    pub overlay: String,
    /// Whether the replicas' CPU differed from the deployed one (a CPU factor other than 1): the drill
    /// then reproduced a deployment that does not exist.
    pub cpu_scaled: bool,
    /// The HPA object as deployed (unscaled).
    pub hpa: HpaSpec,
    /// Deployed CPU request / limit per replica, cores.
    pub deployed_cpu_request_cores: f64,
    /// Deployed CPU limit.
    pub deployed_cpu_limit_cores: f64,
    /// The drill's CPU factor.
    pub cpu_factor: f64,
    /// The drill's CPU request per replica.
    pub drill_cpu_request_cores: f64,
    /// The drill's CPU limit per replica (the CFS quota).
    pub drill_cpu_limit_cores: f64,
    /// The controller settings the drill ran (time-scaled).
    pub controller: ControllerSettings,
    /// Prometheus scrape and evaluation interval, seconds.
    pub scrape_interval_s: f64,
    /// The attack's `--phases`.
    pub phases: String,
    /// When the attack started (RFC 3339).
    pub attack_started_at: String,
    /// How long the attack and observation ran, seconds.
    pub duration_s: f64,
    /// Every scaling event.
    pub scaling_events: Vec<ScalingEvent>,
    /// Every replica.
    pub replicas: Vec<ReplicaTimes>,
    /// When the replica that made the count reach maxReplicas became ready, seconds.
    pub max_replicas_ready_s: Option<f64>,
    /// First sample with the admin alert pending.
    pub alert_pending_s: Option<f64>,
    /// First sample with the admin alert firing (time to alert).
    pub alert_firing_s: Option<f64>,
    /// When the admin webhook received the notification.
    pub notification_s: Option<f64>,
    /// Everything the admin webhook received.
    pub admin_notifications: Vec<Notification>,
    /// Everything the on-call webhook received.
    pub oncall_notifications: Vec<Notification>,
    /// The attack's own results (per-phase target and achieved rates).
    pub attack: Option<serde_json::Value>,
    /// Replicas that crashed.
    pub crashes: Vec<String>,
    /// What one prediction cost and the rates that cross the HPA target and the admin alert's line, for
    /// the overlay that ran and for production (`None` if no sample could be fitted).
    pub capacity: Option<Capacity>,
    /// The checks.
    pub checks: Vec<Check>,
}

/// The result of a drill.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// The summary (also in summary.json).
    pub summary: Summary,
    /// The report directory.
    pub report: PathBuf,
}

impl DrillOutcome {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.summary.verdict == "passed"
    }
}

pub(crate) fn fmt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1} s"))
}

/// `summary.md`: the outcome, the checks, the capacity statement and what ran, for a person.
pub(crate) fn markdown(s: &Summary, sample_every: Duration) -> String {
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# fraudops attack drill: {} ({})\n",
        s.verdict.to_uppercase(),
        s.mode
    );
    if s.cpu_mechanism == Mechanism::Accounting {
        let _ = writeln!(
            m,
            "> **WARNING: CPU WAS NOT LIMITED.** No cgroup was writable on this machine, so the replicas ran \
             without a CFS quota and only *reported* their CPU against `CPU_LIMIT_CORES`. Saturation in this \
             run says nothing about the limit. Run as root on a machine with writable cgroups.\n"
        );
    }
    if s.cpu_scaled {
        let _ = writeln!(
            m,
            "> **WARNING: CPU SCALED ×{}.** The replicas ran with {:.1}m request / {:.1}m limit, not the {:.0}m / \
             {:.0}m that `{}` deploys. This drill reproduces a deployment that does not exist; the capacity \
             statement below gives what the deployed overlay would need.\n",
            s.cpu_factor,
            s.drill_cpu_request_cores * 1000.0,
            s.drill_cpu_limit_cores * 1000.0,
            s.deployed_cpu_request_cores * 1000.0,
            s.deployed_cpu_limit_cores * 1000.0,
            s.overlay
        );
    }
    let _ = writeln!(
        m,
        "Overlay `{}`, CPU {}. Attack started {}; observed for {:.0} s. Time scale {} (1 = real time).\n",
        s.overlay,
        if s.cpu_scaled {
            format!("scaled ×{}", s.cpu_factor)
        } else {
            "as deployed (factor 1, nothing scaled)".to_owned()
        },
        s.attack_started_at,
        s.duration_s,
        s.time_scale
    );
    let _ = writeln!(m, "## Outcome\n");
    let _ = writeln!(m, "| | seconds after the attack started |\n|---|---|");
    let _ = writeln!(
        m,
        "| replica {} (maxReplicas) ready | {} |",
        s.hpa.max_replicas,
        fmt_s(s.max_replicas_ready_s)
    );
    let _ = writeln!(
        m,
        "| `{ADMIN_ALERT}` pending | {} |",
        fmt_s(s.alert_pending_s)
    );
    let _ = writeln!(
        m,
        "| `{ADMIN_ALERT}` firing (time to alert) | {} |",
        fmt_s(s.alert_firing_s)
    );
    let _ = writeln!(
        m,
        "| admin webhook notified | {} |\n",
        fmt_s(s.notification_s)
    );
    let _ = writeln!(m, "| check | result | evidence |\n|---|---|---|");
    for c in &s.checks {
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            c.name,
            if c.passed { "pass" } else { "**FAIL**" },
            c.detail.replace('|', "\\|")
        );
    }
    if let Some(c) = &s.capacity {
        let _ = writeln!(m, "\n## Capacity\n");
        let _ = writeln!(
            m,
            "Measured from the replicas' cgroups during this attack: **{:.0} µs of CPU per prediction** on top \
             of {:.1}m per idle replica (least squares over {} samples with no replica above {:.0}% of its \
             limit, {:.0}–{:.0} predictions/s per replica). The HPA scales up once the minimum replicas cross \
             their CPU target; the administrator is notified once the maximum replicas, each at that rate, \
             cross the admin alert's line for its `for:`.\n",
            c.cpu_seconds_per_request * 1e6,
            c.idle_cpu_cores * 1000.0,
            c.fit.samples,
            capacity::UNTHROTTLED_BELOW * 100.0,
            c.fit.per_replica_tps_min,
            c.fit.per_replica_tps_max
        );
        let _ = writeln!(
            m,
            "| overlay | CPU request / limit | replicas | HPA target | `hpa_scale_up_tps` | admin line | `admin_alert_tps` |\n|---|---|---|---|---|---|---|"
        );
        let row = |m: &mut String, o: &OverlayCapacity, label: &str| {
            let _ = writeln!(
                m,
                "| `{}`{label} | {:.1}m / {:.1}m | {}–{} | {:.0}% | {:.0} tx/s | {:.0}% | {:.0} tx/s |",
                o.overlay,
                o.cpu_request_cores * 1000.0,
                o.cpu_limit_cores * 1000.0,
                o.min_replicas,
                o.max_replicas,
                o.hpa_cpu_target * 100.0,
                o.hpa_scale_up_tps,
                o.admin_alert_cpu_ratio * 100.0,
                o.admin_alert_tps
            );
        };
        for o in &c.overlays {
            row(&mut m, o, "");
        }
        if s.cpu_scaled {
            let _ = writeln!(
                m,
                "| `{}` as this drill ran it (×{}) | {:.1}m / {:.1}m | | | {:.0} tx/s | | {:.0} tx/s |",
                c.overlay,
                s.cpu_factor,
                s.drill_cpu_request_cores * 1000.0,
                s.drill_cpu_limit_cores * 1000.0,
                c.hpa_scale_up_tps,
                c.admin_alert_tps
            );
        }
        let _ = writeln!(
            m,
            "\nThe cost is measured at this drill's per-replica rates; at much higher rates per replica a \
             request costs less (fewer wake-ups per request), so the production rates are lower bounds."
        );
    }
    let _ = writeln!(m, "\n## What ran\n");
    let _ = writeln!(
        m,
        "- **CPU limits: {}.** Each replica ran in its own cgroup with a CFS quota of {:.1}m CPU per {} ms period = the deployed limit {:.1}m × the drill's CPU factor {}; the HPA measured utilisation against the request {:.1}m (deployed {:.1}m × {}).",
        s.cpu_mechanism_description,
        s.drill_cpu_limit_cores * 1000.0,
        crate::cgroup::CFS_PERIOD.as_millis(),
        s.deployed_cpu_limit_cores * 1000.0,
        s.cpu_factor,
        s.drill_cpu_request_cores * 1000.0,
        s.deployed_cpu_request_cores * 1000.0,
        s.cpu_factor
    );
    let _ = writeln!(
        m,
        "- **Manifests:** `{}` — HPA `{}`: min {}, max {}, targets {}; scale-up {}; scale-down {} (deployed values; the drill ran them ×{}).",
        s.manifest_source,
        s.hpa.name,
        s.hpa.min_replicas,
        s.hpa.max_replicas,
        s.hpa
            .metrics
            .iter()
            .map(|t| format!("{} {}%", t.resource.name(), t.average_utilization))
            .collect::<Vec<_>>()
            .join(", "),
        rules(&s.hpa.behavior.scale_up),
        rules(&s.hpa.behavior.scale_down),
        s.time_scale
    );
    let _ = writeln!(
        m,
        "- **Autoscaler:** the Kubernetes HPA algorithm (fraudops-drill `hpa`), sync every {:?}, tolerance {}, CPU from the cgroups over a {:?} metrics-server window.",
        s.controller.sync_period,
        s.controller.tolerance,
        crate::metrics_server::metric_window(s.time_scale)
    );
    let _ = writeln!(
        m,
        "- **Prometheus:** the deployed `deploy/monitoring/rules/*.yaml` (recording rules unchanged; alert `for:` ×{}), scraping every {:.1} s the replicas, the stream worker, and stand-in kube-state-metrics and cAdvisor exporters fed by the drill's replicas and autoscaler.",
        s.time_scale, s.scrape_interval_s
    );
    let _ = writeln!(
        m,
        "- **Alertmanager:** `deploy/monitoring/alertmanager/alertmanager.yaml` unchanged; `secrets/admin-chat-url` and `secrets/oncall-chat-url` point at the drill's webhook sink."
    );
    let _ = writeln!(
        m,
        "- **Load:** `fraudops attack --phases {}` into Kafka (tansu), `fraudops stream` calling the API over HTTP through a round-robin load balancer over the ready replicas.\n",
        s.phases
    );
    if let Some(phases) = s
        .attack
        .as_ref()
        .and_then(|a| a.get("phases"))
        .and_then(|p| p.as_array())
    {
        let _ = writeln!(
            m,
            "## Attack phases\n\n| phase | target tx/s | achieved tx/s | sent | errors | seconds |\n|---|---|---|---|---|---|"
        );
        for p in phases {
            let g = |k: &str| {
                p.get(k).map_or("–".into(), |v| match v.as_f64() {
                    Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
                    _ => v.to_string(),
                })
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                g("phase"),
                g("target_rate"),
                g("achieved_rate"),
                g("sent"),
                g("errors"),
                g("elapsed_s")
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(
        m,
        "## Scaling events\n\n| t (s) | from | to | reason | CPU % of request | memory % of request | limited by |\n|---|---|---|---|---|---|---|"
    );
    for e in &s.scaling_events {
        let pct = |r: &str| {
            e.metrics
                .iter()
                .find(|x| x.resource.name() == r)
                .map_or("–".into(), |x| {
                    format!("{} (target {})", x.utilization_percent, x.target_percent)
                })
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            fmt_s(e.t_seconds).trim_end_matches(" s"),
            e.from,
            e.to,
            e.reason,
            pct("cpu"),
            pct("memory"),
            e.condition
        );
    }
    let _ = writeln!(
        m,
        "\n## Replicas\n\n| pod | started (s) | ready (s) | terminating (s) |\n|---|---|---|---|"
    );
    for r in &s.replicas {
        let _ = writeln!(
            m,
            "| {} | {:.1} | {} | {} |",
            r.pod,
            r.started_s,
            fmt_s(r.ready_s).trim_end_matches(" s"),
            fmt_s(r.terminating_s).trim_end_matches(" s")
        );
    }
    let _ = writeln!(m, "\n## The administrator's notification\n");
    match s.admin_notifications.first() {
        Some(n) => {
            let _ = writeln!(
                m,
                "Received by the admin webhook at t = {} ({}):\n\n```json\n{}\n```",
                fmt_s(n.t_seconds),
                n.received_at,
                serde_json::to_string_pretty(&n.body).unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(m, "None received.");
        }
    }
    if !s.oncall_notifications.is_empty() {
        let _ = writeln!(
            m,
            "\nOn-call chat received {} notification(s): {}.",
            s.oncall_notifications.len(),
            s.oncall_notifications
                .iter()
                .map(|n| format!("`{}`", n.title().lines().next().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        m,
        "\n## Files\n\n- `chart.svg` — load, p95 latency, CPU per replica against its limit, replicas; the admin alert's pending/firing periods shaded\n- `series.csv` — one row per sample (every {:.1} s); `replicas.csv` — CPU per replica per sample\n- `summary.json` — this summary, machine-readable; `notifications.json`, `admin-notification.json`; `attack-results.json`\n- `config/` — the Prometheus configuration and rule files as loaded; `logs/` — every component's log",
        sample_every.as_secs_f64()
    );
    m
}

/// `<policies> per <period> after a <window> window`.
fn rules(r: &crate::hpa::ScalingRules) -> String {
    format!(
        "{} per {:?} after a {:?} window",
        policies(r),
        r.policies.first().map(|p| p.period).unwrap_or_default(),
        r.stabilization_window
    )
}

fn policies(r: &crate::hpa::ScalingRules) -> String {
    r.policies
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.value,
                match p.kind {
                    crate::hpa::PolicyKind::Pods => "pod(s)",
                    crate::hpa::PolicyKind::Percent => "%",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}
