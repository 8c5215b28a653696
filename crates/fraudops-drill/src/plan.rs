//! The drill resolved before anything starts: what is deployed (the overlay the drill reproduces, and
//! production for the capacity statement), the clocks, the CPU each replica gets, the attack's phases and
//! how long they may take, the tools.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::capacity::{self, Capacity, OverlayCapacity};
use crate::config::{self, DrillArgs, Phase, ScaleDown};
use crate::error::DrillError;
use crate::hpa::{ControllerSettings, HpaSpec};
use crate::manifest::{self, Deployed};
use crate::monitoring;
use crate::report::Sample;
use crate::rules;
use crate::verdict::{ADMIN_ALERT, ADMIN_GROUP_WAIT};

/// Resolved plan of one drill.
pub(crate) struct Plan {
    pub(crate) deploy_dir: PathBuf,
    pub(crate) deployed: Deployed,
    /// What `summary.json` calls the overlay.
    pub(crate) overlay: String,
    /// The production overlay's objects, for its capacity (`None` when it is the one that ran, or it
    /// could not be rendered).
    pub(crate) production: Option<(String, Deployed)>,
    /// The admin alert's CPU line as deployed (fraction of the limit).
    pub(crate) admin_alert_cpu_ratio: f64,
    pub(crate) time_scale: f64,
    pub(crate) cpu_factor: f64,
    pub(crate) cpu_limit: f64,
    pub(crate) cpu_request: f64,
    pub(crate) hpa: HpaSpec,
    pub(crate) settings: ControllerSettings,
    pub(crate) interval: Duration,
    pub(crate) phases: Vec<Phase>,
    pub(crate) max_rate: f64,
    pub(crate) sample_every: Duration,
    pub(crate) max_duration: Duration,
    pub(crate) scale_down: bool,
    pub(crate) fraudops: PathBuf,
    pub(crate) tansu: PathBuf,
    pub(crate) prometheus: PathBuf,
    pub(crate) alertmanager: PathBuf,
}

fn tool(explicit: Option<&PathBuf>, names: &[&str], hint: &str) -> Result<PathBuf, DrillError> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    monitoring::which(names)
        .ok_or_else(|| DrillError::Tool(format!("{} not found on PATH; {hint}", names[0])))
}

