//! What an attack measured: live counters per phase, the final per-phase table and its JSON form.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::phases::{Phase, format_duration};

/// Highest latency the histogram resolves: one minute, in microseconds.
const MAX_LATENCY_US: u64 = 60_000_000;

/// The live counters of one phase, shared with delivery callbacks and HTTP tasks.
pub struct PhaseStats {
    /// 1-based phase number.
    pub number: usize,
    /// What the phase was asked to do.
    pub phase: Phase,
    started: Instant,
    sent: AtomicU64,
    delivered: AtomicU64,
    errors: Mutex<BTreeMap<String, u64>>,
    latency_us: Mutex<Option<Histogram<u64>>>,
    per_second: Mutex<Vec<u64>>,
    finished: Mutex<Option<Finished>>,
}

/// Counters frozen when the phase's sending ended.
#[derive(Clone, Copy)]
struct Finished {
    elapsed: Duration,
    delivered: u64,
}

impl PhaseStats {
    /// Counters for phase `number`, starting now.
    pub fn new(number: usize, phase: Phase) -> Self {
        Self {
            number,
            phase,
            started: Instant::now(),
            sent: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            errors: Mutex::new(BTreeMap::new()),
            latency_us: Mutex::new(Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).ok()),
            per_second: Mutex::new(Vec::new()),
            finished: Mutex::new(None),
        }
    }

    /// When the phase started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// A message was handed to the client at `at`.
    pub fn record_sent(&self, at: Instant) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        let second = at.saturating_duration_since(self.started).as_secs() as usize;
        if let Ok(mut buckets) = self.per_second.lock() {
            if buckets.len() <= second {
                buckets.resize(second + 1, 0);
            }
            buckets[second] += 1;
        }
    }

    /// The broker (or API) acknowledged a message `latency` after it was sent.
    pub fn record_delivered(&self, latency: Duration) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        let us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        if let Ok(mut guard) = self.latency_us.lock()
            && let Some(h) = guard.as_mut()
        {
            let _ = h.record(us);
        }
    }

    /// A message was lost for `reason` (not handed over, or not acknowledged).
    pub fn record_error(&self, reason: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            *errors.entry(reason.to_owned()).or_insert(0) += 1;
        }
    }

    /// Messages handed over so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    /// Messages acknowledged so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Errors so far.
    pub fn errors(&self) -> u64 {
        self.errors.lock().map_or(0, |e| e.values().sum())
    }

    /// Marks the end of sending: the achieved rate is measured over `elapsed`, and the delivered rate
    /// counts what was acknowledged by now (the sustained throughput, not the client's buffer).
    pub fn finish(&self, elapsed: Duration) {
        if let Ok(mut f) = self.finished.lock() {
            *f = Some(Finished {
                elapsed,
                delivered: self.delivered(),
            });
        }
    }

    /// The phase's results (call after every delivery is settled for final numbers).
    pub fn report(&self) -> PhaseReport {
        let finished = self.finished.lock().ok().and_then(|f| *f);
        let elapsed = finished.map_or_else(|| self.started.elapsed(), |f| f.elapsed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let sent = self.sent();
        let delivered_in_time = finished.map_or_else(|| self.delivered(), |f| f.delivered);
        let target = self.phase.rate.per_second();
        let achieved = sent as f64 / secs;
        let per_second = self
            .per_second
            .lock()
            .map(|b| b.clone())
            .unwrap_or_default();
        let latency = self
            .latency_us
            .lock()
            .ok()
            .and_then(|h| h.as_ref().map(LatencyMs::from_histogram))
            .unwrap_or_default();
        PhaseReport {
            phase: self.number,
            target_rate: target,
            planned_duration_s: self.phase.duration.as_secs_f64(),
            elapsed_s: elapsed.as_secs_f64(),
            sent,
            delivered: self.delivered(),
            errors: self.errors(),
            errors_by_reason: self.errors.lock().map(|e| e.clone()).unwrap_or_default(),
            achieved_rate: achieved,
            delivered_rate: delivered_in_time as f64 / secs,
            accuracy_pct: target.map(|t| 100.0 * achieved / t),
            worst_second_deviation_pct: target.and_then(|t| worst_second(&per_second, t)),
            latency_ms: latency,
        }
    }
}

/// The largest deviation of a whole second's count from the target, in percent of the target; the last
/// second is left out (it may be partial).
fn worst_second(per_second: &[u64], target: f64) -> Option<f64> {
    let whole = per_second.len().checked_sub(1)?;
    per_second[..whole]
        .iter()
        .map(|&n| 100.0 * (n as f64 - target).abs() / target)
        .reduce(f64::max)
}

/// Delivery latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Worst.
    pub max: f64,
}

