//! The Kubernetes HorizontalPodAutoscaler algorithm (autoscaling/v2) that the drill's autoscaler runs.
//!
//! Why one file of ~800 lines: the algorithm is one reconciliation (metrics → proposal → stabilisation →
//! policies → bounds) whose steps share the controller's state; its tests live in `hpa/tests.rs`.
//!
//! It follows the documentation ("Horizontal Pod Autoscaling": algorithm details, missing metrics and
//! not-yet-ready pods, multiple metrics, configurable scaling behaviour) and, where the documentation is
//! silent, kube-controller-manager's `podautoscaler` package, so the drill scales when, and as far as, a
//! cluster with the same HPA object would:
//!
//! * utilisation is relative to the pods' **requests** and truncated to whole percent, as the controller does;
//!   `desired = ceil(usageRatio × readyPods)`, no change within the tolerance (10%);
//! * pods that are not ready (or whose CPU sample predates their readiness, inside the CPU initialisation
//!   period) are left out of the CPU average and counted as 0% on a scale-up; pods without a sample count as
//!   0% on a scale-up and as 100% of their request on a scale-down; terminating pods are ignored;
//! * the maximum over all metrics wins; if a metric cannot be computed the HPA does not scale down;
//! * recommendations pass the stabilisation windows (scale-up: the lowest recommendation of the window,
//!   scale-down: the highest), then the policies (`Pods`/`Percent` per period, `selectPolicy`
//!   `Max`/`Min`/`Disabled`), then min/max.
//!
//! Time is a [`Duration`] since an epoch the caller chooses, so tests drive a virtual clock and the drill a
//! real one. Architecture invariant: nothing here starts processes or reads cgroups; the drill feeds pod
//! states in and applies the replica count that comes out.

use std::time::Duration;

use serde::Serialize;

/// A resource the HPA can target with a `type: Resource` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    /// CPU, in millicores.
    Cpu,
    /// Memory (working set), in bytes.
    Memory,
}

impl Resource {
    /// The name Kubernetes uses (`cpu`, `memory`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Memory => "memory",
        }
    }
}

/// `metrics[].resource` with `target.type: Utilization`: the average usage over the pods, in percent of
/// their request.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceTarget {
    /// Which resource.
    pub resource: Resource,
    /// `target.averageUtilization`, percent of the request.
    pub average_utilization: u32,
}

/// `behavior.*.policies[].type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PolicyKind {
    /// At most `value` pods per period.
    Pods,
    /// At most `value` percent of the replicas at the start of the period.
    Percent,
}

/// One `behavior.*.policies[]` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingPolicy {
    /// `Pods` or `Percent`.
    pub kind: PolicyKind,
    /// The number of pods or the percentage.
    pub value: u32,
    /// `periodSeconds`: the sliding window the change is counted over.
    #[serde(serialize_with = "seconds")]
    pub period: Duration,
}

/// `behavior.*.selectPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SelectPolicy {
    /// The policy that allows the largest change (the default).
    Max,
    /// The policy that allows the smallest change.
    Min,
    /// No scaling in this direction.
    Disabled,
}

/// `behavior.scaleUp` or `behavior.scaleDown`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScalingRules {
    /// `stabilizationWindowSeconds`.
    #[serde(serialize_with = "seconds")]
    pub stabilization_window: Duration,
    /// `selectPolicy`.
    pub select_policy: SelectPolicy,
    /// `policies`.
    pub policies: Vec<ScalingPolicy>,
}

impl ScalingRules {
    /// The longest policy period: how long one step of this direction can take to be allowed again,
    /// which the drill's timing and its one-replica-at-a-time check both need.
    pub fn longest_policy_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or_default()
    }

    /// Kubernetes' default scale-up: no stabilisation; add 100% or 4 pods per 15 s, whichever is more.
    pub fn default_scale_up() -> Self {
        Self {
            stabilization_window: Duration::ZERO,
            select_policy: SelectPolicy::Max,
            policies: vec![
                ScalingPolicy {
                    kind: PolicyKind::Percent,
                    value: 100,
                    period: Duration::from_secs(15),
                },
                ScalingPolicy {
                    kind: PolicyKind::Pods,
                    value: 4,
                    period: Duration::from_secs(15),
                },
            ],
        }
    }

    /// Kubernetes' default scale-down: 300 s stabilisation; remove up to 100% per 15 s.
    pub fn default_scale_down() -> Self {
        Self {
            stabilization_window: Duration::from_secs(300),
            select_policy: SelectPolicy::Max,
            policies: vec![ScalingPolicy {
                kind: PolicyKind::Percent,
                value: 100,
                period: Duration::from_secs(15),
            }],
        }
    }

    fn longest_period(&self) -> Duration {
        self.policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or_default()
    }

    fn time_scaled(&self, factor: f64) -> Self {
        Self {
            stabilization_window: self.stabilization_window.mul_f64(factor),
            select_policy: self.select_policy,
            policies: self
                .policies
                .iter()
                .map(|p| ScalingPolicy {
                    period: p.period.mul_f64(factor),
                    ..p.clone()
                })
                .collect(),
        }
    }
}

