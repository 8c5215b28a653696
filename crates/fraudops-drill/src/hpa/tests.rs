//! The algorithm against the worked examples of the Kubernetes HPA documentation
//! (concepts/workloads/autoscaling/horizontal-pod-autoscale, "Algorithm details" and "Configurable scaling
//! behavior") and against the mission's behaviour with the deployed HPA object.

use std::path::Path;
use std::time::Duration;

use super::*;
use crate::manifest::parse_hpa;

const MIB: i64 = 1 << 20;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A pod that has been ready for a long time, using `cpu_millis` of a `request_millis` request.
fn steady_pod(i: usize, request_millis: i64, cpu_millis: i64, now: Duration) -> PodState {
    PodState {
        name: format!("pod-{i}"),
        started_at: Duration::ZERO,
        ready: true,
        ready_changed_at: Some(Duration::ZERO),
        terminating: false,
        cpu_request_millis: request_millis,
        memory_request_bytes: 64 * MIB,
        usage: Some(PodUsage {
            cpu_millis,
            memory_bytes: 30 * MIB,
            timestamp: now,
            window: secs(15),
        }),
    }
}

/// `n` steady pods, each using `cpu_millis` of a 200m request.
fn steady_pods(n: usize, cpu_millis: i64, now: Duration) -> Vec<PodState> {
    (0..n)
        .map(|i| steady_pod(i, 200, cpu_millis, now))
        .collect()
}

/// The pods of sync `step` (every 15 s from 1000 s): the load of `load_pods` pods at the 50% target,
/// spread over `replicas` pods.
fn spread_load(step: u64, replicas: u32, load_pods: i64) -> (Duration, Vec<PodState>) {
    let now = secs(1000 + 15 * step);
    let per_pod = load_pods * 100 / i64::from(replicas);
    (now, steady_pods(replicas as usize, per_pod, now))
}

/// Settings whose CPU initialisation period is over by `now` for pods started at 0.
fn settings() -> ControllerSettings {
    ControllerSettings::default()
}

/// Scaling limited by nothing but min/max: isolates the replica calculation.
fn unlimited() -> Behavior {
    let rules = ScalingRules {
        stabilization_window: Duration::ZERO,
        select_policy: SelectPolicy::Max,
        policies: vec![ScalingPolicy {
            kind: PolicyKind::Pods,
            value: 1000,
            period: secs(1),
        }],
    };
    Behavior {
        scale_up: rules.clone(),
        scale_down: rules,
    }
}

fn cpu_spec(min: u32, max: u32, target: u32, behavior: Behavior) -> HpaSpec {
    HpaSpec {
        name: "api".into(),
        target: "api".into(),
        min_replicas: min,
        max_replicas: max,
        metrics: vec![ResourceTarget {
            resource: Resource::Cpu,
            average_utilization: target,
        }],
        behavior,
    }
}

/// When the one-shot reconciliations happen.
const NOW: Duration = Duration::from_secs(1000);

fn desired_for(spec: HpaSpec, pods: &[PodState]) -> Reconciliation {
    let mut hpa = Autoscaler::new(spec, settings());
    hpa.reconcile(NOW, pods.len() as u32, pods)
}

/// [`desired_for`] with the documentation's examples' HPA: 1 to 100 replicas, a 50% CPU target, no
/// policy limits.
fn docs_desired(pods: &[PodState]) -> Reconciliation {
    desired_for(cpu_spec(1, 100, 50, unlimited()), pods)
}

/// "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be
/// doubled ... If the current value is instead 50m, you'll halve the number of replicas".
#[test]
fn docs_example_double_and_halve() {
    // Target 50% of a 200m request = 100m per pod.
    let busy = steady_pods(4, 200, NOW);
    let r = docs_desired(&busy);
    assert_eq!((r.current, r.desired), (4, 8));
    assert_eq!(r.metrics[0].utilization_percent, 100);
    assert!(
        r.reason.starts_with("cpu resource utilization"),
        "{}",
        r.reason
    );
    let idle = steady_pods(4, 50, NOW);
    let r = docs_desired(&idle);
    assert_eq!(r.desired, 2);
    assert_eq!(r.reason, "All metrics below target");
}

