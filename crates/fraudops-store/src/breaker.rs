//! [`Breaker`]: stops asking a store that is failing, judged on a failure rate, not on one call.
//!
//! Why not "pause after any failure" (what the store had): one slow call — a 25 ms deadline missed during a
//! fork for a snapshot, a network hiccup — then sent every request of a replica to scoring without history
//! for the pause, and the score recorder sharing that breaker lost those scores. Here a breaker opens when,
//! over the last second, at least [`MIN_CALLS`] calls were made and half of them failed, or after
//! [`CONSECUTIVE_FAILURES`] failures in a row (a quiet replica sees few calls); it stays open for
//! [`OPEN_FOR`], then lets one probe through: its success closes it, its failure opens it again. Each
//! operation has its own breaker (`client.rs`), so failing label writes do not stop lookups.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Calls in the window before a rate can open the breaker.
pub const MIN_CALLS: u32 = 20;
/// Share of failed calls in the window that opens it.
pub const FAILURE_RATE: f64 = 0.5;
/// Failures in a row that open it whatever the volume.
pub const CONSECUTIVE_FAILURES: u32 = 5;
/// How long it stays open before a probe.
pub const OPEN_FOR: Duration = Duration::from_millis(250);
/// Buckets of the window and their width: the last second, in tenths.
const BUCKETS: usize = 10;
const BUCKET_MS: u64 = 100;

/// A circuit breaker for one operation.
pub struct Breaker {
    state: Mutex<State>,
    epoch: Instant,
}

#[derive(Default)]
struct State {
    /// Per bucket: its index (ms / BUCKET_MS), calls, failures.
    buckets: [(u64, u32, u32); BUCKETS],
    consecutive: u32,
    /// Milliseconds since `epoch` until which calls are refused; 0: closed.
    open_until: u64,
    /// A probe is out (half-open): other calls are refused until it returns.
    probing: bool,
}

/// Whether a call may go ahead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Go ahead.
    Call,
    /// Go ahead as the probe of a half-open breaker.
    Probe,
    /// Refused: the breaker is open for about this long more.
    Refused(Duration),
}

impl Default for Breaker {
    fn default() -> Self {
        Self::new()
    }
}

impl Breaker {
    /// A closed breaker.
    pub fn new() -> Self {
        Self {
            state: Mutex::new(State::default()),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks before a call.
    pub fn admit(&self) -> Admit {
        self.admit_at(self.now_ms())
    }

    /// Records a call's outcome (`probe`: the call was admitted as [`Admit::Probe`]).
    pub fn record(&self, ok: bool, probe: bool) {
        self.record_at(self.now_ms(), ok, probe);
    }

    fn admit_at(&self, now: u64) -> Admit {
        let mut s = self.lock();
        if s.open_until == 0 {
            return Admit::Call;
        }
        if now < s.open_until {
            return Admit::Refused(Duration::from_millis(s.open_until - now));
        }
        if s.probing {
            return Admit::Refused(Duration::from_millis(BUCKET_MS));
        }
        s.probing = true;
        Admit::Probe
    }

    fn record_at(&self, now: u64, ok: bool, probe: bool) {
        let mut s = self.lock();
        if probe {
            s.probing = false;
            if ok {
                *s = State::default();
            } else {
                s.open_until = now + OPEN_FOR.as_millis() as u64;
            }
            return;
        }
        let index = now / BUCKET_MS;
        let slot = &mut s.buckets[(index % BUCKETS as u64) as usize];
        if slot.0 != index {
            *slot = (index, 0, 0);
        }
        slot.1 += 1;
        slot.2 += u32::from(!ok);
        s.consecutive = if ok { 0 } else { s.consecutive + 1 };
        if s.open_until != 0 {
            return;
        }
        let recent = |b: &&(u64, u32, u32)| index.saturating_sub(b.0) < BUCKETS as u64;
        let calls: u32 = s.buckets.iter().filter(recent).map(|b| b.1).sum();
        let failed: u32 = s.buckets.iter().filter(recent).map(|b| b.2).sum();
        let by_rate = calls >= MIN_CALLS && f64::from(failed) >= FAILURE_RATE * f64::from(calls);
        if by_rate || s.consecutive >= CONSECUTIVE_FAILURES {
            s.open_until = now + OPEN_FOR.as_millis() as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_failure_among_successes_keeps_it_closed() {
        let b = Breaker::new();
        for t in 0..100 {
            b.record_at(t * 5, t != 50, false);
        }
        assert_eq!(b.admit_at(500), Admit::Call);
    }

    #[test]
    fn half_the_calls_failing_opens_it_then_a_probe_decides() {
        let b = Breaker::new();
        for t in 0..20 {
            b.record_at(t, t % 2 == 0, false);
        }
        assert!(matches!(b.admit_at(30), Admit::Refused(_)));
        let after = 19 + OPEN_FOR.as_millis() as u64;
        assert_eq!(b.admit_at(after), Admit::Probe);
        assert!(
            matches!(b.admit_at(after), Admit::Refused(_)),
            "one probe at a time"
        );
        b.record_at(after + 1, false, true);
        assert!(
            matches!(b.admit_at(after + 2), Admit::Refused(_)),
            "the probe failed"
        );
        let later = after + 1 + OPEN_FOR.as_millis() as u64;
        assert_eq!(b.admit_at(later), Admit::Probe);
        b.record_at(later, true, true);
        assert_eq!(b.admit_at(later + 1), Admit::Call, "the probe succeeded");
    }

    #[test]
    fn a_few_failures_in_a_row_open_it_on_a_quiet_replica() {
        let b = Breaker::new();
        for i in 0..CONSECUTIVE_FAILURES - 1 {
            b.record_at(u64::from(i) * 1000, false, false);
            assert_eq!(b.admit_at(u64::from(i) * 1000 + 1), Admit::Call);
        }
        b.record_at(10_000, false, false);
        assert!(matches!(b.admit_at(10_001), Admit::Refused(_)));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let b = Breaker::new();
        for t in 0..15 {
            b.record_at(t, false, false);
            b.record_at(t, true, false);
        }
        // 30 calls, half failed, never two failures in a row: the rate opens it.
        assert!(matches!(b.admit_at(20), Admit::Refused(_)));
        let b = Breaker::new();
        for t in 0..9 {
            b.record_at(t, false, false);
            b.record_at(t, true, false);
        }
        // 18 calls: below MIN_CALLS. A second later, 10 more successes: the failures are gone.
        for t in 0..10 {
            b.record_at(2_000 + t, true, false);
        }
        assert_eq!(b.admit_at(2_010), Admit::Call);
    }
}
