//! The stand-in for metrics-server: what the HPA reads of each pod. CPU is the cgroup's cumulative usage
//! averaged over a window (metrics-server's default resolution, 15 s, on the drill's clock), memory the
//! process's resident set; a pod with less than half a window of samples has no usage yet, as a new pod
//! has none in the cluster. The replica lifecycle lives in [`crate::cluster`]; this is only the reading.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::cgroup::CpuStats;
use crate::hpa::PodUsage;

/// The window metrics-server averages a pod's CPU over (its default resolution, 15 s), on the drill's clock.
pub fn metric_window(time_scale: f64) -> Duration {
    Duration::from_secs(15)
        .mul_f64(time_scale)
        .max(Duration::from_secs(1))
}

/// CPU used per pod between two cumulative readings, as a fraction of `limit_cores`.
pub fn cpu_ratio(
    before: &CpuStats,
    after: &CpuStats,
    seconds: f64,
    limit_cores: f64,
) -> Option<f64> {
    (seconds > 0.0 && limit_cores > 0.0)
        .then(|| (after.usage_seconds - before.usage_seconds).max(0.0) / seconds / limit_cores)
}

/// One pod's readings: cumulative CPU seconds over the last two windows, and its memory now.
#[derive(Debug, Default)]
pub(crate) struct UsageWindow {
    cpu: VecDeque<(Instant, f64)>,
    /// Resident memory at the last reading, bytes.
    pub(crate) memory_bytes: u64,
}

impl UsageWindow {
    /// Adds a reading taken at `at`, dropping those older than two windows.
    pub(crate) fn record(
        &mut self,
        at: Instant,
        usage_seconds: f64,
        memory_bytes: u64,
        window: Duration,
    ) {
        self.cpu.push_back((at, usage_seconds));
        while self
            .cpu
            .front()
            .is_some_and(|(t, _)| at.duration_since(*t) > window * 2)
        {
            self.cpu.pop_front();
        }
        self.memory_bytes = memory_bytes;
    }

    /// What metrics-server would report: CPU averaged over the newest readings that fit in `window`,
    /// stamped on the HPA's clock (`clock_now` is that clock at `now`). `None` before half a window.
    pub(crate) fn usage(
        &self,
        window: Duration,
        now: Instant,
        clock_now: Duration,
    ) -> Option<PodUsage> {
        let (t_last, u_last) = *self.cpu.back()?;
        let (t_first, u_first) = *self
            .cpu
            .iter()
            .find(|(t, _)| t_last.duration_since(*t) <= window)?;
        let span = t_last.duration_since(t_first);
        if span < window / 2 {
            return None;
        }
        let cores = (u_last - u_first).max(0.0) / span.as_secs_f64();
        Some(PodUsage {
            cpu_millis: (cores * 1000.0).round() as i64,
            memory_bytes: self.memory_bytes as i64,
            timestamp: clock_now.saturating_sub(now.duration_since(t_last)),
            window: span,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_is_averaged_over_the_window_and_absent_before_half_of_it() {
        let window = Duration::from_secs(10);
        let t0 = Instant::now();
        let mut w = UsageWindow::default();
        w.record(t0, 1.0, 1 << 20, window);
        w.record(t0 + Duration::from_secs(4), 1.2, 1 << 20, window);
        // Four seconds of a ten-second window: no usage yet.
        assert!(
            w.usage(
                window,
                t0 + Duration::from_secs(4),
                Duration::from_secs(100)
            )
            .is_none()
        );
        // 0.05 cores for 6 more seconds, then 0.5 cores for 10: the window covers only the last 10 s.
        w.record(t0 + Duration::from_secs(10), 1.5, 2 << 20, window);
        w.record(t0 + Duration::from_secs(20), 6.5, 3 << 20, window);
        let u = w
            .usage(
                window,
                t0 + Duration::from_secs(21),
                Duration::from_secs(100),
            )
            .expect("a full window");
        assert_eq!(u.cpu_millis, 500);
        assert_eq!(u.memory_bytes, 3 << 20);
        assert_eq!(u.window, Duration::from_secs(10));
        // Stamped when the last reading was taken, one second before "now" on the HPA's clock.
        assert_eq!(u.timestamp, Duration::from_secs(99));
        // Readings older than two windows are dropped.
        w.record(t0 + Duration::from_secs(35), 7.0, 3 << 20, window);
        assert_eq!(w.cpu.len(), 2);
    }

    #[test]
    fn cpu_ratio_is_usage_over_time_over_the_limit() {
        let a = CpuStats {
            usage_seconds: 1.0,
            ..Default::default()
        };
        let b = CpuStats {
            usage_seconds: 1.5,
            ..Default::default()
        };
        assert_eq!(cpu_ratio(&a, &b, 2.0, 0.5), Some(0.5));
        assert_eq!(cpu_ratio(&a, &b, 0.0, 0.5), None);
    }
}