/// "The control plane skips any scaling action if the ratio is sufficiently close to 1.0 (within a
/// globally-configurable tolerance, 0.1 by default)."
#[test]
fn docs_tolerance() {
    // 109m of 200m = 54% (truncated, as the controller does), ratio 1.08: within the tolerance.
    let pods = steady_pods(4, 109, NOW);
    assert_eq!(docs_desired(&pods).desired, 4);
    // 112m = 56%, ratio 1.12: ceil(4 × 1.12) = 5.
    let pods = steady_pods(4, 112, NOW);
    assert_eq!(docs_desired(&pods).desired, 5);
    // 91m = 45%, ratio 0.9: within the tolerance on the way down too.
    let pods = steady_pods(4, 91, NOW);
    assert_eq!(docs_desired(&pods).desired, 4);
}

/// "If any pod has not yet become ready ... the controller conservatively assumes that the not-yet-ready
/// pods are consuming 0% of the desired metric, further dampening the magnitude of a scale up ... If
/// taking into account the not-yet-ready pods would reverse the direction, the controller does not act."
#[test]
fn docs_not_yet_ready_pods_damp_a_scale_up() {
    let mut pods = steady_pods(4, 150, NOW);
    // Three pods just started and are not ready: left out of the average.
    for p in &mut pods[1..] {
        p.started_at = NOW - secs(5);
        p.ready = false;
        p.ready_changed_at = Some(NOW - secs(5));
    }
    // The one ready pod alone: 75%, ratio 1.5, which would give ceil(1.5 × 1) = 2 < 4, a scale-DOWN.
    // Counted as 0%, the unready pods make it (150 / 800) = 18%: direction reversed, so no change.
    let r = docs_desired(&pods);
    assert_eq!(r.desired, 4);
    assert_eq!(r.metrics[0].utilization_percent, 75);

    // Ready, but its sample's window started before it became ready: still left out (CPU only).
    let mut pods = steady_pods(2, 400, NOW);
    pods[1].started_at = NOW - secs(20);
    pods[1].ready_changed_at = Some(NOW - secs(10));
    // Pod 0: 200% → ratio 4; with pod 1 at 0: (400 / 400) = 100% → ratio 2 → ceil(2 × 2) = 4.
    assert_eq!(docs_desired(&pods).desired, 4);
}

/// "if any pods are missing metrics ... in the case of a scale down, we assume those pods were consuming
/// 100% of the desired value ... This dampens the magnitude of any potential scale down."
#[test]
fn docs_missing_metrics_damp_a_scale_down() {
    let mut pods = steady_pods(4, 50, NOW);
    pods[3].usage = None;
    // Without the missing pod: 25%, ratio 0.5, ceil(0.5 × 3) = 2. With it at 100% of its request:
    // (150 + 200) / 800 = 43%, ratio 0.86, ceil(0.86 × 4) = 4: no scale-down.
    assert_eq!(docs_desired(&pods).desired, 4);
    // On a scale-up a missing pod counts as 0%: (3 × 300) / 800 = 112%, ratio 2.25 → ceil(9) = 9.
    let mut pods = steady_pods(4, 300, NOW);
    pods[3].usage = None;
    assert_eq!(docs_desired(&pods).desired, 9);
}

/// Terminating pods are not counted at all.
#[test]
fn terminating_pods_are_ignored() {
    let mut pods = steady_pods(3, 200, NOW);
    pods[2].terminating = true;
    pods[2].usage = None;
    // Two pods at 100%, ratio 2: ceil(2 × 2) = 4 (the third pod is neither missing nor counted).
    assert_eq!(docs_desired(&pods).desired, 4);
}