/// Resolves `args` against the deployed files and this machine.
pub(crate) fn plan(args: &DrillArgs) -> Result<Plan, DrillError> {
    let deploy_dir = config::find_deploy_dir(args.deploy_dir.as_deref())?;
    let render = |overlay: &Path| -> Result<Deployed, DrillError> {
        let path = deploy_dir.join(overlay);
        let text = manifest::render_overlay(&path)?;
        manifest::parse(
            &text,
            &format!("kubectl kustomize {}", path.display()),
            &args.hpa,
        )
    };
    let (deployed, overlay) = match &args.manifest {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| DrillError::io(format!("reading {}", path.display()), e))?;
            let source = path.display().to_string();
            (manifest::parse(&text, &source, &args.hpa)?, source)
        }
        None => (render(&args.overlay)?, args.overlay.display().to_string()),
    };
    let production_name = args.production_overlay.display().to_string();
    let production = if production_name == overlay {
        None
    } else {
        match render(&args.production_overlay) {
            Ok(d) => Some((production_name, d)),
            Err(e) => {
                tracing::warn!(event = "production_overlay_unavailable", error = %e);
                None
            }
        }
    };
    let time_scale = args.time_scale.unwrap_or(if args.quick {
        config::QUICK_TIME_SCALE
    } else {
        1.0
    });
    if !(time_scale.is_finite() && time_scale > 0.0 && time_scale <= 1.0) {
        return Err(DrillError::Config(format!(
            "--time-scale {time_scale}: must be in (0, 1]"
        )));
    }
    let cpu_factor = match args.cpu_limit {
        Some(limit) => limit / deployed.api.cpu_limit_cores,
        None => args.cpu_factor,
    };
    if !(cpu_factor.is_finite() && cpu_factor > 0.0) {
        return Err(DrillError::Config(format!(
            "CPU factor {cpu_factor} must be positive"
        )));
    }
    let cpu_limit = deployed.api.cpu_limit_cores * cpu_factor;
    let cpu_request = deployed.api.cpu_request_cores * cpu_factor;
    let hpa = deployed.hpa.time_scaled(time_scale);
    let settings = ControllerSettings::time_scaled(time_scale);
    let interval = monitoring::scrape_interval(time_scale);

    // How long the last phase must hold for the alert to be able to fire at its rate: the HPA reaching
    // its maximum (one scale-up period per replica), the rules' rate window filling, the alert's `for:`,
    // and the notification's way out.
    let rules_dir = deploy_dir.join("monitoring/rules");
    let read = |name: &str| {
        let p = rules_dir.join(name);
        std::fs::read_to_string(&p)
            .map_err(|e| DrillError::io(format!("reading {}", p.display()), e))
    };
    let rate_window =
        rules::max_range(&read("recording.cluster.yaml")?).unwrap_or(Duration::from_secs(120));
    let alerts = read("alerts.yaml")?;
    let admin_alert_cpu_ratio =
        rules::alert_threshold(&alerts, ADMIN_ALERT, "fraudops:pod_cpu_usage_ratio:max")
            .ok_or_else(|| {
                DrillError::Config(format!(
                    "cannot read {ADMIN_ALERT}'s `fraudops:pod_cpu_usage_ratio:max > N` from {}",
                    rules_dir.join("alerts.yaml").display()
                ))
            })?;
    let alert_for = rules::alert_for(&alerts, ADMIN_ALERT)
        .unwrap_or(Duration::from_secs(300))
        .mul_f64(time_scale);
    let scale_up_period = hpa
        .behavior
        .scale_up
        .longest_policy_period()
        .max(hpa.behavior.scale_up.stabilization_window);
    let steps = hpa.max_replicas.saturating_sub(hpa.min_replicas);
    let hold = scale_up_period * steps + rate_window + alert_for + interval * 4 + ADMIN_GROUP_WAIT;
    let profile = config::parse_phases(&args.phases)?;
    let phases = config::attack_phases(
        &profile,
        time_scale,
        hold,
        args.negative.then_some(args.negative_max_rate),
    )?;
    let last_rate = phases.last().map_or(1.0, |p| p.rate);
    let max_rate = args.max_rate.unwrap_or(last_rate * 4.0);
    let attack_time: Duration = phases.iter().map(|p| p.duration).sum();
    // Escalation steps beyond the listed phases last as long as the last listed phase.
    let escalations = if args.step > 1.0 {
        ((max_rate / last_rate).ln() / args.step.ln())
            .floor()
            .max(0.0) as u32
    } else {
        0
    };
    let scale_down = match args.scale_down {
        ScaleDown::Yes => true,
        ScaleDown::No => false,
        ScaleDown::Auto => !args.quick && !args.negative,
    };
    let scale_down_time = hpa.behavior.scale_down.stabilization_window
        + hpa
            .behavior
            .scale_down
            .policies
            .iter()
            .map(|p| p.period)
            .max()
            .unwrap_or_default()
            * (steps + 1)
        + rate_window;
    let max_duration = args.max_duration.unwrap_or(
        attack_time
            + phases.last().map_or(Duration::ZERO, |p| p.duration) * escalations
            + if scale_down {
                scale_down_time
            } else {
                Duration::ZERO
            }
            + Duration::from_secs(120),
    );
    let sample_every = Duration::from_secs_f64(
        args.sample_seconds
            .unwrap_or((5.0 * time_scale).max(1.0))
            .max(0.2),
    );
    let fraudops = match &args.fraudops_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()
            .map_err(|e| DrillError::io("locating the fraudops binary", e))?,
    };
    let cargo_tansu = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tansu"));
    let tansu = match (
        &args.tansu,
        monitoring::which(&["tansu"]),
        cargo_tansu.filter(|p| p.is_file()),
    ) {
        (Some(p), _, _) => p.clone(),
        (None, Some(p), _) | (None, None, Some(p)) => p,
        (None, None, None) => {
            return Err(DrillError::Tool(
                "tansu not found; run scripts/ensure/tansu.sh or pass --tansu".into(),
            ));
        }
    };
    Ok(Plan {
        prometheus: tool(
            args.prometheus.as_ref(),
            &["prometheus"],
            "apt-get install prometheus (scripts/ensure/apt.sh)",
        )?,
        alertmanager: tool(
            args.alertmanager.as_ref(),
            &["prometheus-alertmanager", "alertmanager"],
            "apt-get install prometheus-alertmanager (scripts/ensure/apt.sh)",
        )?,
        deploy_dir,
        deployed,
        overlay,
        production,
        admin_alert_cpu_ratio,
        time_scale,
        cpu_factor,
        cpu_limit,
        cpu_request,
        hpa,
        settings,
        interval,
        phases,
        max_rate,
        sample_every,
        max_duration,
        scale_down,
        fraudops,
        tansu,
    })
}