/// `spec.behavior`, with Kubernetes' defaults filled in for whatever the manifest leaves out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Behavior {
    /// `behavior.scaleUp`.
    pub scale_up: ScalingRules,
    /// `behavior.scaleDown`.
    pub scale_down: ScalingRules,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            scale_up: ScalingRules::default_scale_up(),
            scale_down: ScalingRules::default_scale_down(),
        }
    }
}

/// The parts of a HorizontalPodAutoscaler object the algorithm reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HpaSpec {
    /// `metadata.name` (the `horizontalpodautoscaler` label of kube-state-metrics).
    pub name: String,
    /// `spec.scaleTargetRef.name`: the Deployment it scales.
    pub target: String,
    /// `spec.minReplicas` (default 1).
    pub min_replicas: u32,
    /// `spec.maxReplicas`.
    pub max_replicas: u32,
    /// `spec.metrics` (resource utilisation targets).
    pub metrics: Vec<ResourceTarget>,
    /// `spec.behavior`.
    pub behavior: Behavior,
}

impl HpaSpec {
    /// The same object with every time constant (windows, policy periods) multiplied by `factor`: the
    /// quick drill runs the deployed behaviour on a faster clock.
    pub fn time_scaled(&self, factor: f64) -> Self {
        Self {
            behavior: Behavior {
                scale_up: self.behavior.scale_up.time_scaled(factor),
                scale_down: self.behavior.scale_down.time_scaled(factor),
            },
            ..self.clone()
        }
    }
}

/// kube-controller-manager's HPA flags (`--horizontal-pod-autoscaler-*`), at their defaults.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControllerSettings {
    /// `--horizontal-pod-autoscaler-sync-period` (15 s): how often each HPA is reconciled.
    #[serde(serialize_with = "seconds")]
    pub sync_period: Duration,
    /// `--horizontal-pod-autoscaler-tolerance` (0.1): ratios this close to 1 change nothing.
    pub tolerance: f64,
    /// `--horizontal-pod-autoscaler-cpu-initialization-period` (5 min): how long after a pod starts its CPU
    /// samples are distrusted unless taken a full window after it became ready.
    #[serde(serialize_with = "seconds")]
    pub cpu_initialization_period: Duration,
    /// `--horizontal-pod-autoscaler-initial-readiness-delay` (30 s): after this, a pod that is not ready is
    /// assumed to have been ready before and its samples are used.
    #[serde(serialize_with = "seconds")]
    pub initial_readiness_delay: Duration,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            sync_period: Duration::from_secs(15),
            tolerance: 0.1,
            cpu_initialization_period: Duration::from_secs(300),
            initial_readiness_delay: Duration::from_secs(30),
        }
    }
}

impl ControllerSettings {
    /// The defaults with every time constant multiplied by `factor` (the tolerance is not a time).
    pub fn time_scaled(factor: f64) -> Self {
        let d = Self::default();
        Self {
            sync_period: d.sync_period.mul_f64(factor),
            tolerance: d.tolerance,
            cpu_initialization_period: d.cpu_initialization_period.mul_f64(factor),
            initial_readiness_delay: d.initial_readiness_delay.mul_f64(factor),
        }
    }
}

/// A pod's usage as the resource metrics API (metrics-server) reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PodUsage {
    /// CPU, millicores, averaged over `window`.
    pub cpu_millis: i64,
    /// Working-set memory, bytes.
    pub memory_bytes: i64,
    /// When the sample's window ended.
    pub timestamp: Duration,
    /// The window the CPU average covers.
    pub window: Duration,
}

