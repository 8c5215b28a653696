//! Times a spinning loop did not run because the machine took its core away (a VM exit, the host
//! scheduling another guest, an interrupt storm). Shared by the benchmark's load generator, which
//! reports its own, and by `core_stalls`, which measures a core the server will use.

use std::time::Duration;

/// What counts as a stall: one turn of a spinning loop normally takes about a microsecond.
const STALL: Duration = Duration::from_micros(100);

/// The stalls one spinning loop saw.
#[derive(Default)]
pub struct Stalls {
    /// Their sum.
    pub total: Duration,
    /// The longest.
    pub longest: Duration,
    /// How many lasted over a millisecond: each alone delays a queue past a 1 ms latency goal.
    pub over_1ms: u64,
}

impl Stalls {
    /// One turn of the loop took `gap`.
    pub fn saw(&mut self, gap: Duration) {
        if gap > STALL {
            self.total += gap;
            self.longest = self.longest.max(gap);
            if gap > Duration::from_millis(1) {
                self.over_1ms += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_turns_over_100_us_count_and_those_over_1_ms_are_counted_apart() {
        let mut stalls = Stalls::default();
        for micros in [1, 50, 100, 250, 1_500, 4_000] {
            stalls.saw(Duration::from_micros(micros));
        }
        assert_eq!(stalls.total, Duration::from_micros(250 + 1_500 + 4_000));
        assert_eq!(stalls.longest, Duration::from_millis(4));
        assert_eq!(stalls.over_1ms, 2);
    }
}
