//! The drill's verdict: the checks that decide whether the mission's story happened (the HPA 4 → 5 → 6
//! one replica per policy period, the admin alert only at the maximum, exactly one notification, the
//! capacity measured), as a pure function of what was observed, so each rule is unit-tested.

use std::time::Duration;

use crate::capacity::Capacity;
use crate::cluster::ScalingEvent;
use crate::control::Notification;
use crate::hpa::HpaSpec;
use crate::summary::{Check, fmt_s};

/// The alert the mission is about.
pub const ADMIN_ALERT: &str = "AdminNotification_MaxScaleHighCPU";
/// What the administrator's chat must receive first.
pub const EXPECTED_TITLE: &str = "[FIRING:1] AdminNotification_MaxScaleHighCPU";
/// The title of the same alert's resolution (`send_resolved`), once the load has stopped.
pub const EXPECTED_RESOLVED_TITLE: &str = "[RESOLVED] AdminNotification_MaxScaleHighCPU";
/// The route's `group_wait` for the admin receiver (deploy/monitoring/alertmanager/alertmanager.yaml);
/// Alertmanager's own timers are not scaled (its configuration is the deployed one).
pub(crate) const ADMIN_GROUP_WAIT: Duration = Duration::from_secs(10);

/// What the checks judge; times in seconds since the attack started.
pub(crate) struct Evidence<'a> {
    /// A negative drill (the alert must stay silent).
    pub negative: bool,
    /// The drill watched the scale-down after the alert.
    pub scale_down: bool,
    /// Ctrl-C ended it.
    pub interrupted: bool,
    /// Why the drill stopped early, if it did.
    pub failure: Option<&'a str>,
    /// The error that ended it, if any.
    pub error: Option<&'a str>,
    /// Replicas that crashed.
    pub crashes: &'a [String],
    /// The HPA as the drill ran it (time-scaled).
    pub hpa: &'a HpaSpec,
    /// Every scaling event, `t_seconds` filled in.
    pub events: &'a [ScalingEvent],
    /// Replicas at the end.
    pub replicas_now: u32,
    /// When the replica that completed `maxReplicas` became ready.
    pub max_replicas_ready_s: Option<f64>,
    /// First sample with the admin alert pending (or firing).
    pub alert_pending_s: Option<f64>,
    /// First sample with it firing.
    pub alert_firing_s: Option<f64>,
    /// How many samples were taken.
    pub samples: usize,
    /// What the admin webhook received, in order, `t_seconds` filled in.
    pub admin: &'a [Notification],
    /// The capacity statement, if the cost could be fitted.
    pub capacity: Option<&'a Capacity>,
    /// The rate of the last listed phase (what a negative drill holds).
    pub held_rate: f64,
}