/// What the HPA knows about one pod at a sync.
#[derive(Debug, Clone, PartialEq)]
pub struct PodState {
    /// Pod name.
    pub name: String,
    /// When the pod (process) started.
    pub started_at: Duration,
    /// The Ready condition now.
    pub ready: bool,
    /// When the Ready condition last changed; `None` while the pod has no Ready condition yet.
    pub ready_changed_at: Option<Duration>,
    /// Being deleted (draining): ignored by the HPA.
    pub terminating: bool,
    /// CPU request, millicores.
    pub cpu_request_millis: i64,
    /// Memory request, bytes.
    pub memory_request_bytes: i64,
    /// The latest sample, if the metrics pipeline has one.
    pub usage: Option<PodUsage>,
}

/// One metric's view at a sync: what the HPA's `status.currentMetrics` and events show.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricProposal {
    /// The resource.
    pub resource: Resource,
    /// Current average utilisation over the pods counted, percent of request (truncated, as Kubernetes).
    pub utilization_percent: i64,
    /// The target, percent.
    pub target_percent: u32,
    /// The replica count this metric alone asks for.
    pub replicas: u32,
}

/// The outcome of one reconciliation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reconciliation {
    /// `scale.spec.replicas` before.
    pub current: u32,
    /// The replica count to run from now on (equal to `current` when nothing changes).
    pub desired: u32,
    /// The largest proposal over the metrics, before stabilisation and policies.
    pub recommended: Option<u32>,
    /// Why it rescales (`cpu resource utilization (percentage of request) above target`, ...), empty if not.
    pub reason: String,
    /// Which limit shaped the result (`ScaleUpLimit`, `TooManyReplicas`, `ScaleDownStabilized`, ...).
    pub condition: String,
    /// Per-metric proposals.
    pub metrics: Vec<MetricProposal>,
    /// Why metrics could not be computed, if they could not.
    pub error: Option<String>,
}

impl Reconciliation {
    /// Whether the replica count changes.
    pub fn rescale(&self) -> bool {
        self.desired != self.current
    }
}

#[derive(Debug, Clone, Copy)]
struct TimestampedRecommendation {
    replicas: u32,
    at: Duration,
}

#[derive(Debug, Clone, Copy)]
struct ScaleEvent {
    change: u32,
    at: Duration,
}

/// One HPA object's controller state: the recommendation history of the stabilisation windows and the
/// scale events the policies count.
#[derive(Debug, Clone)]
pub struct Autoscaler {
    spec: HpaSpec,
    settings: ControllerSettings,
    recommendations: Option<Vec<TimestampedRecommendation>>,
    scale_up_events: Vec<ScaleEvent>,
    scale_down_events: Vec<ScaleEvent>,
}

impl Autoscaler {
    /// A controller for `spec` with `settings`.
    pub fn new(spec: HpaSpec, settings: ControllerSettings) -> Self {
        Self {
            spec,
            settings,
            recommendations: None,
            scale_up_events: Vec::new(),
            scale_down_events: Vec::new(),
        }
    }

    /// The controller settings.
    #[cfg(test)]
    pub fn settings(&self) -> &ControllerSettings {
        &self.settings
    }

    /// One reconciliation at `now`: `current` is the target's `spec.replicas`, `pods` the pods it selects.
    /// When the result rescales, the caller is expected to apply it (the event is recorded for the
    /// policies as Kubernetes records it after a successful update).
    pub fn reconcile(&mut self, now: Duration, current: u32, pods: &[PodState]) -> Reconciliation {
        let min = self.spec.min_replicas;
        let max = self.spec.max_replicas;
        let mut out = Reconciliation {
            current,
            desired: current,
            recommended: None,
            reason: String::new(),
            condition: String::new(),
            metrics: Vec::new(),
            error: None,
        };
        if current == 0 && min != 0 {
            // Scaled to zero by hand: autoscaling is disabled for the target.
            out.condition = "ScalingDisabled".into();
            return out;
        }
        if current > max {
            out.desired = max;
            out.reason = "Current number of replicas above Spec.MaxReplicas".into();
        } else if current < min {
            out.desired = min;
            out.reason = "Current number of replicas below Spec.MinReplicas".into();
        } else {
            let (proposed, metric_name, statuses, error) =
                self.compute_for_metrics(now, current, pods);
            out.metrics = statuses;
            out.error = error;
            let Some(proposed) = proposed else {
                out.condition = "FailedGetResourceMetric".into();
                return out;
            };
            out.recommended = Some(proposed);
            if proposed > current {
                out.reason = format!("{metric_name} above target");
            } else if proposed < current {
                out.reason = "All metrics below target".into();
            }
            let (desired, condition) = self.normalize_with_behaviors(now, current, proposed);
            out.desired = desired;
            out.condition = condition;
        }
        if out.desired != current {
            self.store_scale_event(now, current, out.desired);
        } else {
            out.reason.clear();
        }
        out
    }

