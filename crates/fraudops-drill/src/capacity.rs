//! The capacity statement: what one prediction costs in CPU at the attack's rates, measured from the
//! replicas' cgroups while the drill ran, and from it the attack rates at which an overlay's replicas cross
//! the HPA's CPU target and the admin alert's CPU line. This is what tells whether an overlay can tell the
//! mission's story at the seeds' rates, instead of prose in a manifest comment.
//!
//! The cost is fitted, not divided: a replica burns some CPU with no traffic at all (scrapes, the log
//! flusher, the runtime's timers), so `cpu = idle + cost × requests/s` per replica, by least squares over
//! the samples where no replica was near its limit. A throttled replica answers requests in bursts, which
//! is cheaper per request and would bias the cost low: those samples are left out.

use serde::Serialize;

use crate::hpa::{HpaSpec, Resource};
use crate::report::Sample;

/// Samples whose busiest ready replica used more than this fraction of its limit are not fitted: close to
/// the CFS quota a replica is throttled part of each period and its cost per request changes.
pub const UNTHROTTLED_BELOW: f64 = 0.7;

/// At least this many samples with load, over at least this spread of per-replica rates (max / min), for a
/// line; fewer or narrower give the cost through the origin (idle CPU folded into the cost).
const MIN_POINTS_FOR_LINE: usize = 4;
const MIN_SPREAD_FOR_LINE: f64 = 1.5;

/// The CPU model fitted from one drill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuCost {
    /// CPU seconds one prediction costs a replica at these rates (the slope).
    pub cpu_seconds_per_request: f64,
    /// Cores a replica uses with no predictions (the intercept; 0 when fitted through the origin).
    pub idle_cpu_cores: f64,
    /// Samples fitted.
    pub samples: usize,
    /// The per-replica rates fitted over, predictions per second: lowest and highest.
    pub per_replica_tps_min: f64,
    /// Highest.
    pub per_replica_tps_max: f64,
}

/// Fits [`CpuCost`] from the drill's samples: per sample, predictions per second per ready replica against
/// the ready replicas' mean CPU in cores (`limit_cores` × their ratio of the limit). `None` without a
/// sample with load below [`UNTHROTTLED_BELOW`].
pub fn fit_cpu_cost(samples: &[Sample], limit_cores: f64) -> Option<CpuCost> {
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter_map(|s| {
            let ready: Vec<f64> = s.per_pod.iter().filter(|p| p.2).map(|p| p.1).collect();
            if ready.is_empty() || s.scored_tps <= 0.0 || s.errors_per_s > 0.0 {
                return None;
            }
            if ready.iter().any(|r| *r >= UNTHROTTLED_BELOW) {
                return None;
            }
            let n = ready.len() as f64;
            Some((
                s.scored_tps / n,
                ready.iter().sum::<f64>() / n * limit_cores,
            ))
        })
        .collect();
    let (lo, hi) = points.iter().fold((f64::INFINITY, 0.0_f64), |(lo, hi), p| {
        (lo.min(p.0), hi.max(p.0))
    });
    let through_origin = || {
        let sx: f64 = points.iter().map(|p| p.0).sum();
        let sy: f64 = points.iter().map(|p| p.1).sum();
        (sx > 0.0 && sy > 0.0).then_some((sy / sx, 0.0))
    };
    let (cost, idle) = if points.len() >= MIN_POINTS_FOR_LINE && hi >= lo * MIN_SPREAD_FOR_LINE {
        let n = points.len() as f64;
        let mx = points.iter().map(|p| p.0).sum::<f64>() / n;
        let my = points.iter().map(|p| p.1).sum::<f64>() / n;
        let sxy: f64 = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        let sxx: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        // A negative intercept or slope is noise, not physics: fall back to the plain ratio.
        if slope > 0.0 && intercept >= 0.0 {
            (slope, intercept)
        } else {
            through_origin()?
        }
    } else {
        through_origin()?
    };
    Some(CpuCost {
        cpu_seconds_per_request: cost,
        idle_cpu_cores: idle,
        samples: points.len(),
        per_replica_tps_min: lo,
        per_replica_tps_max: hi,
    })
}

