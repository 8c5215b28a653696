//! CPU and memory of this process as Kubernetes sees them: CPU used relative to the container's CPU
//! limit (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), resident memory from procfs.

use std::fs;
use std::time::Instant;

/// Where the CPU limit came from, for the start-up log.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LimitSource {
    /// `CPU_LIMIT_CORES`.
    Configured,
    /// The cgroup's CFS quota.
    Cgroup,
    /// No quota: the number of CPUs the process may use.
    Cpus,
}

impl LimitSource {
    /// The name log lines carry (`configured`, `cgroup`, `cpus`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Configured => "configured",
            Self::Cgroup => "cgroup",
            Self::Cpus => "cpus",
        }
    }
}

/// The CPU limit in cores: configured, else the cgroup quota, else the available CPUs.
pub fn cpu_limit_cores(configured: Option<f64>) -> (f64, LimitSource) {
    if let Some(c) = configured.filter(|c| c.is_finite() && *c > 0.0) {
        return (c, LimitSource::Configured);
    }
    if let Some(c) = cgroup_quota_cores() {
        return (c, LimitSource::Cgroup);
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cpus as f64, LimitSource::Cpus)
}

/// This process's cgroup path per controller, from `/proc/self/cgroup` (`(controllers, path)` pairs).
fn own_cgroups() -> Vec<(String, String)> {
    fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

fn read_trimmed(path: &str) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

fn cgroup_quota_cores() -> Option<f64> {
    for (controllers, path) in own_cgroups() {
        if controllers.is_empty() {
            // cgroup v2: "max 100000" or "50000 100000".
            let text = read_trimmed(&format!("/sys/fs/cgroup{path}/cpu.max"))?;
            let mut it = text.split_whitespace();
            let quota = it.next()?.parse::<f64>().ok()?;
            let period = it.next()?.parse::<f64>().ok()?;
            return (period > 0.0).then_some(quota / period);
        }
        if controllers.split(',').any(|c| c == "cpu") {
            let base = format!("/sys/fs/cgroup/{controllers}{path}");
            let base = if fs::metadata(&base).is_ok() {
                base
            } else {
                format!("/sys/fs/cgroup/cpu{path}")
            };
            let quota = read_trimmed(&format!("{base}/cpu.cfs_quota_us"))?
                .parse::<f64>()
                .ok()?;
            let period = read_trimmed(&format!("{base}/cpu.cfs_period_us"))?
                .parse::<f64>()
                .ok()?;
            return (quota > 0.0 && period > 0.0).then_some(quota / period);
        }
    }
    None
}

/// CPU seconds used by this process (user + system, all threads).
pub fn process_cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Resident memory of this process, bytes.
pub fn resident_memory_bytes() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(4096) as u64;
    read_trimmed("/proc/self/statm")
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<u64>().ok())
        })
        .map_or(0, |pages| pages * page)
}

/// Turns CPU seconds into a usage ratio over successive samples.
#[derive(Debug)]
pub struct CpuSampler {
    limit_cores: f64,
    last: (Instant, f64),
}

impl CpuSampler {
    /// Starts sampling against `limit_cores`.
    pub fn new(limit_cores: f64) -> Self {
        Self {
            limit_cores,
            last: (Instant::now(), process_cpu_seconds()),
        }
    }

    /// CPU used since the previous sample divided by the limit over the same wall time.
    pub fn sample(&mut self) -> f64 {
        let now = (Instant::now(), process_cpu_seconds());
        let wall = now.0.duration_since(self.last.0).as_secs_f64();
        let used = (now.1 - self.last.1).max(0.0);
        self.last = now;
        if wall <= 0.0 || self.limit_cores <= 0.0 {
            return 0.0;
        }
        used / wall / self.limit_cores
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_limit_wins_and_bad_values_are_ignored() {
        assert_eq!(cpu_limit_cores(Some(0.5)), (0.5, LimitSource::Configured));
        assert_ne!(cpu_limit_cores(Some(-1.0)).1, LimitSource::Configured);
        assert!(cpu_limit_cores(None).0 > 0.0);
    }

    #[test]
    fn busy_work_shows_up_as_cpu_usage() {
        let mut sampler = CpuSampler::new(1.0);
        let start = Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 200 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let ratio = sampler.sample();
        assert!(
            ratio > 0.3,
            "a busy loop on one core should be well above 0: {ratio}"
        );
        assert!(resident_memory_bytes() > 1_000_000);
    }
}