    /// `computeReplicasForMetrics`: the largest proposal over the metrics, `None` if it must not act.
    fn compute_for_metrics(
        &self,
        now: Duration,
        current: u32,
        pods: &[PodState],
    ) -> (Option<u32>, String, Vec<MetricProposal>, Option<String>) {
        let mut best: Option<(u32, String)> = None;
        let mut statuses = Vec::new();
        let mut invalid = 0usize;
        let mut first_error = None;
        for target in &self.spec.metrics {
            match self.resource_replicas(now, current, target, pods) {
                Ok(p) => {
                    if best.as_ref().is_none_or(|(r, _)| p.replicas > *r) {
                        best = Some((
                            p.replicas,
                            format!(
                                "{} resource utilization (percentage of request)",
                                target.resource.name()
                            ),
                        ));
                    }
                    statuses.push(p);
                }
                Err(e) => {
                    invalid += 1;
                    first_error.get_or_insert(e);
                }
            }
        }
        let error = first_error.map(|e| {
            format!(
                "invalid metrics ({invalid} invalid out of {}), first error is: {e}",
                self.spec.metrics.len()
            )
        });
        // All metrics invalid, or some invalid while the valid ones would scale down: do nothing.
        match best {
            Some((r, name))
                if invalid < self.spec.metrics.len() && !(invalid > 0 && r < current) =>
            {
                (Some(r), name, statuses, error)
            }
            _ => (None, String::new(), statuses, error),
        }
    }

    /// `ReplicaCalculator.GetResourceReplicas` for one utilisation target.
    fn resource_replicas(
        &self,
        now: Duration,
        current: u32,
        target: &ResourceTarget,
        pods: &[PodState],
    ) -> Result<MetricProposal, String> {
        if pods.is_empty() {
            return Err("no pods returned by selector while calculating replica count".into());
        }
        let request_of = |p: &PodState| match target.resource {
            Resource::Cpu => p.cpu_request_millis,
            Resource::Memory => p.memory_request_bytes,
        };
        let value_of = |u: &PodUsage| match target.resource {
            Resource::Cpu => u.cpu_millis,
            Resource::Memory => u.memory_bytes,
        };
        // groupPods
        let mut ready: Vec<(&PodState, i64)> = Vec::new();
        let mut unready: Vec<&PodState> = Vec::new();
        let mut missing: Vec<&PodState> = Vec::new();
        for pod in pods {
            if pod.terminating {
                continue;
            }
            let Some(usage) = pod.usage else {
                missing.push(pod);
                continue;
            };
            if target.resource == Resource::Cpu && self.cpu_unready(now, pod, &usage) {
                unready.push(pod);
                continue;
            }
            ready.push((pod, value_of(&usage)));
        }
        if ready.is_empty() {
            return Err("did not receive metrics for targeted pods (pods might be unready)".into());
        }
        if ready.iter().any(|(p, _)| request_of(p) <= 0) {
            return Err(format!(
                "missing request for {} in a targeted pod",
                target.resource.name()
            ));
        }
        let ratio_of = |values: &[(i64, i64)]| -> (f64, i64) {
            let used: i64 = values.iter().map(|(v, _)| v).sum();
            let requested: i64 = values.iter().map(|(_, r)| r).sum();
            let utilization = used.saturating_mul(100) / requested.max(1);
            (
                utilization as f64 / f64::from(target.average_utilization.max(1)),
                utilization,
            )
        };
        let mut values: Vec<(i64, i64)> = ready.iter().map(|(p, v)| (*v, request_of(p))).collect();
        let (usage_ratio, utilization) = ratio_of(&values);
        let proposal = |replicas: u32| MetricProposal {
            resource: target.resource,
            utilization_percent: utilization,
            target_percent: target.average_utilization,
            replicas,
        };
        let tolerance = self.settings.tolerance;
        let scale_up_with_unready = !unready.is_empty() && usage_ratio > 1.0;
        if !scale_up_with_unready && missing.is_empty() {
            if (1.0 - usage_ratio).abs() <= tolerance {
                return Ok(proposal(current));
            }
            return Ok(proposal(ceil_replicas(usage_ratio * ready.len() as f64)));
        }
        if !missing.is_empty() {
            if usage_ratio < 1.0 {
                // Scale-down: a pod without metrics is assumed to use its whole request (or the target,
                // if the target is above 100%), which damps the scale-down.
                let fallback = i64::from(target.average_utilization.max(100));
                values.extend(
                    missing
                        .iter()
                        .map(|p| (request_of(p) * fallback / 100, request_of(p))),
                );
            } else if usage_ratio > 1.0 {
                // Scale-up: assumed idle, which damps the scale-up.
                values.extend(missing.iter().map(|p| (0, request_of(p))));
            }
        }
        if scale_up_with_unready {
            values.extend(unready.iter().map(|p| (0, request_of(p))));
        }
        let (new_ratio, _) = ratio_of(&values);
        if (1.0 - new_ratio).abs() <= tolerance
            || (usage_ratio < 1.0 && new_ratio > 1.0)
            || (usage_ratio > 1.0 && new_ratio < 1.0)
        {
            return Ok(proposal(current));
        }
        let replicas = ceil_replicas(new_ratio * values.len() as f64);
        if (new_ratio < 1.0 && replicas > current) || (new_ratio > 1.0 && replicas < current) {
            return Ok(proposal(current));
        }
        Ok(proposal(replicas))
    }