/// What an overlay's API Deployment and HPA can carry, from a [`CpuCost`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverlayCapacity {
    /// The overlay (relative to `deploy/`), or the manifest file.
    pub overlay: String,
    /// Per replica CPU request, cores (what the HPA's utilisation is measured against).
    pub cpu_request_cores: f64,
    /// Per replica CPU limit, cores (the CFS quota; what the admin alert's ratio is measured against).
    pub cpu_limit_cores: f64,
    /// `minReplicas`.
    pub min_replicas: u32,
    /// `maxReplicas`.
    pub max_replicas: u32,
    /// The HPA's CPU target, fraction of the request.
    pub hpa_cpu_target: f64,
    /// The admin alert's line, fraction of the limit.
    pub admin_alert_cpu_ratio: f64,
    /// The attack rate at which `minReplicas` replicas reach the CPU target: above it the HPA scales up
    /// (it acts once the ratio is beyond its 10% tolerance).
    pub hpa_scale_up_tps: f64,
    /// The attack rate at which `maxReplicas` replicas use the alert's share of their limit: above it,
    /// held for the alert's `for:`, the administrator is notified.
    pub admin_alert_tps: f64,
}

impl OverlayCapacity {
    /// The two rates of `hpa`'s Deployment with these resources, at `cost`. `None` if the HPA has no CPU
    /// target.
    pub fn new(
        overlay: String,
        (request, limit): (f64, f64),
        hpa: &HpaSpec,
        admin_alert_cpu_ratio: f64,
        cost: &CpuCost,
    ) -> Option<Self> {
        let target = hpa
            .metrics
            .iter()
            .find(|m| m.resource == Resource::Cpu)
            .map(|m| f64::from(m.average_utilization) / 100.0)?;
        let rate = |replicas: u32, cores: f64| {
            (f64::from(replicas) * (cores - cost.idle_cpu_cores) / cost.cpu_seconds_per_request)
                .max(0.0)
        };
        Some(Self {
            overlay,
            cpu_request_cores: request,
            cpu_limit_cores: limit,
            min_replicas: hpa.min_replicas,
            max_replicas: hpa.max_replicas,
            hpa_cpu_target: target,
            admin_alert_cpu_ratio,
            hpa_scale_up_tps: rate(hpa.min_replicas, target * request),
            admin_alert_tps: rate(hpa.max_replicas, admin_alert_cpu_ratio * limit),
        })
    }
}