impl LatencyMs {
    fn from_histogram(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Self {
            p50: ms(h.value_at_quantile(0.50)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            max: ms(h.max()),
        }
    }
}

/// One phase's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// 1-based phase number.
    pub phase: usize,
    /// Target rate, msg/s (`None` for `max`).
    pub target_rate: Option<f64>,
    /// Planned duration, seconds.
    pub planned_duration_s: f64,
    /// Time from the phase start to its last message handed over (or its planned end, if later).
    pub elapsed_s: f64,
    /// Messages handed to the client (Kafka producer queue or HTTP).
    pub sent: u64,
    /// Messages acknowledged (broker ack or 2xx), whenever the ack came.
    pub delivered: u64,
    /// Messages lost: not handed over or not acknowledged.
    pub errors: u64,
    /// Errors by reason (`queue_full`, `http_503`, `timeout`, ...).
    pub errors_by_reason: BTreeMap<String, u64>,
    /// `sent / elapsed_s`.
    pub achieved_rate: f64,
    /// Acknowledged within the phase / `elapsed_s`: the sustained rate.
    pub delivered_rate: f64,
    /// `achieved_rate / target_rate`, percent.
    pub accuracy_pct: Option<f64>,
    /// Largest deviation of one whole second from the target, percent.
    pub worst_second_deviation_pct: Option<f64>,
    /// Send → acknowledgement latency.
    pub latency_ms: LatencyMs,
}

/// The closed loop's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertReport {
    /// The awaited alert.
    pub alert: String,
    /// Alertmanager polled.
    pub alertmanager: String,
    /// Whether it fired before the attack ended.
    pub fired: bool,
    /// Seconds from the attack's start to the first poll that saw it firing.
    pub time_to_alert_s: Option<f64>,
    /// Target rate of the phase running when it fired, msg/s.
    pub triggering_rate: Option<f64>,
    /// That phase's number.
    pub triggering_phase: Option<usize>,
}

/// The labels an attack produced (`fraud-labels`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelReport {
    /// Topic.
    pub topic: String,
    /// Label delay in event time (`3d`).
    pub delay: String,
    /// Labels handed to the producer.
    pub sent: u64,
    /// Labels acknowledged by the broker.
    pub delivered: u64,
    /// Labels lost (not handed over or not acknowledged).
    pub errors: u64,
    /// Labels not due when the attack ended (the clock never passed them): not sent.
    pub not_due: u64,
}

/// Everything an attack measured; written with `--results` for pipelines to read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttackReport {
    /// `kafka` or `http`.
    pub mode: String,
    /// Topic or URL.
    pub destination: String,
    /// `simulator (seed N)` or the replayed file.
    pub source: String,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time of the whole attack, seconds.
    pub duration_s: f64,
    /// True if Ctrl-C/SIGTERM ended the attack early.
    pub interrupted: bool,
    /// Per phase.
    pub phases: Vec<PhaseReport>,
    /// The closed loop's outcome, when `--until-alert` was given.
    pub alert: Option<AlertReport>,
    /// The labels produced; `None` when the attack sent none (`--labels off`, or `--http` without
    /// `--labels on`).
    #[serde(default)]
    pub labels: Option<LabelReport>,
}

impl AttackReport {
    /// Messages handed over in all phases.
    pub fn total_sent(&self) -> u64 {
        self.phases.iter().map(|p| p.sent).sum()
    }

    /// Messages acknowledged in all phases.
    pub fn total_delivered(&self) -> u64 {
        self.phases.iter().map(|p| p.delivered).sum()
    }

    /// Errors in all phases.
    pub fn total_errors(&self) -> u64 {
        self.phases.iter().map(|p| p.errors).sum()
    }

    /// The final table: target vs achieved per phase, errors, delivery latency, and the alert outcome.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:>5} {:>9} {:>8} {:>10} {:>10} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "phase",
            "target/s",
            "duration",
            "achieved/s",
            "acked/s",
            "accuracy",
            "sent",
            "acked",
            "errors",
            "p50 ms",
            "p99 ms",
            "max ms"
        );
        for p in &self.phases {
            let target = p
                .target_rate
                .map_or_else(|| "max".to_owned(), |t| format!("{t:.0}"));
            let accuracy = p
                .accuracy_pct
                .map_or_else(|| "-".to_owned(), |a| format!("{a:.2}%"));
            let _ = writeln!(
                out,
                "{:>5} {:>9} {:>8} {:>10.1} {:>10.1} {:>8} {:>10} {:>10} {:>8} {:>8.2} {:>8.2} {:>8.2}",
                p.phase,
                target,
                format_duration(Duration::from_secs_f64(p.planned_duration_s)),
                p.achieved_rate,
                p.delivered_rate,
                accuracy,
                p.sent,
                p.delivered,
                p.errors,
                p.latency_ms.p50,
                p.latency_ms.p99,
                p.latency_ms.max
            );
        }
        let _ = writeln!(
            out,
            "total: {} sent, {} acknowledged, {} errors in {:.1} s ({} to {}){}",
            self.total_sent(),
            self.total_delivered(),
            self.total_errors(),
            self.duration_s,
            self.mode,
            self.destination,
            if self.interrupted {
                "; interrupted"
            } else {
                ""
            }
        );
        match &self.labels {
            Some(l) => {
                let _ = writeln!(
                    out,
                    "labels: {} sent to {} after {} of event time, {} acknowledged, {} errors; {} not yet due at the end (not sent)",
                    l.sent, l.topic, l.delay, l.delivered, l.errors, l.not_due
                );
            }
            None => {
                let _ = writeln!(out, "labels: none sent");
            }
        }
        for p in self.phases.iter().filter(|p| p.errors > 0) {
            let reasons: Vec<String> = p
                .errors_by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(out, "phase {} errors: {}", p.phase, reasons.join(", "));
        }
        if let Some(a) = &self.alert {
            match (a.fired, a.time_to_alert_s, a.triggering_rate) {
                (true, Some(t), Some(rate)) => {
                    let _ = writeln!(
                        out,
                        "alert {} fired {t:.1} s after the start, during phase {} at {rate:.0} msg/s",
                        a.alert,
                        a.triggering_phase.unwrap_or(0)
                    );
                }
                _ => {
                    let _ = writeln!(out, "alert {} did not fire", a.alert);
                }
            }
        }
        out
    }
}