    /// Whether a pod's CPU sample is left out (groupPods): during the CPU initialisation period a pod
    /// counts only once it is ready and a full metric window has passed since; afterwards only a pod that
    /// has never been ready is left out.
    fn cpu_unready(&self, now: Duration, pod: &PodState, usage: &PodUsage) -> bool {
        let Some(changed) = pod.ready_changed_at else {
            return true;
        };
        if pod.started_at + self.settings.cpu_initialization_period > now {
            !pod.ready || usage.timestamp < changed + usage.window
        } else {
            !pod.ready && pod.started_at + self.settings.initial_readiness_delay > changed
        }
    }

    /// `normalizeDesiredReplicasWithBehaviors`: stabilisation, then the policies' rate limits.
    fn normalize_with_behaviors(
        &mut self,
        now: Duration,
        current: u32,
        desired: u32,
    ) -> (u32, String) {
        // maybeInitScaleDownStabilizationWindow: a fresh controller does not scale down at once.
        if self.recommendations.is_none() {
            self.recommendations = Some(
                if self.spec.behavior.scale_down.stabilization_window > Duration::ZERO {
                    vec![TimestampedRecommendation {
                        replicas: current,
                        at: now,
                    }]
                } else {
                    Vec::new()
                },
            );
        }
        let (stabilized, stabilize_reason) = self.stabilize(now, current, desired);
        let (limited, limit_reason) = self.apply_rate_limits(now, current, stabilized);
        let condition = if limited != stabilized {
            limit_reason
        } else if stabilized != desired {
            stabilize_reason
        } else {
            "DesiredWithinRange".into()
        };
        (limited, condition)
    }

    /// `stabilizeRecommendationWithBehaviors`: the lowest recommendation of the scale-up window and the
    /// highest of the scale-down window bound the result.
    fn stabilize(&mut self, now: Duration, current: u32, desired: u32) -> (u32, String) {
        let up_window = self.spec.behavior.scale_up.stabilization_window;
        let down_window = self.spec.behavior.scale_down.stabilization_window;
        let up_cutoff = now.checked_sub(up_window);
        let down_cutoff = now.checked_sub(down_window);
        // `t.After(cutoff)` and `t.Before(cutoff)`; a cutoff before the epoch admits everything.
        let after = |t: Duration, cutoff: Option<Duration>| cutoff.is_none_or(|c| t > c);
        let before = |t: Duration, cutoff: Option<Duration>| cutoff.is_some_and(|c| t < c);
        let mut up = desired;
        let mut down = desired;
        let mut old_sample = None;
        let history = self.recommendations.get_or_insert_with(Vec::new);
        for (i, rec) in history.iter().enumerate() {
            if after(rec.at, up_cutoff) {
                up = up.min(rec.replicas);
            }
            if after(rec.at, down_cutoff) {
                down = down.max(rec.replicas);
            }
            if before(rec.at, up_cutoff) && before(rec.at, down_cutoff) {
                old_sample = Some(i);
            }
        }
        let mut recommendation = current;
        if recommendation < up {
            recommendation = up;
        }
        if recommendation > down {
            recommendation = down;
        }
        let entry = TimestampedRecommendation {
            replicas: desired,
            at: now,
        };
        match old_sample {
            Some(i) => history[i] = entry,
            None => history.push(entry),
        }
        let reason = if recommendation == desired {
            "ReadyForNewScale"
        } else if recommendation < desired {
            "ScaleUpStabilized"
        } else {
            "ScaleDownStabilized"
        };
        (recommendation, reason.into())
    }

