//! Everything `fraudops drill` can be told; each option is also an environment variable.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::DrillError;
use crate::rules::{format_duration, parse_duration};

/// The mission's attack profile (SPEC §1.4, §5): 50 → 200 → 500 → 1500 TPS, 5 minutes each.
pub const MISSION_PHASES: &str = "50:5m,200:5m,500:5m,1500:5m";

/// The drill's default CPU factor: 1, each replica gets exactly the deployed request and limit. The
/// default overlay (`k8s/overlays/seed-attack`) is sized so that the seeds' own rates exhaust six replicas;
/// any other factor reproduces a deployment that does not exist, and the report says so prominently.
pub const DEFAULT_CPU_FACTOR: f64 = 1.0;

/// The overlay the drill reproduces by default: the one sized for the seeds' attack (50 → 1500 TPS).
pub const SEED_OVERLAY: &str = "k8s/overlays/seed-attack";

/// The overlay production runs; the capacity statement always gives its rates too.
pub const PRODUCTION_OVERLAY: &str = "k8s/overlays/production";

/// `--quick`'s clock factor: every time constant ×0.1 (HPA sync 1.5 s, windows and policy periods 6 s /
/// 30 s, alert `for:` 30 s, scrape interval 1.5 s, attack phases 30 s).
pub const QUICK_TIME_SCALE: f64 = 0.1;

/// Whether to watch the replicas scale back down after the alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ScaleDown {
    /// Full runs watch it, quick runs do not.
    Auto,
    /// Always.
    Yes,
    /// Never.
    No,
}

