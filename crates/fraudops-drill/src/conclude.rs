//! The drill's end: what was observed turned into the verdict and the report files (`summary.json`,
//! `summary.md`, `series.csv`, `replicas.csv`, `notifications.json`, `chart.svg`).

use std::path::Path;
use std::time::Instant;

use crate::cgroup::Mechanism;
use crate::config::{self, DrillArgs};
use crate::control::Notification;
use crate::error::DrillError;
use crate::monitoring::AlertState;
use crate::plan::{self, Plan};
use crate::report::{self, ChartInput, Mark};
use crate::run::Observed;
use crate::summary::{self, ReplicaTimes, Summary};
use crate::verdict::{self, Evidence};

fn secs_since(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64()
}

/// Seconds from `t0` to `t`, negative before the attack started (the first replicas).
fn signed_secs(t0: Instant, t: Instant) -> f64 {
    if t >= t0 {
        t.duration_since(t0).as_secs_f64()
    } else {
        -t0.duration_since(t).as_secs_f64()
    }
}

/// Writes every report file and returns the summary with its verdict.
pub(crate) fn write_report(
    args: &DrillArgs,
    plan: &Plan,
    dir: &Path,
    o: Observed,
    interrupted: bool,
    error: Option<&DrillError>,
) -> Result<Summary, DrillError> {
    let t0 = o.t0;
    let mut events = o.view.events.clone();
    for e in &mut events {
        e.t_seconds = Some(secs_since(t0, e.at));
    }
    let mut notes: Vec<Notification> = o
        .sink
        .received()
        .into_iter()
        .map(|(at, mut n)| {
            n.t_seconds = Some(secs_since(t0, at));
            n
        })
        .collect();
    notes.sort_by(|a, b| {
        a.t_seconds
            .partial_cmp(&b.t_seconds)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let admin: Vec<Notification> = notes
        .iter()
        .filter(|n| n.hook == "admin")
        .cloned()
        .collect();
    let oncall: Vec<Notification> = notes
        .iter()
        .filter(|n| n.hook == "oncall")
        .cloned()
        .collect();
    let replicas: Vec<ReplicaTimes> = o
        .view
        .lives
        .iter()
        .map(|l| ReplicaTimes {
            pod: l.pod.clone(),
            started_s: signed_secs(t0, l.started),
            ready_s: l.ready.map(|r| signed_secs(t0, r)),
            terminating_s: l.terminating.map(|t| signed_secs(t0, t)),
        })
        .collect();
    let max = plan.hpa.max_replicas;
    // The replica that brought the count to the maximum: the scale-up event to max, then the pod started
    // at that moment.
    let max_event = events.iter().find(|e| e.to == max && e.from < max);
    let max_replicas_ready_s = max_event.and_then(|e| {
        o.view
            .lives
            .iter()
            .filter(|l| l.started >= e.at)
            .filter_map(|l| l.ready)
            .min()
            .map(|r| secs_since(t0, r))
    });
    let first = |state: AlertState| {
        o.samples
            .iter()
            .find(|s| s.alert_state == state)
            .map(|s| s.t_seconds)
    };
    let alert_pending_s = first(AlertState::Pending).or(first(AlertState::Firing));
    let alert_firing_s = first(AlertState::Firing);
    let notification_s = admin.first().and_then(|n| n.t_seconds);

    let capacity = plan::capacity_statement(plan, &o.samples);
    let checks = verdict::checks(&Evidence {
        negative: args.negative,
        scale_down: plan.scale_down,
        interrupted,
        failure: o.failure.as_deref(),
        error: error.map(ToString::to_string).as_deref(),
        crashes: &o.view.crashes,
        hpa: &plan.hpa,
        events: &events,
        replicas_now: o.view.current(),
        max_replicas_ready_s,
        alert_pending_s,
        alert_firing_s,
        samples: o.samples.len(),
        admin: &admin,
        capacity: capacity.as_ref(),
        held_rate: plan.phases.last().map_or(0.0, |p| p.rate),
    });
    let passed = checks.iter().all(|c| c.passed);
    let verdict = if interrupted {
        "interrupted"
    } else if passed {
        "passed"
    } else {
        "failed"
    };
    let attack = std::fs::read_to_string(dir.join("attack-results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mode = format!(
        "{}{}",
        if args.quick {
            "quick"
        } else if plan.time_scale < 1.0 {
            "scaled"
        } else {
            "full"
        },
        if args.negative { " negative" } else { "" }
    );
    let summary = Summary {
        verdict: verdict.into(),
        mode,
        time_scale: plan.time_scale,
        cpu_mechanism: o.mechanism,
        cpu_mechanism_description: o.mechanism.describe().into(),
        manifest_source: plan.deployed.source.clone(),
        overlay: plan.overlay.clone(),
        cpu_scaled: plan.cpu_factor != 1.0,
        hpa: plan.deployed.hpa.clone(),
        deployed_cpu_request_cores: plan.deployed.api.cpu_request_cores,
        deployed_cpu_limit_cores: plan.deployed.api.cpu_limit_cores,
        cpu_factor: plan.cpu_factor,
        drill_cpu_request_cores: plan.cpu_request,
        drill_cpu_limit_cores: plan.cpu_limit,
        controller: plan.settings.clone(),
        scrape_interval_s: plan.interval.as_secs_f64(),
        phases: config::format_phases(&plan.phases),
        attack_started_at: o.started_at.clone(),
        duration_s: o.samples.last().map_or(0.0, |s| s.t_seconds),
        scaling_events: events.clone(),
        replicas,
        max_replicas_ready_s,
        alert_pending_s,
        alert_firing_s,
        notification_s,
        admin_notifications: admin.clone(),
        oncall_notifications: oncall,
        attack,
        crashes: o.view.crashes.clone(),
        capacity,
        checks,
    };

    report::write(dir, "series.csv", &report::series_csv(&o.samples))?;
    report::write(dir, "replicas.csv", &report::replicas_csv(&o.samples))?;
    report::write(
        dir,
        "notifications.json",
        &report::notifications_json(&notes),
    )?;
    if let Some(first) = admin.first() {
        report::write(
            dir,
            "admin-notification.json",
            &serde_json::to_string_pretty(&first.body).unwrap_or_default(),
        )?;
    }
    report::write(
        dir,
        "summary.json",
        &serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )?;
    let mut marks = Vec::new();
    if let Some(t) = notification_s {
        marks.push(Mark {
            t_seconds: t,
            label: "admin notified".into(),
        });
    }
    let title = format!(
        "fraudops drill ({}) — {} — {} — CPU limit {:.1}m per replica{} via {} — {}",
        summary.mode,
        verdict.to_uppercase(),
        plan.overlay,
        plan.cpu_limit * 1000.0,
        if summary.cpu_scaled {
            format!(" (SCALED ×{})", plan.cpu_factor)
        } else {
            String::new()
        },
        match o.mechanism {
            Mechanism::CgroupV1 => "cgroup v1 CFS quota",
            Mechanism::CgroupV2 => "cgroup v2 cpu.max",
            Mechanism::Accounting => "ACCOUNTING ONLY (not enforced)",
        },
        match (alert_firing_s, notification_s) {
            (Some(f), Some(n)) => format!("alert firing at {f:.0} s, admin notified at {n:.0} s"),
            (Some(f), None) => format!("alert firing at {f:.0} s"),
            _ => "no admin alert".into(),
        }
    );
    let cpu_target = plan
        .deployed
        .hpa
        .metrics
        .iter()
        .find(|m| m.resource.name() == "cpu")
        .map_or(0.0, |m| f64::from(m.average_utilization) / 100.0);
    report::draw_chart(
        &dir.join("chart.svg"),
        &ChartInput {
            title: &title,
            samples: &o.samples,
            events: &events,
            marks: &marks,
            hpa_target_of_limit: cpu_target * plan.cpu_request / plan.cpu_limit,
            max_replicas: max,
        },
    )?;
    report::write(
        dir,
        "summary.md",
        &summary::markdown(&summary, plan.sample_every),
    )?;
    Ok(summary)
}