/// "the HorizontalPodAutoscaler will calculate proposed replica counts for each metric, and then choose
/// the one with the highest replica count" — and does not scale down when a metric cannot be computed.
#[test]
fn docs_multiple_metrics_take_the_maximum() {
    let mut spec = cpu_spec(1, 100, 50, unlimited());
    spec.metrics.push(ResourceTarget {
        resource: Resource::Memory,
        average_utilization: 20,
    });
    let now = secs(1000);
    // CPU: 25% → ratio 0.5 → 2. Memory: 30Mi of 64Mi = 46% → ratio 2.3 → ceil(9.2) = 10.
    let pods = steady_pods(4, 50, now);
    let r = desired_for(spec.clone(), &pods);
    assert_eq!(r.desired, 10);
    assert_eq!(
        r.metrics.iter().map(|m| m.replicas).collect::<Vec<_>>(),
        vec![2, 10]
    );
    assert!(
        r.reason.starts_with("memory resource utilization"),
        "{}",
        r.reason
    );

    // Memory not computable (no request): CPU alone says 2, but a scale-down on partial data is refused.
    let pods: Vec<_> = (0..4)
        .map(|i| PodState {
            memory_request_bytes: 0,
            ..steady_pod(i, 200, 50, now)
        })
        .collect();
    let r = desired_for(spec, &pods);
    assert_eq!(r.desired, 4);
    assert!(
        r.error
            .as_deref()
            .is_some_and(|e| e.contains("1 invalid out of 2")),
        "{r:?}"
    );
}

/// "Default behavior ... For scaling up there is no stabilization window ... 4 pods or a 100% of the
/// currently running replicas may at most be added every 15 seconds till the HPA reaches its steady state."
#[test]
fn docs_default_scale_up_doubles_or_adds_four_every_15s() {
    let spec = cpu_spec(1, 100, 50, Behavior::default());
    let mut hpa = Autoscaler::new(spec, settings());
    let mut replicas = 1;
    let mut seen = vec![];
    for step in 0..6u64 {
        // Load for 40 pods at the target, spread over the pods there are.
        let (now, pods) = spread_load(step, replicas, 40);
        let r = hpa.reconcile(now, replicas, &pods);
        replicas = r.desired;
        seen.push(replicas);
    }
    // +4 (more than +100% of 1), +100%, +100%, then the steady state of 40.
    assert_eq!(seen, vec![5, 10, 20, 40, 40, 40]);
}

/// "policies: Pods 4 per 60 s, Percent 10 per 60 s ... if there are 80 replicas and the target has to be
/// scaled down to 10 replicas then during the first step 8 replicas will be reduced. In the next iteration
/// when the number of replicas is 72, 10% of the pods is 7.2 but the number is rounded up to 8 ... When
/// the number of replicas falls below 40, the first policy (Pods) is applied and 4 replicas will be reduced
/// at a time."
#[test]
fn docs_scale_down_policies_example() {
    let behavior = Behavior {
        scale_up: ScalingRules::default_scale_up(),
        scale_down: ScalingRules {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: secs(60),
                },
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 10,
                    period: secs(60),
                },
            ],
        },
    };
    let mut hpa = Autoscaler::new(cpu_spec(1, 100, 50, behavior), settings());
    let mut replicas = 80u32;
    let mut steps = vec![];
    // A sync every 15 s for 20 minutes; the load wants 10 replicas throughout.
    for step in 0..80u64 {
        let (now, pods) = spread_load(step, replicas, 10);
        let r = hpa.reconcile(now, replicas, &pods);
        if r.rescale() {
            steps.push((now.as_secs(), replicas - r.desired));
            replicas = r.desired;
        }
    }
    let removed: Vec<u32> = steps.iter().map(|s| s.1).collect();
    assert_eq!(&removed[..2], &[8, 8], "{steps:?}");
    assert_eq!(replicas, 10);
    // 10% while that is more than 4 pods (7.2 → 8: 72 × 0.9 truncated is 64), then the Pods policy's 4
    // until the target is reached.
    assert_eq!(
        removed,
        vec![8, 8, 7, 6, 6, 5, 4, 4, 4, 4, 4, 4, 4, 2],
        "{steps:?}"
    );
    // One step per 60 s period, never faster.
    for w in steps.windows(2) {
        assert!(w[1].0 - w[0].0 >= 60, "{steps:?}");
    }
}

/// "selectPolicy: Disabled" turns a direction off.
#[test]
fn docs_disabled_scale_down() {
    let mut behavior = unlimited();
    behavior.scale_down.select_policy = SelectPolicy::Disabled;
    let now = secs(1000);
    let pods = steady_pods(4, 10, now);
    let r = desired_for(cpu_spec(1, 100, 50, behavior), &pods);
    assert_eq!(r.desired, 4);
}