/// `summary.json`'s `capacity`: the measured cost, the two rates as the drill ran (scaled CPU, if it was),
/// and per overlay from its manifests.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    /// CPU seconds per prediction, from the replicas' cgroups during this attack.
    pub cpu_seconds_per_request: f64,
    /// Cores per replica with no load.
    pub idle_cpu_cores: f64,
    /// The fit behind the two numbers above.
    pub fit: CpuCost,
    /// The overlay the drill ran.
    pub overlay: String,
    /// Its `hpa_scale_up_tps` with the CPU the replicas really had in this drill.
    pub hpa_scale_up_tps: f64,
    /// Its `admin_alert_tps` with the CPU the replicas really had in this drill.
    pub admin_alert_tps: f64,
    /// Per overlay, from its manifests (unscaled): the one the drill ran, then production.
    pub overlays: Vec<OverlayCapacity>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hpa::ResourceTarget;
    use crate::monitoring::AlertState;

    fn sample(tps: f64, ratios: &[f64]) -> Sample {
        Sample {
            t_seconds: 0.0,
            target_tps: tps,
            achieved_tps: tps,
            scored_tps: tps,
            errors_per_s: 0.0,
            p95_ms: None,
            replicas_current: ratios.len() as u32,
            replicas_desired: ratios.len() as u32,
            replicas_ready: ratios.len() as u32,
            cpu_ratio_max: ratios.iter().copied().reduce(f64::max),
            rule_cpu_ratio_max: None,
            queue_length: None,
            alert_state: AlertState::Inactive,
            per_pod: ratios
                .iter()
                .enumerate()
                .map(|(i, r)| (format!("pod-{i}"), *r, true))
                .collect(),
        }
    }

    /// Four replicas with a 25m limit, 1m idle and 100 µs per request.
    fn ratio(tps_per_replica: f64) -> f64 {
        (0.001 + 100e-6 * tps_per_replica) / 0.025
    }

    #[test]
    fn fits_idle_and_cost_from_unthrottled_samples_only() {
        let mut samples: Vec<Sample> = [50.0, 200.0, 300.0, 400.0, 500.0]
            .iter()
            .map(|tps| sample(*tps, &[ratio(tps / 4.0); 4]))
            .collect();
        // Saturated at 1500 tx/s: cheaper per request in bursts; must not pull the cost down.
        samples.push(sample(1500.0, &[1.0; 4]));
        // No load, a sample with errors, and one with no ready replica: nothing to fit.
        samples.push(sample(0.0, &[ratio(0.0); 4]));
        let mut failing = sample(400.0, &[ratio(100.0); 4]);
        failing.errors_per_s = 3.0;
        samples.push(failing);
        samples.push(sample(100.0, &[]));
        let fit = fit_cpu_cost(&samples, 0.025).expect("fits");
        assert_eq!(fit.samples, 5);
        assert!(
            (fit.cpu_seconds_per_request - 100e-6).abs() < 1e-9,
            "{fit:?}"
        );
        assert!((fit.idle_cpu_cores - 0.001).abs() < 1e-9, "{fit:?}");
        assert_eq!(fit.per_replica_tps_min, 12.5);
        assert_eq!(fit.per_replica_tps_max, 125.0);
    }

    #[test]
    fn too_few_rates_for_a_line_give_the_ratio_through_the_origin() {
        let samples = vec![sample(200.0, &[0.6; 4]), sample(200.0, &[0.6; 4])];
        let fit = fit_cpu_cost(&samples, 0.025).expect("fits");
        assert_eq!(fit.idle_cpu_cores, 0.0);
        assert!((fit.cpu_seconds_per_request - 0.6 * 0.025 / 50.0).abs() < 1e-12);
        assert_eq!(fit_cpu_cost(&[sample(1500.0, &[0.95; 6])], 0.025), None);
        assert_eq!(fit_cpu_cost(&[], 0.025), None);
    }

    #[test]
    fn the_two_rates_follow_the_requests_limits_and_replica_counts() {
        let hpa = HpaSpec {
            name: "fraudops-api".into(),
            target: "fraudops-api".into(),
            min_replicas: 4,
            max_replicas: 6,
            metrics: vec![
                ResourceTarget {
                    resource: Resource::Memory,
                    average_utilization: 80,
                },
                ResourceTarget {
                    resource: Resource::Cpu,
                    average_utilization: 70,
                },
            ],
            behavior: Default::default(),
        };
        let cost = CpuCost {
            cpu_seconds_per_request: 100e-6,
            idle_cpu_cores: 0.001,
            samples: 10,
            per_replica_tps_min: 10.0,
            per_replica_tps_max: 100.0,
        };
        let c = OverlayCapacity::new("o".into(), (0.025, 0.025), &hpa, 0.8, &cost).expect("cpu");
        // 4 × (0.7 × 25m − 1m) / 100 µs and 6 × (0.8 × 25m − 1m) / 100 µs.
        assert!((c.hpa_scale_up_tps - 660.0).abs() < 1e-6, "{c:?}");
        assert!((c.admin_alert_tps - 1140.0).abs() < 1e-6, "{c:?}");
        let production =
            OverlayCapacity::new("p".into(), (0.25, 0.5), &hpa, 0.8, &cost).expect("cpu");
        assert!(production.hpa_scale_up_tps > 10.0 * c.hpa_scale_up_tps);
        let no_cpu = HpaSpec {
            metrics: vec![],
            ..hpa
        };
        assert_eq!(
            OverlayCapacity::new("o".into(), (0.025, 0.025), &no_cpu, 0.8, &cost),
            None
        );
    }
}