/// Every check of a drill, in report order.
pub(crate) fn checks(e: &Evidence) -> Vec<Check> {
    let max = e.hpa.max_replicas;
    // The event that brought the count to the maximum.
    let max_event = e.events.iter().find(|s| s.to == max && s.from < max);
    let (alert_pending_s, alert_firing_s, max_replicas_ready_s) =
        (e.alert_pending_s, e.alert_firing_s, e.max_replicas_ready_s);
    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    };
    if let Some(f) = e.failure {
        check("the drill completed", false, f.to_owned());
    }
    if let Some(err) = e.error {
        check("the drill ran to the end", false, err.to_owned());
    }
    check(
        "no replica crashed",
        e.crashes.is_empty(),
        if e.crashes.is_empty() {
            "none".into()
        } else {
            e.crashes.join(", ")
        },
    );
    let ups: Vec<&ScalingEvent> = e.events.iter().filter(|s| s.to > s.from).collect();
    if e.negative {
        check(
            "the admin alert never went pending or firing",
            alert_pending_s.is_none(),
            match alert_pending_s {
                Some(t) => format!("{ADMIN_ALERT} active at t = {t:.1} s"),
                None => format!("inactive in all {} samples", e.samples),
            },
        );
        check(
            "the admin webhook received nothing",
            e.admin.is_empty(),
            format!("{} admin notification(s)", e.admin.len()),
        );
    } else {
        let path: Vec<String> = std::iter::once(e.hpa.min_replicas.to_string())
            .chain(ups.iter().map(|s| s.to.to_string()))
            .collect();
        let one_by_one = ups.iter().all(|s| s.to == s.from + 1);
        check(
            &format!(
                "the HPA scaled {} → {max} one replica at a time",
                e.hpa.min_replicas
            ),
            max_event.is_some() && one_by_one,
            format!("replicas {}", path.join(" → ")),
        );
        let period = e
            .hpa
            .behavior
            .scale_up
            .longest_policy_period()
            .as_secs_f64();
        let gaps: Vec<f64> = ups
            .windows(2)
            .map(|w| w[1].t_seconds.unwrap_or_default() - w[0].t_seconds.unwrap_or_default())
            .collect();
        check(
            &format!("scale-ups at least one policy period ({period:.1} s) apart"),
            gaps.iter().all(|g| *g >= period - 0.05),
            format!(
                "gaps {:?} s",
                gaps.iter()
                    .map(|g| (g * 10.0).round() / 10.0)
                    .collect::<Vec<_>>()
            ),
        );
        check(
            "the admin alert fired only after the last replica (maxReplicas) was running",
            match (
                max_event.and_then(|s| s.t_seconds),
                alert_pending_s,
                alert_firing_s,
                max_replicas_ready_s,
            ) {
                (Some(scaled), Some(pending), Some(firing), Some(ready)) => {
                    pending >= scaled && firing >= ready
                }
                _ => false,
            },
            format!(
                "scaled to {max} at {}, ready at {}; alert pending at {}, firing at {}",
                fmt_s(max_event.and_then(|s| s.t_seconds)),
                fmt_s(max_replicas_ready_s),
                fmt_s(alert_pending_s),
                fmt_s(alert_firing_s)
            ),
        );
        // Exactly one FIRING notification of the admin alert; once the load has stopped (runs that watch
        // the scale-down), Alertmanager's `send_resolved` may add its RESOLVED notification, after it.
        let firing: Vec<&Notification> = e
            .admin
            .iter()
            .filter(|n| n.title().starts_with(EXPECTED_TITLE))
            .collect();
        let resolved: Vec<&Notification> = e
            .admin
            .iter()
            .filter(|n| n.title().starts_with(EXPECTED_RESOLVED_TITLE))
            .collect();
        let resolved_in_order = match (firing.first(), resolved.as_slice()) {
            (_, []) => true,
            (Some(f), [r]) => e.scale_down && r.t_seconds >= f.t_seconds,
            _ => false,
        };
        let expected = firing.len() == 1
            && firing.len() + resolved.len() == e.admin.len()
            && resolved_in_order;
        check(
            if e.scale_down {
                "the admin webhook holds exactly one firing notification of the admin alert (and then at most its resolution)"
            } else {
                "the admin webhook holds exactly the expected notification"
            },
            expected,
            format!(
                "{} notification(s): {:?}",
                e.admin.len(),
                e.admin
                    .iter()
                    .map(|n| n.title().lines().next().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            ),
        );
        if e.scale_down && !e.interrupted {
            let downs: Vec<&ScalingEvent> = e.events.iter().filter(|s| s.to < s.from).collect();
            check(
                &format!(
                    "after the load the HPA scaled back to {}",
                    e.hpa.min_replicas
                ),
                e.replicas_now == e.hpa.min_replicas && !downs.is_empty(),
                format!(
                    "scale-downs at {:?} s",
                    downs
                        .iter()
                        .map(|s| s.t_seconds.map(|t| t.round()))
                        .collect::<Vec<_>>()
                ),
            );
        }
    }
    match e.capacity {
        Some(c) if e.negative => {
            let held = e.held_rate;
            check(
                "the negative drill held a rate below hpa_scale_up_tps",
                held < c.hpa_scale_up_tps,
                format!(
                    "held {held} tx/s; {} replicas cross the CPU target at {:.0} tx/s",
                    e.hpa.min_replicas, c.hpa_scale_up_tps
                ),
            );
        }
        Some(c) => check(
            "capacity: admin_alert_tps > hpa_scale_up_tps > 0",
            c.admin_alert_tps > c.hpa_scale_up_tps && c.hpa_scale_up_tps > 0.0,
            format!(
                "{:.0} µs of CPU per prediction; HPA target crossed at {:.0} tx/s, admin alert's line at {:.0} tx/s",
                c.cpu_seconds_per_request * 1e6,
                c.hpa_scale_up_tps,
                c.admin_alert_tps
            ),
        ),
        None => check(
            "capacity measured",
            false,
            "no sample with load below the CPU limit to fit the cost per prediction from".into(),
        ),
    }
    checks
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::capacity::{CpuCost, OverlayCapacity};
    use crate::hpa::Behavior;

    fn hpa() -> HpaSpec {
        HpaSpec {
            name: "fraudops-api".into(),
            target: "fraudops-api".into(),
            min_replicas: 4,
            max_replicas: 6,
            metrics: vec![],
            behavior: Behavior::default(),
        }
    }

    fn event(t: f64, from: u32, to: u32) -> ScalingEvent {
        ScalingEvent {
            at: Instant::now(),
            t_seconds: Some(t),
            from,
            to,
            reason: "cpu above target".into(),
            condition: "ScaleUpLimit".into(),
            recommended: Some(to),
            metrics: vec![],
        }
    }

    fn note(t: f64, title: &str) -> Notification {
        Notification {
            hook: "admin".into(),
            received_at: String::new(),
            t_seconds: Some(t),
            body: serde_json::json!({"attachments": [{"title": title}]}),
        }
    }

    fn capacity(scale_up: f64, alert: f64) -> Capacity {
        let fit = CpuCost {
            cpu_seconds_per_request: 1e-4,
            idle_cpu_cores: 0.0,
            samples: 10,
            per_replica_tps_min: 10.0,
            per_replica_tps_max: 100.0,
        };
        Capacity {
            cpu_seconds_per_request: 1e-4,
            idle_cpu_cores: 0.0,
            fit,
            overlay: "k8s/overlays/seed-attack".into(),
            hpa_scale_up_tps: scale_up,
            admin_alert_tps: alert,
            overlays: Vec::<OverlayCapacity>::new(),
        }
    }

    /// The mission as it should go: 4 → 5 → 6 a policy period apart, the alert after the sixth is ready,
    /// one notification, the capacity measured.
    struct Mission {
        hpa: HpaSpec,
        events: Vec<ScalingEvent>,
        admin: Vec<Notification>,
        capacity: Capacity,
    }

    impl Mission {
        fn new() -> Self {
            Self {
                hpa: hpa(),
                events: vec![event(100.0, 4, 5), event(116.0, 5, 6)],
                admin: vec![note(250.0, &format!("{EXPECTED_TITLE} fraudops"))],
                capacity: capacity(700.0, 1200.0),
            }
        }

        /// The checks on this evidence after `change`.
        fn checks_with<'a>(&'a self, change: impl FnOnce(&mut Evidence<'a>)) -> Vec<Check> {
            let mut e = self.evidence();
            change(&mut e);
            checks(&e)
        }

        fn evidence(&self) -> Evidence<'_> {
            Evidence {
                negative: false,
                scale_down: false,
                interrupted: false,
                failure: None,
                error: None,
                crashes: &[],
                hpa: &self.hpa,
                events: &self.events,
                replicas_now: 6,
                max_replicas_ready_s: Some(118.0),
                alert_pending_s: Some(150.0),
                alert_firing_s: Some(240.0),
                samples: 100,
                admin: &self.admin,
                capacity: Some(&self.capacity),
                held_rate: 1500.0,
            }
        }
    }

    fn failed(checks: &[Check]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name.as_str())
            .collect()
    }

    #[test]
    fn the_mission_passes_every_check() {
        let m = Mission::new();
        let c = checks(&m.evidence());
        assert!(failed(&c).is_empty(), "{c:?}");
        assert!(c.len() >= 5);
    }

    #[test]
    fn an_alert_before_the_last_replica_is_ready_fails() {
        let m = Mission::new();
        let c = m.checks_with(|e| e.alert_firing_s = Some(117.0));
        assert_eq!(
            failed(&c),
            ["the admin alert fired only after the last replica (maxReplicas) was running"]
        );
        let c = m.checks_with(|e| e.alert_pending_s = Some(110.0));
        assert_eq!(
            failed(&c).len(),
            1,
            "pending before the 6th scale-up: {c:?}"
        );
    }

    #[test]
    fn scaling_two_at_once_or_too_fast_fails() {
        let m = Mission::new();
        let jump = [event(100.0, 4, 6)];
        let c = m.checks_with(|e| e.events = &jump);
        assert!(failed(&c).contains(&"the HPA scaled 4 → 6 one replica at a time"));
        let fast = [event(100.0, 4, 5), event(101.0, 5, 6)];
        let c = m.checks_with(|e| e.events = &fast);
        assert_eq!(failed(&c).len(), 1);
        assert!(failed(&c)[0].starts_with("scale-ups at least one policy period"));
    }

    #[test]
    fn the_admin_must_get_exactly_one_firing_notification() {
        let m = Mission::new();
        let twice = [
            note(250.0, EXPECTED_TITLE),
            note(260.0, &format!("{EXPECTED_TITLE} again")),
        ];
        let c = m.checks_with(|e| e.admin = &twice);
        assert_eq!(failed(&c).len(), 1, "{c:?}");
        let none: [Notification; 0] = [];
        let c = m.checks_with(|e| e.admin = &none);
        assert_eq!(failed(&c).len(), 1, "{c:?}");
        // A resolution after the firing one is expected only when the drill watched the scale-down.
        let resolved = [
            note(250.0, EXPECTED_TITLE),
            note(900.0, EXPECTED_RESOLVED_TITLE),
        ];
        let c = m.checks_with(|e| e.admin = &resolved);
        assert_eq!(failed(&c).len(), 1, "{c:?}");
        let down = [
            event(100.0, 4, 5),
            event(116.0, 5, 6),
            event(700.0, 6, 5),
            event(1000.0, 5, 4),
        ];
        let c = m.checks_with(|e| {
            e.admin = &resolved;
            e.scale_down = true;
            e.events = &down;
            e.replicas_now = 4;
        });
        assert!(failed(&c).is_empty(), "{c:?}");
    }

    #[test]
    fn capacity_must_be_measured_and_ordered() {
        let m = Mission::new();
        let c = m.checks_with(|e| e.capacity = None);
        assert_eq!(failed(&c), ["capacity measured"]);
        let inverted = capacity(1200.0, 700.0);
        let c = m.checks_with(|e| e.capacity = Some(&inverted));
        assert_eq!(
            failed(&c),
            ["capacity: admin_alert_tps > hpa_scale_up_tps > 0"]
        );
    }

    #[test]
    fn the_negative_drill_fails_on_any_alert_activity_or_a_rate_above_the_scale_up() {
        let m = Mission::new();
        let none: [Notification; 0] = [];
        let quiet = |e: &mut Evidence<'_>| {
            e.negative = true;
            e.events = &[];
            e.alert_pending_s = None;
            e.alert_firing_s = None;
            e.held_rate = 200.0;
        };
        let c = m.checks_with(|e| {
            quiet(e);
            e.admin = &none;
        });
        assert!(failed(&c).is_empty(), "{c:?}");
        let c = m.checks_with(|e| {
            quiet(e);
            e.admin = &none;
            e.alert_pending_s = Some(30.0);
        });
        assert_eq!(failed(&c), ["the admin alert never went pending or firing"]);
        let c = m.checks_with(|e| {
            quiet(e);
            e.admin = &none;
            e.held_rate = 800.0;
        });
        assert_eq!(
            failed(&c),
            ["the negative drill held a rate below hpa_scale_up_tps"]
        );
    }

    #[test]
    fn a_crash_or_an_early_stop_fails() {
        let m = Mission::new();
        let crashes = ["fraudops-api-2".to_owned()];
        let c = m.checks_with(|e| e.crashes = &crashes);
        assert_eq!(failed(&c), ["no replica crashed"]);
        let c = m.checks_with(|e| e.failure = Some("the attack gave up"));
        assert_eq!(failed(&c), ["the drill completed"]);
    }
}