/// "the highest recommendation from the last 5 minutes is used": a flapping load does not flap replicas.
#[test]
fn docs_scale_down_stabilization_window() {
    let mut behavior = unlimited();
    behavior.scale_down.stabilization_window = secs(300);
    let mut hpa = Autoscaler::new(cpu_spec(1, 100, 50, behavior), settings());
    let mut replicas = 6u32;
    let mut changes = vec![];
    for step in 0..40u64 {
        // Alternating: load for 6 pods, then for 3, ... until step 20, then steadily for 3.
        let want = if step < 20 && step % 2 == 0 { 6 } else { 3 };
        let (now, pods) = spread_load(step, replicas, want);
        let r = hpa.reconcile(now, replicas, &pods);
        if r.rescale() {
            changes.push((step, r.desired));
            replicas = r.desired;
        }
    }
    // The last "6" recommendation was at step 18 (t = 270 s): the window holds it until t = 570 s, step 38.
    assert_eq!(changes, vec![(38, 3)]);
}

/// The deployed object: deploy/k8s/base/api-hpa.yaml, as the drill reads it.
fn deployed_hpa_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s/base/api-hpa.yaml");
    std::fs::read_to_string(path).expect("the repository's HPA manifest")
}

fn hpa_from(text: &str) -> HpaSpec {
    let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("yaml");
    parse_hpa(&doc).expect("a valid HPA")
}

/// A deployment under the drill's clock: one sync per `sync_period`, new pods ready 1 s after they start
/// (their CPU counted once a metric window has passed since), the load shared by the ready pods.
struct Sim {
    hpa: Autoscaler,
    replicas: u32,
    starts: Vec<Duration>,
    now: Duration,
    /// (time, from, to)
    events: Vec<(Duration, u32, u32)>,
}

impl Sim {
    fn new(spec: HpaSpec, settings: ControllerSettings) -> Self {
        let replicas = spec.min_replicas;
        Self {
            hpa: Autoscaler::new(spec, settings),
            replicas,
            starts: vec![Duration::ZERO; replicas as usize],
            now: Duration::ZERO,
            events: vec![],
        }
    }

    /// Runs syncs until `end`, with a total CPU load (millicores) given by `load(t)`.
    fn run(&mut self, end: Duration, load: impl Fn(Duration) -> i64) {
        let sync = self.hpa.settings().sync_period;
        let window = sync;
        let ready_after = sync / 15;
        while self.now <= end {
            let now = self.now;
            let ready = |s: Duration| now >= s + ready_after;
            let n_ready = self.starts.iter().filter(|s| ready(**s)).count().max(1) as i64;
            let pods: Vec<PodState> = self
                .starts
                .iter()
                .enumerate()
                .map(|(i, &s)| PodState {
                    name: format!("pod-{i}"),
                    started_at: s,
                    ready: ready(s),
                    ready_changed_at: Some(if ready(s) { s + ready_after } else { s }),
                    terminating: false,
                    cpu_request_millis: 250,
                    memory_request_bytes: 64 * MIB,
                    usage: Some(PodUsage {
                        cpu_millis: if ready(s) { load(now) / n_ready } else { 0 },
                        memory_bytes: 30 * MIB,
                        timestamp: now,
                        window,
                    }),
                })
                .collect();
            let r = self.hpa.reconcile(now, self.replicas, &pods);
            if r.rescale() {
                self.events.push((now, r.current, r.desired));
                if r.desired > self.replicas {
                    self.starts.extend(std::iter::repeat_n(
                        now,
                        (r.desired - self.replicas) as usize,
                    ));
                } else {
                    self.starts.truncate(r.desired as usize);
                }
                self.replicas = r.desired;
            }
            self.now += sync;
        }
    }
}

/// Load that keeps 4 replicas of 250m at 200% of their request from `from` to `until`, 10% otherwise.
fn step_load(from: Duration, until: Duration) -> impl Fn(Duration) -> i64 {
    move |t| if t >= from && t < until { 2000 } else { 100 }
}

