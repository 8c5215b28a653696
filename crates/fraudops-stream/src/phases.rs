//! The attack's phases: `rate:duration` lists such as the mission's `50:5m,200:5m,500:5m,1500:5m`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The mission's escalation profile (SPEC §5).
pub const DEFAULT_PHASES: &str = "50:5m,200:5m,500:5m,1500:5m";

/// How fast a phase sends.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// This many messages per second, on an exact schedule.
    PerSecond(f64),
    /// As fast as the client can hand messages over (`max`): measures the producer's ceiling.
    Max,
}

impl Rate {
    /// The target in messages per second, `None` for [`Rate::Max`].
    pub fn per_second(self) -> Option<f64> {
        match self {
            Self::PerSecond(r) => Some(r),
            Self::Max => None,
        }
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerSecond(r) => write!(f, "{r}"),
            Self::Max => f.write_str("max"),
        }
    }
}

/// One phase of an attack: a constant rate held for a duration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Messages per second.
    pub rate: Rate,
    /// How long the rate is held.
    pub duration: Duration,
}

impl Phase {
    /// Messages a paced phase sends in all: `rate × duration`, rounded; `None` for [`Rate::Max`].
    pub fn planned_messages(&self) -> Option<u64> {
        self.rate
            .per_second()
            .map(|r| (r * self.duration.as_secs_f64()).round() as u64)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.rate, format_duration(self.duration))
    }
}

/// A non-empty list of phases, as given on the command line.
#[derive(Debug, Clone, PartialEq)]
pub struct Phases(pub Vec<Phase>);

impl FromStr for Phases {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let phases = s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(parse_phase)
            .collect::<Result<Vec<_>, _>>()?;
        if phases.is_empty() {
            return Err("at least one phase `rate:duration` is required".into());
        }
        Ok(Self(phases))
    }
}

impl fmt::Display for Phases {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

fn parse_phase(s: &str) -> Result<Phase, String> {
    let (rate, duration) = s
        .split_once(':')
        .ok_or_else(|| format!("phase {s:?}: expected rate:duration, e.g. 200:5m"))?;
    let rate = match rate.trim() {
        "max" => Rate::Max,
        r => {
            let r: f64 = r
                .parse()
                .map_err(|_| format!("phase {s:?}: rate {r:?} is not a number or `max`"))?;
            if !(r.is_finite() && r > 0.0) {
                return Err(format!("phase {s:?}: rate must be > 0"));
            }
            Rate::PerSecond(r)
        }
    };
    let duration = parse_duration(duration).map_err(|e| format!("phase {s:?}: {e}"))?;
    if duration.is_zero() {
        return Err(format!("phase {s:?}: duration must be > 0"));
    }
    Ok(Phase { rate, duration })
}

/// Parses `500ms`, `10s`, `5m`, `1h` or a bare number of seconds (fractions allowed: `1.5s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("duration {s:?}: expected e.g. 30s, 5m, 500ms"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("duration {s:?}: unknown unit {other:?}")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("duration {s:?}: {e}"))
}

/// `300s` → `5m`, `90s` → `90s`, `1.5s` → `1.5s`: the shortest exact spelling.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) && ms > 0 {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}ms", ms)
    }
}

/// Where in a paced phase the sender is: message `i` is due `i / rate` seconds after the phase starts.
///
/// Open model: the schedule never looks at how the system responds, so a slow broker or API does not slow
/// the attack down (which is what a real flood does, and what an alert must be tested against).
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    total: u64,
}

impl Schedule {
    /// The schedule of a paced phase (`None` for [`Rate::Max`]).
    pub fn of(phase: &Phase) -> Option<Self> {
        Some(Self {
            rate: phase.rate.per_second()?,
            total: phase.planned_messages()?,
        })
    }

    /// How many messages must have been sent `elapsed` into the phase (message 0 is due at once).
    pub fn due_by(&self, elapsed: Duration) -> u64 {
        let due = (elapsed.as_secs_f64() * self.rate).floor() as u64 + 1;
        due.min(self.total)
    }

    /// When message `i` is due, measured from the phase start.
    pub fn due_at(&self, i: u64) -> Duration {
        Duration::from_secs_f64(i as f64 / self.rate)
    }

    /// Messages in the whole phase.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_profile_parses() {
        let p: Phases = DEFAULT_PHASES.parse().unwrap();
        assert_eq!(p.0.len(), 4);
        assert_eq!(p.0[3].rate, Rate::PerSecond(1500.0));
        assert_eq!(p.0[3].duration, Duration::from_secs(300));
        assert_eq!(p.0[3].planned_messages(), Some(450_000));
        assert_eq!(p.to_string(), DEFAULT_PHASES);
    }

    #[test]
    fn units_and_max() {
        let p: Phases = "max:10s, 2.5:1.5s,100:500ms,1:1h".parse().unwrap();
        assert_eq!(p.0[0].rate, Rate::Max);
        assert_eq!(p.0[1].duration, Duration::from_millis(1500));
        assert_eq!(p.0[2].duration, Duration::from_millis(500));
        assert_eq!(p.0[3].duration, Duration::from_secs(3600));
        assert_eq!(p.to_string(), "max:10s,2.5:1500ms,100:500ms,1:1h");
    }

    #[test]
    fn bad_phases_say_what_is_wrong() {
        for (input, words) in [
            ("", "at least one"),
            ("50", "rate:duration"),
            ("0:5m", "> 0"),
            ("-3:5m", "> 0"),
            ("fast:5m", "not a number"),
            ("50:5y", "unknown unit"),
            ("50:0s", "> 0"),
        ] {
            let e = input.parse::<Phases>().unwrap_err();
            assert!(e.contains(words), "{input:?}: {e}");
        }
    }

    #[test]
    fn schedule_sends_exactly_rate_times_duration() {
        let phase = Phase {
            rate: Rate::PerSecond(2000.0),
            duration: Duration::from_secs(10),
        };
        let s = Schedule::of(&phase).unwrap();
        assert_eq!(s.total(), 20_000);
        assert_eq!(s.due_by(Duration::ZERO), 1);
        assert_eq!(s.due_by(Duration::from_millis(500)), 1001);
        assert_eq!(s.due_by(Duration::from_secs(60)), 20_000);
        assert_eq!(s.due_at(2000), Duration::from_secs(1));
    }
}