/// The replicas' environment: the ConfigMap the Deployment's `envFrom` names, without what only makes
/// sense in the cluster (the MLflow registry: the drill serves the embedded model; Kafka: the API does not
/// use it; the port: each replica binds its own; the feature store: the cluster's Redis does not exist
/// here, and the attack's events reach the API through the worker with their windows as history).
pub(crate) fn replica_env(deployed: &Deployed) -> std::collections::BTreeMap<String, String> {
    deployed
        .env
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("MLFLOW_")
                && !k.starts_with("KAFKA_")
                && !k.starts_with("FEATURE_STORE_")
                && *k != "PORT"
                && *k != "METRICS_PORT"
        })
        .filter(|(k, v)| !(*k == "MODEL_PATH" && v.is_empty()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The capacity statement: the cost fitted from this drill's samples, the rates as the replicas ran, and
/// per overlay from its manifests (the one that ran, then production).
pub(crate) fn capacity_statement(plan: &Plan, samples: &[Sample]) -> Option<Capacity> {
    let cost = capacity::fit_cpu_cost(samples, plan.cpu_limit)?;
    let of = |name: &str, d: &Deployed, cpu: (f64, f64)| {
        OverlayCapacity::new(
            name.to_owned(),
            cpu,
            &d.hpa,
            plan.admin_alert_cpu_ratio,
            &cost,
        )
    };
    let ran = of(
        &plan.overlay,
        &plan.deployed,
        (plan.cpu_request, plan.cpu_limit),
    )?;
    let api = &plan.deployed.api;
    let overlays = std::iter::once(of(
        &plan.overlay,
        &plan.deployed,
        (api.cpu_request_cores, api.cpu_limit_cores),
    ))
    .chain(
        plan.production
            .iter()
            .map(|(name, d)| of(name, d, (d.api.cpu_request_cores, d.api.cpu_limit_cores))),
    )
    .flatten()
    .collect();
    Some(Capacity {
        cpu_seconds_per_request: cost.cpu_seconds_per_request,
        idle_cpu_cores: cost.idle_cpu_cores,
        fit: cost,
        overlay: plan.overlay.clone(),
        hpa_scale_up_tps: ran.hpa_scale_up_tps,
        admin_alert_tps: ran.admin_alert_tps,
        overlays,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_get_the_configmap_without_cluster_only_settings() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/k8s/base/configmap.yaml"),
        )
        .expect("configmap");
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("yaml");
        let env: std::collections::BTreeMap<String, String> = doc["data"]
            .as_mapping()
            .expect("data")
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), v.as_str()?.to_owned())))
            .collect();
        let hpa = crate::hpa::HpaSpec {
            name: "x".into(),
            target: "x".into(),
            min_replicas: 1,
            max_replicas: 2,
            metrics: vec![],
            behavior: crate::hpa::Behavior::default(),
        };
        let deployed = Deployed {
            source: "test".into(),
            hpa,
            api: manifest::parse_deployment(
                &serde_yaml::from_str(
                    &std::fs::read_to_string(
                        Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("../../deploy/k8s/base/api-deployment.yaml"),
                    )
                    .expect("deployment"),
                )
                .expect("yaml"),
            )
            .expect("deployment"),
            env,
        };
        let env = replica_env(&deployed);
        assert_eq!(env.get("MAX_IN_FLIGHT").map(String::as_str), Some("256"));
        assert_eq!(
            env.get("SHUTDOWN_GRACE_SECONDS").map(String::as_str),
            Some("20")
        );
        assert!(
            env.keys()
                .all(|k| !k.starts_with("MLFLOW_") && !k.starts_with("KAFKA_") && k != "PORT")
        );
        assert!(
            !env.contains_key("MODEL_PATH"),
            "an empty MODEL_PATH means the embedded model anyway"
        );
    }
}