    /// `convertDesiredReplicasWithBehaviorRate`: the policies' limits, then min/max.
    fn apply_rate_limits(&self, now: Duration, current: u32, desired: u32) -> (u32, String) {
        let min = self.spec.min_replicas;
        let max = self.spec.max_replicas;
        if desired > current {
            let limit = self.scale_limit(now, current, true).max(current);
            let (allowed, reason) = if max > limit {
                (limit, "ScaleUpLimit")
            } else {
                (max, "TooManyReplicas")
            };
            if desired > allowed {
                return (allowed, reason.into());
            }
        } else if desired < current {
            let limit = self.scale_limit(now, current, false).min(current);
            let (allowed, reason) = if min < limit {
                (limit, "ScaleDownLimit")
            } else {
                (min, "TooFewReplicas")
            };
            if desired < allowed {
                return (allowed, reason.into());
            }
        }
        (desired, "DesiredWithinRange".into())
    }

    fn change_in_period(events: &[ScaleEvent], now: Duration, period: Duration) -> i64 {
        let cutoff = now.checked_sub(period);
        events
            .iter()
            .filter(|e| cutoff.is_none_or(|c| e.at > c))
            .map(|e| i64::from(e.change))
            .sum()
    }

    /// `calculateScaleUpLimitWithScalingRules` (`up`) and `calculateScaleDownLimitWithBehaviors`: what
    /// each policy allows from the count its period started with, combined by `selectPolicy`.
    fn scale_limit(&self, now: Duration, current: u32, up: bool) -> u32 {
        let rules = if up {
            &self.spec.behavior.scale_up
        } else {
            &self.spec.behavior.scale_down
        };
        // For scaling down the largest change is the smallest result.
        let pick: fn(i64, i64) -> i64 = match (rules.select_policy, up) {
            (SelectPolicy::Disabled, _) => return current,
            (SelectPolicy::Min, true) | (SelectPolicy::Max, false) => i64::min,
            (SelectPolicy::Max, true) | (SelectPolicy::Min, false) => i64::max,
        };
        let mut result: Option<i64> = None;
        for policy in &rules.policies {
            let added = Self::change_in_period(&self.scale_up_events, now, policy.period);
            let deleted = Self::change_in_period(&self.scale_down_events, now, policy.period);
            let start = i64::from(current) - added + deleted;
            let percent = f64::from(policy.value) / 100.0;
            let proposed = match (policy.kind, up) {
                (PolicyKind::Pods, true) => start + i64::from(policy.value),
                (PolicyKind::Pods, false) => start - i64::from(policy.value),
                // Rounded up, or a small deployment could never grow.
                (PolicyKind::Percent, true) => (start as f64 * (1.0 + percent)).ceil() as i64,
                // Truncated, as Kubernetes does (int32 conversion).
                (PolicyKind::Percent, false) => (start as f64 * (1.0 - percent)) as i64,
            };
            result = Some(result.map_or(proposed, |r| pick(r, proposed)));
        }
        result.map_or(current, clamp_u32)
    }

    /// `storeScaleEvent`: remembered for as long as the longest policy period of its direction.
    fn store_scale_event(&mut self, now: Duration, previous: u32, new: u32) {
        let (events, rules) = if new > previous {
            (&mut self.scale_up_events, &self.spec.behavior.scale_up)
        } else {
            (&mut self.scale_down_events, &self.spec.behavior.scale_down)
        };
        let keep = rules.longest_period();
        events.retain(|e| now.checked_sub(keep).is_none_or(|c| e.at > c));
        events.push(ScaleEvent {
            change: new.abs_diff(previous),
            at: now,
        });
    }
}

/// Durations in reports as seconds (`60.0`), not serde's `{secs, nanos}`.
pub fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn ceil_replicas(x: f64) -> u32 {
    if x.is_finite() && x > 0.0 {
        clamp_u32(x.ceil() as i64)
    } else {
        0
    }
}

fn clamp_u32(x: i64) -> u32 {
    u32::try_from(x.max(0)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