/// The mission with the deployed HPA: 4 → 5 only after the 60 s stabilisation window has held nothing
/// but higher recommendations (with 15 s syncs that is 45–60 s after the load starts), 5 → 6 one policy
/// period (60 s) later, never above 6; after the load, 6 → 5 once the 300 s scale-down window is clear of
/// high recommendations, and 5 → 4 one 300 s period after that.
#[test]
fn mission_deployed_hpa_scales_4_5_6_and_back() {
    let spec = hpa_from(&deployed_hpa_text());
    let load_start = secs(100);
    let load_end = secs(1000);
    let mut sim = Sim::new(spec, ControllerSettings::default());
    sim.run(secs(2500), step_load(load_start, load_end));
    let e = &sim.events;
    assert_eq!(
        e.iter().map(|(_, f, t)| (*f, *t)).collect::<Vec<_>>(),
        vec![(4, 5), (5, 6), (6, 5), (5, 4)],
        "{e:?}"
    );
    let (up1, up2, down1, down2) = (e[0].0, e[1].0, e[2].0, e[3].0);
    // The first sync that sees the load is at 105 s; the window (60 s) must then contain only high
    // recommendations: the ones of 105, 120, 135 and 150 s.
    assert_eq!(up1, secs(150));
    assert!(up1 - load_start >= secs(45) && up1 - load_start <= secs(60));
    assert_eq!(up2 - up1, secs(60), "one pod per 60 s");
    assert!(
        down1 - load_end >= secs(285) && down1 - load_end <= secs(315),
        "{down1:?}"
    );
    assert_eq!(down2 - down1, secs(300), "one pod per 300 s");
}

/// The autoscaler follows the manifest, not constants: a copy with `maxReplicas: 5` stops at 5, and one
/// whose scale-up policy allows 2 pods per period goes 4 → 6 in one step.
#[test]
fn another_manifest_changes_the_behaviour() {
    let text = deployed_hpa_text();
    assert!(text.contains("maxReplicas: 6"));
    let capped = hpa_from(&text.replace("maxReplicas: 6", "maxReplicas: 5"));
    let mut sim = Sim::new(capped, ControllerSettings::default());
    sim.run(secs(900), step_load(secs(100), secs(10_000)));
    assert_eq!(sim.replicas, 5);
    assert_eq!(sim.events.iter().map(|e| e.2).max(), Some(5));

    let scale_up = text
        .find("scaleUp:")
        .expect("the manifest has a scaleUp block");
    let (head, tail) = text.split_at(scale_up);
    let two_pods = tail.replacen("value: 1", "value: 2", 1);
    let faster = hpa_from(&format!("{head}{two_pods}"));
    let mut sim = Sim::new(faster, ControllerSettings::default());
    sim.run(secs(900), step_load(secs(100), secs(10_000)));
    assert_eq!(
        sim.events.first().map(|e| (e.1, e.2)),
        Some((4, 6)),
        "{:?}",
        sim.events
    );
}

/// `--quick` runs the same object on a clock 10× faster: the same decisions at a tenth of the times.
#[test]
fn time_scaling_keeps_the_decisions() {
    let spec = hpa_from(&deployed_hpa_text());
    let mut real = Sim::new(spec.clone(), ControllerSettings::default());
    real.run(secs(2500), step_load(secs(100), secs(1000)));
    let mut quick = Sim::new(spec.time_scaled(0.1), ControllerSettings::time_scaled(0.1));
    quick.run(secs(250), step_load(secs(10), secs(100)));
    let scaled: Vec<_> = real
        .events
        .iter()
        .map(|(t, f, to)| (t.mul_f64(0.1).as_millis(), *f, *to))
        .collect();
    let got: Vec<_> = quick
        .events
        .iter()
        .map(|(t, f, to)| (t.as_millis(), *f, *to))
        .collect();
    assert_eq!(got, scaled);
}

/// Replica counts outside min/max are corrected first, whatever the metrics say.
#[test]
fn out_of_range_counts_are_brought_into_range() {
    let spec = hpa_from(&deployed_hpa_text());
    let mut hpa = Autoscaler::new(spec, settings());
    let now = secs(1000);
    let r = hpa.reconcile(now, 2, &[]);
    assert_eq!(r.desired, 4);
    let r = hpa.reconcile(now, 9, &[]);
    assert_eq!(r.desired, 6);
    assert_eq!(
        r.reason,
        "Current number of replicas above Spec.MaxReplicas"
    );
}