/// Options of `fraudops drill`.
#[derive(Debug, Clone, clap::Args)]
pub struct DrillArgs {
    /// Where the report goes (series.csv, chart.svg, summary.md, logs/, ...). Created if missing.
    #[arg(long, env = "DRILL_REPORT")]
    pub report: PathBuf,
    /// The CI variant: every time constant (HPA sync period, behaviour windows and periods, the alerts'
    /// `for:`, scrape interval, attack phases) ×0.1.
    #[arg(long, env = "DRILL_QUICK")]
    pub quick: bool,
    /// The negative drill: only the profile's phases up to --negative-max-rate, the last one held long
    /// enough for the alert to have fired; passes if the admin alert never even goes pending.
    #[arg(long, env = "DRILL_NEGATIVE")]
    pub negative: bool,
    /// Clock factor instead of 1 (full) or 0.1 (--quick).
    #[arg(long, env = "DRILL_TIME_SCALE")]
    pub time_scale: Option<f64>,
    /// Each replica's CPU request and limit = the deployed ones × this factor. Anything but 1 runs a
    /// deployment that does not exist (the report says so); it exists to drill an overlay sized for more
    /// load than this machine can send, such as production.
    #[arg(long, env = "DRILL_CPU_FACTOR", default_value_t = DEFAULT_CPU_FACTOR)]
    pub cpu_factor: f64,
    /// Each replica's CPU limit in cores instead (the request keeps the deployed request:limit ratio).
    #[arg(long, env = "DRILL_CPU_LIMIT", conflicts_with = "cpu_factor")]
    pub cpu_limit: Option<f64>,
    /// Fail instead of falling back to CPU_LIMIT_CORES accounting when no cgroup is writable.
    #[arg(long, env = "DRILL_REQUIRE_CGROUPS")]
    pub require_cgroups: bool,
    /// The repository's deploy/ directory (found from the working directory when unset).
    #[arg(long, env = "DRILL_DEPLOY_DIR")]
    pub deploy_dir: Option<PathBuf>,
    /// The kustomize overlay whose rendered objects the drill reproduces (relative to --deploy-dir).
    #[arg(long, env = "DRILL_OVERLAY", default_value = SEED_OVERLAY)]
    pub overlay: PathBuf,
    /// The production overlay, whose attack rates the capacity statement also gives (from its manifests,
    /// at the CPU cost this drill measured).
    #[arg(long, env = "DRILL_PRODUCTION_OVERLAY", default_value = PRODUCTION_OVERLAY)]
    pub production_overlay: PathBuf,
    /// Pre-rendered manifests (multi-document YAML) instead of `kubectl kustomize --overlay`.
    #[arg(long, env = "DRILL_MANIFEST")]
    pub manifest: Option<PathBuf>,
    /// The HorizontalPodAutoscaler to follow.
    #[arg(long, env = "DRILL_HPA", default_value = "fraudops-api")]
    pub hpa: String,
    /// The attack profile as `rate:duration,...` (durations are scaled with the clock).
    #[arg(long, env = "DRILL_PHASES", default_value = MISSION_PHASES)]
    pub phases: String,
    /// Beyond the listed phases the attack multiplies the rate by this until the alert fires.
    #[arg(long, env = "DRILL_STEP", default_value_t = 2.0)]
    pub step: f64,
    /// Highest rate the escalation may reach (default: 4 × the last listed rate).
    #[arg(long, env = "DRILL_MAX_RATE")]
    pub max_rate: Option<f64>,
    /// The negative drill uses the profile's phases up to this rate.
    #[arg(long, env = "DRILL_NEGATIVE_MAX_RATE", default_value_t = 200.0)]
    pub negative_max_rate: f64,
    /// Watch the scale-down after the alert (auto: full runs only).
    #[arg(long, env = "DRILL_SCALE_DOWN", value_enum, default_value_t = ScaleDown::Auto)]
    pub scale_down: ScaleDown,
    /// Calls the stream worker makes to the API at once.
    #[arg(long, env = "DRILL_STREAM_CONCURRENCY", default_value_t = 64)]
    pub stream_concurrency: usize,
    /// Seconds between report samples (default: 5 × the clock factor, at least 1).
    #[arg(long, env = "DRILL_SAMPLE_SECONDS")]
    pub sample_seconds: Option<f64>,
    /// Give up (and report a failure) after this long (default: generous for the profile).
    #[arg(long, env = "DRILL_MAX_DURATION", value_parser = parse_cli_duration)]
    pub max_duration: Option<Duration>,
    /// The `fraudops` binary the replicas, worker and attack run (default: this one).
    #[arg(long, env = "FRAUDOPS_BIN")]
    pub fraudops_bin: Option<PathBuf>,
    /// The Kafka-protocol broker (scripts/ensure/tansu.sh installs it).
    #[arg(long, env = "TANSU_BIN")]
    pub tansu: Option<PathBuf>,
    /// Prometheus (Debian package `prometheus`).
    #[arg(long, env = "PROMETHEUS_BIN")]
    pub prometheus: Option<PathBuf>,
    /// Alertmanager (Debian package `prometheus-alertmanager`).
    #[arg(long, env = "ALERTMANAGER_BIN")]
    pub alertmanager: Option<PathBuf>,
}

/// A `500ms` / `30s` / `5m` duration.
pub fn parse_cli_duration(s: &str) -> Result<Duration, String> {
    parse_duration(s).ok_or_else(|| format!("{s:?} is not a duration like 30s, 5m or 1h"))
}

/// One attack phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Messages per second.
    pub rate: f64,
    /// How long.
    pub duration: Duration,
}

/// Parses `rate:duration,...`.
pub fn parse_phases(text: &str) -> Result<Vec<Phase>, DrillError> {
    let phases = text
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (rate, duration) = p
                .split_once(':')
                .ok_or_else(|| DrillError::Config(format!("phase {p:?} is not rate:duration")))?;
            let rate: f64 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r: &f64| r.is_finite() && *r > 0.0)
                .ok_or_else(|| {
                    DrillError::Config(format!("phase {p:?}: the rate must be a positive number"))
                })?;
            let duration = parse_duration(duration.trim())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| {
                    DrillError::Config(format!("phase {p:?}: {duration:?} is not a duration"))
                })?;
            Ok(Phase { rate, duration })
        })
        .collect::<Result<Vec<_>, DrillError>>()?;
    if phases.is_empty() {
        return Err(DrillError::Config("no attack phases".into()));
    }
    Ok(phases)
}