/// A snapshot for the live progress line.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Current phase, 1-based.
    pub phase: usize,
    /// Phases planned (`None` while a closed loop escalates past the list).
    pub phases: Option<usize>,
    /// Target rate (`None` for `max`).
    pub target_rate: Option<f64>,
    /// Time into the phase.
    pub elapsed: Duration,
    /// Planned phase duration.
    pub duration: Duration,
    /// Sent in this phase.
    pub sent: u64,
    /// Acknowledged in this phase.
    pub delivered: u64,
    /// Errors in this phase.
    pub errors: u64,
}

impl Progress {
    /// `phase 2/4  200 msg/s → 199.8 sent/s  acked 11990  errors 0  1:00/5:00`.
    pub fn line(&self) -> String {
        let of = self.phases.map_or_else(String::new, |n| format!("/{n}"));
        let target = self
            .target_rate
            .map_or_else(|| "max".to_owned(), |t| format!("{t:.0}"));
        let rate = self.sent as f64 / self.elapsed.as_secs_f64().max(1e-3);
        let mmss = |d: Duration| format!("{}:{:02}", d.as_secs() / 60, d.as_secs() % 60);
        format!(
            "phase {}{of}  target {target} msg/s  achieved {rate:.1}/s  sent {}  acked {}  errors {}  {}/{}",
            self.phase,
            self.sent,
            self.delivered,
            self.errors,
            mmss(self.elapsed),
            mmss(self.duration)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::phases::Rate;

    #[test]
    fn a_phase_reports_target_vs_achieved() {
        let phase = Phase {
            rate: Rate::PerSecond(100.0),
            duration: Duration::from_secs(2),
        };
        let stats = PhaseStats::new(1, phase);
        let t0 = stats.started();
        for i in 0..200u64 {
            stats.record_sent(t0 + Duration::from_millis(i * 10));
            if i % 50 != 0 {
                stats.record_delivered(Duration::from_millis(2));
            } else {
                stats.record_error("queue_full");
            }
        }
        stats.finish(Duration::from_secs(2));
        let r = stats.report();
        assert_eq!((r.sent, r.delivered, r.errors), (200, 196, 4));
        assert_eq!(r.achieved_rate, 100.0);
        assert_eq!(r.accuracy_pct, Some(100.0));
        assert_eq!(r.worst_second_deviation_pct, Some(0.0));
        assert_eq!(r.errors_by_reason.get("queue_full"), Some(&4));
        assert!((r.latency_ms.p50 - 2.0).abs() < 0.01, "{:?}", r.latency_ms);
        let report = AttackReport {
            mode: "kafka".into(),
            destination: "transactions-input".into(),
            source: "simulator".into(),
            started_at: String::new(),
            duration_s: 2.0,
            interrupted: false,
            phases: vec![r],
            alert: Some(AlertReport {
                alert: "AdminNotification_MaxScaleHighCPU".into(),
                alertmanager: "http://am".into(),
                fired: true,
                time_to_alert_s: Some(1.5),
                triggering_rate: Some(100.0),
                triggering_phase: Some(1),
            }),
            labels: Some(LabelReport {
                topic: "fraud-labels".into(),
                delay: "3d".into(),
                sent: 150,
                delivered: 150,
                errors: 0,
                not_due: 50,
            }),
        };
        let table = report.table();
        assert!(table.contains("100.00%"), "{table}");
        assert!(
            table.contains("labels: 150 sent to fraud-labels after 3d of event time, 150 acknowledged, 0 errors; 50 not yet due"),
            "{table}"
        );
        assert!(table.contains("queue_full 4"), "{table}");
        assert!(
            table.contains("fired 1.5 s after the start, during phase 1 at 100 msg/s"),
            "{table}"
        );
        let json = serde_json::to_string(&report).unwrap();
        let back: AttackReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, report);
    }

    #[test]
    fn the_progress_line_reads_naturally() {
        let p = Progress {
            phase: 2,
            phases: Some(4),
            target_rate: Some(200.0),
            elapsed: Duration::from_secs(60),
            duration: Duration::from_secs(300),
            sent: 12_000,
            delivered: 11_990,
            errors: 0,
        };
        assert_eq!(
            p.line(),
            "phase 2/4  target 200 msg/s  achieved 200.0/s  sent 12000  acked 11990  errors 0  1:00/5:00"
        );
    }
}