/// The `--phases` argument of `fraudops attack`.
pub fn format_phases(phases: &[Phase]) -> String {
    phases
        .iter()
        .map(|p| {
            format!(
                "{}:{}",
                p.rate,
                format_duration(Duration::from_millis(p.duration.as_millis() as u64))
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The attack the drill runs: the profile on the drill's clock, the last phase held for `hold` at least
/// (long enough for the alert to be able to fire at that rate). The negative drill keeps only the phases up
/// to `negative_max_rate`.
pub fn attack_phases(
    profile: &[Phase],
    time_scale: f64,
    hold: Duration,
    negative: Option<f64>,
) -> Result<Vec<Phase>, DrillError> {
    let mut phases: Vec<Phase> = profile
        .iter()
        .filter(|p| negative.is_none_or(|max| p.rate <= max))
        .map(|p| Phase {
            rate: p.rate,
            duration: Duration::from_millis(
                (p.duration.as_millis() as f64 * time_scale)
                    .round()
                    .max(1000.0) as u64,
            ),
        })
        .collect();
    let Some(last) = phases.last_mut() else {
        return Err(DrillError::Config(format!(
            "no phase of the profile is at or below {} tx/s for the negative drill",
            negative.unwrap_or_default()
        )));
    };
    last.duration = last.duration.max(hold);
    Ok(phases)
}

/// The repository's `deploy/` directory: `--deploy-dir`, else the nearest `deploy/` above the working
/// directory that holds the manifests and rules, else the one this binary was built from.
pub fn find_deploy_dir(explicit: Option<&Path>) -> Result<PathBuf, DrillError> {
    let looks_right = |d: &Path| d.join("k8s").is_dir() && d.join("monitoring/rules").is_dir();
    if let Some(d) = explicit {
        return if looks_right(d) {
            Ok(d.to_owned())
        } else {
            Err(DrillError::Config(format!(
                "{} has no k8s/ and monitoring/rules/",
                d.display()
            )))
        };
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            let d = dir.join("deploy");
            if looks_right(&d) {
                return Ok(d);
            }
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    if looks_right(&built) {
        return Ok(built);
    }
    Err(DrillError::Config(
        "cannot find the repository's deploy/ directory; run from the checkout or pass --deploy-dir".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mission_profile_on_the_quick_clock() {
        let profile = parse_phases(MISSION_PHASES).expect("parses");
        let quick = attack_phases(&profile, 0.1, Duration::from_secs(190), None).expect("phases");
        assert_eq!(format_phases(&quick), "50:30s,200:30s,500:30s,1500:190s");
        let full = attack_phases(&profile, 1.0, Duration::from_secs(60), None).expect("phases");
        assert_eq!(format_phases(&full), "50:300s,200:300s,500:300s,1500:300s");
        let negative =
            attack_phases(&profile, 0.1, Duration::from_secs(190), Some(200.0)).expect("phases");
        assert_eq!(format_phases(&negative), "50:30s,200:190s");
        assert!(attack_phases(&profile, 0.1, Duration::ZERO, Some(10.0)).is_err());
    }

    #[test]
    fn bad_phases_are_refused() {
        for bad in ["", "50", "x:5m", "50:5", "-1:5m", "50:0s"] {
            assert!(parse_phases(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finds_the_repositorys_deploy_dir() {
        let d = find_deploy_dir(None).expect("found");
        assert!(d.join("k8s/base/api-hpa.yaml").is_file());
        assert!(find_deploy_dir(Some(Path::new("/nonexistent"))).is_err());
    }
}
