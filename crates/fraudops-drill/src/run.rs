//! The drill from start to report: resolve what is deployed, start every component, run the attack,
//! watch, stop everything, write the report.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::balancer::Balancer;
use crate::cgroup::{CgroupTree, CpuStats, Mechanism};
use crate::cluster::{self, Cluster, ClusterConfig, ClusterView, ScalingEvent};
use crate::config::{self, DrillArgs, Phase, ScaleDown};
use crate::control::{self, Notification, Sink};
use crate::error::DrillError;
use crate::hpa::{ControllerSettings, HpaSpec};
use crate::manifest::{self, Deployed};
use crate::monitoring::{self, AlertState, PrometheusApi, ScrapeTargets};
use crate::process::{self, Output, Proc, Registry};
use crate::report::{self, ChartInput, Mark, Sample};
use crate::rules;

/// The alert the mission is about.
pub const ADMIN_ALERT: &str = "AdminNotification_MaxScaleHighCPU";
/// What the administrator's chat must receive first.
pub const EXPECTED_TITLE: &str = "[FIRING:1] AdminNotification_MaxScaleHighCPU";
/// The title of the same alert's resolution (`send_resolved`), once the load has stopped.
pub const EXPECTED_RESOLVED_TITLE: &str = "[RESOLVED] AdminNotification_MaxScaleHighCPU";
/// The route's `group_wait` for the admin receiver (deploy/monitoring/alertmanager/alertmanager.yaml);
/// Alertmanager's own timers are not scaled (its configuration is the deployed one).
const ADMIN_GROUP_WAIT: Duration = Duration::from_secs(10);

/// What the drill tells its caller while it runs.
#[derive(Debug, Clone)]
pub enum Progress {
    /// A setup or teardown step.
    Step(String),
    /// Something worth a line: a scaling event, an alert state change, a notification.
    Milestone { t_seconds: f64, message: String },
    /// A new sample.
    Sample(Sample),
}

/// One check of the outcome.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// What is checked.
    pub name: String,
    /// Whether it holds.
    pub passed: bool,
    /// The evidence.
    pub detail: String,
}

/// A replica's life in seconds since the attack started.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaTimes {
    /// Pod name.
    pub pod: String,
    /// Started.
    pub started_s: f64,
    /// Became ready.
    pub ready_s: Option<f64>,
    /// Began terminating.
    pub terminating_s: Option<f64>,
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `passed`, `failed` or `interrupted`.
    pub verdict: String,
    /// `full`, `quick`, `full negative`, `quick negative`.
    pub mode: String,
    /// The clock factor.
    pub time_scale: f64,
    /// How CPU limits were enforced.
    pub cpu_mechanism: Mechanism,
    /// Said in words.
    pub cpu_mechanism_description: String,
    /// Where the deployed objects came from.
    pub manifest_source: String,
    /// The HPA object as deployed (unscaled).
    pub hpa: HpaSpec,
    /// Deployed CPU request / limit per replica, cores.
    pub deployed_cpu_request_cores: f64,
    /// Deployed CPU limit.
    pub deployed_cpu_limit_cores: f64,
    /// The drill's CPU factor.
    pub cpu_factor: f64,
    /// The drill's CPU request per replica.
    pub drill_cpu_request_cores: f64,
    /// The drill's CPU limit per replica (the CFS quota).
    pub drill_cpu_limit_cores: f64,
    /// The controller settings the drill ran (time-scaled).
    pub controller: ControllerSettings,
    /// Prometheus scrape and evaluation interval, seconds.
    pub scrape_interval_s: f64,
    /// The attack's `--phases`.
    pub phases: String,
    /// When the attack started (RFC 3339).
    pub attack_started_at: String,
    /// How long the attack and observation ran, seconds.
    pub duration_s: f64,
    /// Every scaling event.
    pub scaling_events: Vec<ScalingEvent>,
    /// Every replica.
    pub replicas: Vec<ReplicaTimes>,
    /// When the replica that made the count reach maxReplicas became ready, seconds.
    pub max_replicas_ready_s: Option<f64>,
    /// First sample with the admin alert pending.
    pub alert_pending_s: Option<f64>,
    /// First sample with the admin alert firing (time to alert).
    pub alert_firing_s: Option<f64>,
    /// When the admin webhook received the notification.
    pub notification_s: Option<f64>,
    /// Everything the admin webhook received.
    pub admin_notifications: Vec<Notification>,
    /// Everything the on-call webhook received.
    pub oncall_notifications: Vec<Notification>,
    /// The attack's own results (per-phase target and achieved rates).
    pub attack: Option<serde_json::Value>,
    /// Replicas that crashed.
    pub crashes: Vec<String>,
    /// The checks.
    pub checks: Vec<Check>,
}

/// The result of a drill.
#[derive(Debug, Clone)]
pub struct DrillOutcome {
    /// The summary (also in summary.json).
    pub summary: Summary,
    /// The report directory.
    pub report: PathBuf,
}

impl DrillOutcome {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.summary.verdict == "passed"
    }
}

/// Resolved plan of one drill.
struct Plan {
    deploy_dir: PathBuf,
    deployed: Deployed,
    time_scale: f64,
    cpu_factor: f64,
    cpu_limit: f64,
    cpu_request: f64,
    hpa: HpaSpec,
    settings: ControllerSettings,
    interval: Duration,
    phases: Vec<Phase>,
    max_rate: f64,
    sample_every: Duration,
    max_duration: Duration,
    scale_down: bool,
    fraudops: PathBuf,
    tansu: PathBuf,
    prometheus: PathBuf,
    alertmanager: PathBuf,
}

fn tool(explicit: Option<&PathBuf>, names: &[&str], hint: &str) -> Result<PathBuf, DrillError> {
    if let Some(p) = explicit {
        return Ok(p.clone());
    }
    monitoring::which(names)
        .ok_or_else(|| DrillError::Tool(format!("{} not found on PATH; {hint}", names[0])))
}

fn plan(args: &DrillArgs) -> Result<Plan, DrillError> {
    let deploy_dir = config::find_deploy_dir(args.deploy_dir.as_deref())?;
    let (text, source) = match &args.manifest {
        Some(path) => (
            std::fs::read_to_string(path)
                .map_err(|e| DrillError::io(format!("reading {}", path.display()), e))?,
            path.display().to_string(),
        ),
        None => {
            let overlay = deploy_dir.join(&args.overlay);
            (
                manifest::render_overlay(&overlay)?,
                format!("kubectl kustomize {}", overlay.display()),
            )
        }
    };
    let deployed = manifest::parse(&text, &source, &args.hpa)?;
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
    let alert_for = rules::max_for(&read("alerts.yaml")?)
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
/// use it; the port: each replica binds its own).
fn replica_env(deployed: &Deployed) -> std::collections::BTreeMap<String, String> {
    deployed
        .env
        .iter()
        .filter(|(k, _)| {
            !k.starts_with("MLFLOW_")
                && !k.starts_with("KAFKA_")
                && *k != "PORT"
                && *k != "METRICS_PORT"
        })
        .filter(|(k, v)| !(*k == "MODEL_PATH" && v.is_empty()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Everything started, for the teardown.
#[derive(Default)]
struct Running {
    tansu: Option<Proc>,
    stream: Option<Proc>,
    attack: Option<Proc>,
    prometheus: Option<Proc>,
    alertmanager: Option<Proc>,
    cluster: Option<Cluster>,
}

impl Running {
    async fn stop(&mut self, progress: &mut impl FnMut(Progress)) {
        progress(Progress::Step(
            "stopping the attack, the stream worker and the replicas".into(),
        ));
        if let Some(p) = self.attack.take() {
            p.stop(Duration::from_secs(10)).await;
        }
        if let Some(p) = self.stream.take() {
            p.stop(Duration::from_secs(10)).await;
        }
        if let Some(c) = self.cluster.take()
            && let Err(e) = c.shutdown().await
        {
            tracing::warn!(event = "cluster_shutdown_failed", error = %e);
        }
        for p in [
            self.prometheus.take(),
            self.alertmanager.take(),
            self.tansu.take(),
        ]
        .into_iter()
        .flatten()
        {
            p.stop(Duration::from_secs(10)).await;
        }
    }
}

/// Parses the Prometheus text format into name → sum over label sets.
fn scrape_sums(text: &str) -> HashMap<String, f64> {
    let mut out = HashMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else {
            continue;
        };
        *out.entry(line[..name_end].to_owned()).or_insert(0.0) += value;
    }
    out
}

async fn scrape(http: &reqwest::Client, addr: SocketAddr) -> Option<HashMap<String, f64>> {
    let r = http
        .get(format!("http://{addr}/metrics"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    Some(scrape_sums(&r.text().await.ok()?))
}

/// The sampler's memory between samples.
struct Sampler {
    http: reqwest::Client,
    prometheus: PrometheusApi,
    balancer: Balancer,
    view: Arc<Mutex<ClusterView>>,
    attack: SocketAddr,
    stream: SocketAddr,
    cpu_limit: f64,
    t0: Instant,
    last_t: Instant,
    last_produced: Option<(f64, Instant)>,
    last_cpu: HashMap<String, (Instant, CpuStats)>,
}

impl Sampler {
    async fn sample(&mut self) -> Sample {
        // The cgroups and the balancer first, at `now`, so their rates cover exactly the interval.
        let now = Instant::now();
        let dt = now.duration_since(self.last_t).as_secs_f64().max(1e-3);
        self.last_t = now;
        let w = self.balancer.take_window();
        let view = self.view.lock().map(|v| v.clone()).unwrap_or_default();
        let mut per_pod = Vec::new();
        let mut cpu = HashMap::new();
        for p in &view.pods {
            let read_at = Instant::now();
            let stats = p.group.stats(Some(p.pid));
            if let Some((before_at, before)) = self.last_cpu.get(&p.name)
                && let Some(r) = cluster::cpu_ratio(
                    before,
                    &stats,
                    read_at.duration_since(*before_at).as_secs_f64(),
                    self.cpu_limit,
                )
            {
                per_pod.push((p.name.clone(), r, p.ready && !p.terminating));
            }
            cpu.insert(p.name.clone(), (read_at, stats));
        }
        self.last_cpu = cpu;
        let attack = scrape(&self.http, self.attack).await;
        let stream = scrape(&self.http, self.stream).await;
        let produced = attack
            .as_ref()
            .and_then(|m| m.get("kafka_messages_produced_total").copied());
        let produced_at = Instant::now();
        let achieved = match (produced, self.last_produced) {
            (Some(p), Some((l, at))) => {
                ((p - l) / produced_at.duration_since(at).as_secs_f64().max(1e-3)).max(0.0)
            }
            _ => 0.0,
        };
        if let Some(p) = produced {
            self.last_produced = Some((p, produced_at));
        }
        let alert_state = match self.prometheus.alert_state(ADMIN_ALERT).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(event = "prometheus_unreachable", error = %e);
                AlertState::Inactive
            }
        };
        let rule_cpu = self
            .prometheus
            .scalar("fraudops:pod_cpu_usage_ratio:max")
            .await
            .ok()
            .flatten();
        Sample {
            t_seconds: now.duration_since(self.t0).as_secs_f64(),
            target_tps: attack
                .as_ref()
                .and_then(|m| m.get("attack_target_rate").copied())
                .unwrap_or(0.0),
            achieved_tps: achieved,
            scored_tps: w.ok as f64 / dt,
            errors_per_s: w.server_errors as f64 / dt,
            p95_ms: w.p95_ms,
            replicas_current: view.current(),
            replicas_desired: view.desired_replicas,
            replicas_ready: view.ready(),
            cpu_ratio_max: per_pod.iter().filter(|p| p.2).map(|p| p.1).reduce(f64::max),
            rule_cpu_ratio_max: rule_cpu,
            queue_length: stream
                .as_ref()
                .and_then(|m| m.get("kafka_queue_length").copied()),
            alert_state,
            per_pod,
        }
    }
}

/// Runs a drill; `shutdown` (Ctrl-C) ends it early, still stopping everything and writing the report.
pub async fn run(
    args: DrillArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut progress: impl FnMut(Progress),
) -> Result<DrillOutcome, DrillError> {
    let plan = plan(&args)?;
    let report_dir = args.report.clone();
    let logs = report_dir.join("logs");
    let config_dir = report_dir.join("config");
    for d in [&report_dir, &logs, &config_dir] {
        std::fs::create_dir_all(d)
            .map_err(|e| DrillError::io(format!("creating {}", d.display()), e))?;
    }
    let data = tempfile::Builder::new()
        .prefix("fraudops-drill-")
        .tempdir()
        .map_err(|e| DrillError::io("creating a working directory", e))?;
    let registry = Registry::default();
    let mut running = Running::default();
    // Ctrl-C at any moment: setup steps give up, the sampling loop ends, and everything is stopped below.
    let (interrupt_tx, interrupt) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(async move {
        shutdown.await;
        let _ = interrupt_tx.send(true);
    });

    // The drill's own servers (balancer, sink, exporters) stop last: the worker must reach the API
    // through the balancer until it has stopped.
    let (stop_servers, servers_stopped) = tokio::sync::watch::channel(false);
    let result = drive(
        &args,
        &plan,
        &report_dir,
        (&logs, &config_dir, data.path()),
        &registry,
        &mut running,
        servers_stopped,
        interrupt,
        &mut progress,
    )
    .await;
    running.stop(&mut progress).await;
    let _ = stop_servers.send(true);
    watcher.abort();
    // Last resort: anything still registered (a step failed half-way) is killed by PID.
    registry.kill_all();
    let (observed, interrupted, error) = match result {
        Ok((o, interrupted)) => (Some(o), interrupted, None),
        Err((o, e)) => (o, false, Some(e)),
    };
    let Some(observed) = observed else {
        return Err(
            error.unwrap_or_else(|| DrillError::Tool("the drill stopped before it started".into()))
        );
    };
    progress(Progress::Step(format!(
        "writing the report to {}",
        report_dir.display()
    )));
    let summary = write_report(
        &args,
        &plan,
        &report_dir,
        observed,
        interrupted,
        error.as_ref(),
    )?;
    if let Some(e) = error {
        tracing::warn!(event = "drill_failed", error = %e);
    }
    Ok(DrillOutcome {
        summary,
        report: report_dir,
    })
}

/// What was observed, for the report.
struct Observed {
    samples: Vec<Sample>,
    view: ClusterView,
    sink: Sink,
    t0: Instant,
    started_at: String,
    mechanism: Mechanism,
    failure: Option<String>,
}

type DriveResult = Result<(Observed, bool), (Option<Observed>, DrillError)>;

#[allow(clippy::too_many_arguments)]
async fn drive(
    args: &DrillArgs,
    plan: &Plan,
    report_dir: &Path,
    (logs, config_dir, data): (&Path, &Path, &Path),
    registry: &Registry,
    running: &mut Running,
    servers_stopped: tokio::sync::watch::Receiver<bool>,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
    progress: &mut impl FnMut(Progress),
) -> DriveResult {
    let fail = |e: DrillError| (None, e);
    let http = reqwest::Client::new();
    let until_stopped = move || {
        let mut rx = servers_stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // CPU limits first: without them there is no drill worth its name (or a loud fallback).
    let tree = CgroupTree::create(!args.require_cgroups).map_err(fail)?;
    let mechanism = tree.mechanism();
    progress(Progress::Step(format!(
        "CPU limits: {}",
        mechanism.describe()
    )));

    let cluster_config = ClusterConfig {
        api: plan.deployed.api.clone(),
        hpa: plan.hpa.clone(),
        settings: plan.settings.clone(),
        cpu_limit_cores: plan.cpu_limit,
        cpu_request_cores: plan.cpu_request,
        time_scale: plan.time_scale,
        fraudops_bin: plan.fraudops.clone(),
        env: replica_env(&plan.deployed),
        log_dir: logs.to_owned(),
        work_dir: data.to_owned(),
        targets_file: data.join("fraudops-api-targets.json"),
        metric_window: cluster::metric_window(plan.time_scale),
    };
    std::fs::write(&cluster_config.targets_file, "[]")
        .map_err(|e| fail(DrillError::io("writing the targets file", e)))?;

    // The drill's own endpoints: webhook sink and stand-in exporters.
    let view = Arc::new(Mutex::new(ClusterView::default()));
    let sink = Sink::default();
    let snapshot_view = view.clone();
    let snapshot_config = cluster_config.clone();
    let snapshot: control::SnapshotFn = Arc::new(move || {
        let v = snapshot_view.lock().map(|v| v.clone()).unwrap_or_default();
        cluster::snapshot(&v, &snapshot_config)
    });
    let control_addr = control::start(sink.clone(), snapshot, until_stopped())
        .await
        .map_err(fail)?;
    let balancer = Balancer::new(Duration::from_secs(30)).map_err(fail)?;
    let (lb_listener, lb_addr) = Balancer::bind().await.map_err(fail)?;
    {
        let lb = balancer.clone();
        let stopped = until_stopped();
        tokio::spawn(async move {
            if let Err(e) = lb.serve(lb_listener, stopped).await {
                tracing::warn!(event = "balancer_failed", error = %e);
            }
        });
    }

    // Kafka.
    progress(Progress::Step(format!(
        "starting the broker ({})",
        plan.tansu.display()
    )));
    let kafka_port = process::free_port().map_err(fail)?;
    let mut cmd = std::process::Command::new(&plan.tansu);
    cmd.current_dir(data).args([
        "broker",
        "--storage-engine",
        "memory://tansu/",
        "--listener-url",
        &format!("tcp://127.0.0.1:{kafka_port}"),
        "--advertised-listener-url",
        &format!("tcp://127.0.0.1:{kafka_port}"),
    ]);
    let mut tansu = process::spawn(registry, "tansu", cmd, Output::File(logs.join("tansu.log")))
        .map_err(fail)?;
    or_interrupt(
        &mut interrupt,
        process::wait_for_tcp(
            &mut tansu,
            SocketAddr::from(([127, 0, 0, 1], kafka_port)),
            Duration::from_secs(30),
        ),
    )
    .await
    .map_err(fail)?;
    running.tansu = Some(tansu);
    let bootstrap = format!("127.0.0.1:{kafka_port}");

    // The API Deployment at minReplicas, under its HPA.
    progress(Progress::Step(format!(
        "starting {} replicas of `fraudops serve`, each limited to {:.1}m CPU (deployed {}m × {})",
        plan.hpa.min_replicas,
        plan.cpu_limit * 1000.0,
        plan.deployed.api.cpu_limit_cores * 1000.0,
        plan.cpu_factor
    )));
    let cluster = Cluster::start(
        cluster_config.clone(),
        tree,
        registry.clone(),
        balancer.clone(),
        view.clone(),
    )
    .map_err(fail)?;
    running.cluster = Some(cluster);
    if let Some(c) = running.cluster.as_mut() {
        or_interrupt(
            &mut interrupt,
            c.wait_ready(plan.hpa.min_replicas, Duration::from_secs(120)),
        )
        .await
        .map_err(fail)?;
    }

    // The stream worker, calling the API through the balancer.
    progress(Progress::Step(
        "starting the stream worker (HTTP mode, through the load balancer)".into(),
    ));
    let stream_port = process::free_port().map_err(fail)?;
    let mut cmd = std::process::Command::new(&plan.fraudops);
    cmd.current_dir(data)
        .arg("stream")
        .args(["--api-url", &format!("http://{lb_addr}")])
        .args(["--metrics-port", &stream_port.to_string()])
        .args(["--replica-id", "fraudops-stream-0"])
        .args(["--concurrency", &args.stream_concurrency.to_string()])
        .env("KAFKA_BOOTSTRAP_SERVERS", &bootstrap)
        .env("RUST_LOG", "info");
    let mut stream = process::spawn(
        registry,
        "fraudops-stream",
        cmd,
        Output::File(logs.join("stream.log")),
    )
    .map_err(fail)?;
    let stream_addr = SocketAddr::from(([127, 0, 0, 1], stream_port));
    or_interrupt(
        &mut interrupt,
        process::wait_for_http(
            &http,
            &mut stream,
            &format!("http://{stream_addr}/metrics"),
            Duration::from_secs(60),
        ),
    )
    .await
    .map_err(fail)?;
    running.stream = Some(stream);

    // Alertmanager on the deployed routing, Prometheus on the deployed rules.
    progress(Progress::Step(
        "starting Alertmanager (deployed routing; admin chat → the drill's webhook sink)".into(),
    ));
    let am_config = plan
        .deploy_dir
        .join("monitoring/alertmanager/alertmanager.yaml");
    let am_work = data.join("alertmanager");
    std::fs::create_dir_all(&am_work)
        .map_err(|e| fail(DrillError::io("creating alertmanager/", e)))?;
    let (am, am_base, am_addr) = or_interrupt(
        &mut interrupt,
        monitoring::start_alertmanager(
            registry,
            &plan.alertmanager,
            &am_config,
            &am_work,
            &logs.join("alertmanager.log"),
            &format!("http://{control_addr}"),
            &http,
        ),
    )
    .await
    .map_err(fail)?;
    running.alertmanager = Some(am);
    let rule_files = rules::write_scaled(
        &plan.deploy_dir.join("monitoring/rules"),
        &config_dir.join("rules"),
        plan.time_scale,
    )
    .map_err(fail)?;
    let attack_port = process::free_port().map_err(fail)?;
    let attack_addr = SocketAddr::from(([127, 0, 0, 1], attack_port));
    let prom_config = monitoring::prometheus_config(
        &ScrapeTargets {
            api_targets_file: cluster_config.targets_file.clone(),
            stream: stream_addr,
            attack: attack_addr,
            control: control_addr,
            alertmanager: am_addr,
            namespace: plan.deployed.api.namespace.clone(),
        },
        &rule_files,
        plan.interval,
    );
    let _ = std::fs::write(config_dir.join("prometheus.yml"), &prom_config);
    progress(Progress::Step(
        "starting Prometheus (the deployed rule files, recording rules included)".into(),
    ));
    let prom_work = data.join("prometheus");
    std::fs::create_dir_all(&prom_work)
        .map_err(|e| fail(DrillError::io("creating prometheus/", e)))?;
    let (prom, prom_base) = or_interrupt(
        &mut interrupt,
        monitoring::start_prometheus(
            registry,
            &plan.prometheus,
            &prom_work,
            &logs.join("prometheus.log"),
            &prom_config,
            &http,
        ),
    )
    .await
    .map_err(fail)?;
    running.prometheus = Some(prom);
    let prometheus = PrometheusApi::new(&prom_base, http.clone());

    // The deployed cluster recording rules must see the stand-ins before anything else is worth doing.
    let deadline = Instant::now() + plan.interval * 20 + Duration::from_secs(10);
    loop {
        let current = prometheus
            .scalar("fraudops:hpa_current_replicas")
            .await
            .ok()
            .flatten();
        let ratio = prometheus
            .scalar("fraudops:pod_cpu_usage_ratio:max")
            .await
            .ok()
            .flatten();
        if current == Some(f64::from(plan.hpa.min_replicas)) && ratio.is_some() {
            break;
        }
        if Instant::now() > deadline {
            return Err(fail(DrillError::Timeout(format!(
                "Prometheus does not record fraudops:hpa_current_replicas = {} and fraudops:pod_cpu_usage_ratio:max \
                 from the stand-in exporters (got {current:?}, {ratio:?}); see {}",
                plan.hpa.min_replicas,
                logs.join("prometheus.log").display()
            ))));
        }
        or_interrupt(&mut interrupt, async {
            tokio::time::sleep(plan.interval / 2).await;
            Ok(())
        })
        .await
        .map_err(fail)?;
    }

    // The attack.
    let phases = config::format_phases(&plan.phases);
    progress(Progress::Step(format!(
        "attack: {phases}{}",
        if args.negative {
            " (negative drill: no escalation)"
        } else {
            ", then ×step until the admin alert fires"
        }
    )));
    let mut cmd = std::process::Command::new(&plan.fraudops);
    cmd.current_dir(data)
        .arg("attack")
        .args(["--phases", &phases])
        .args(["--metrics-port", &attack_port.to_string()])
        .args([
            "--results",
            &report_dir.join("attack-results.json").display().to_string(),
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", &bootstrap)
        .env("RUST_LOG", "warn");
    if !args.negative {
        cmd.args(["--until-alert", ADMIN_ALERT])
            .args(["--alertmanager", &am_base])
            .args(["--alert-poll", &rules::format_duration(plan.interval)])
            .args(["--step", &args.step.to_string()])
            .args(["--max-rate", &plan.max_rate.to_string()]);
    }
    let t0 = Instant::now();
    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let attack = process::spawn(
        registry,
        "fraudops-attack",
        cmd,
        Output::File(logs.join("attack.log")),
    )
    .map_err(fail)?;
    running.attack = Some(attack);

    let mut sampler = Sampler {
        http: http.clone(),
        prometheus,
        balancer: balancer.clone(),
        view: view.clone(),
        attack: attack_addr,
        stream: stream_addr,
        cpu_limit: plan.cpu_limit,
        t0,
        last_t: t0,
        last_produced: None,
        last_cpu: HashMap::new(),
    };
    let mut samples: Vec<Sample> = Vec::new();
    let mut tick = tokio::time::interval(plan.sample_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut events_seen = 0usize;
    let mut last_state = AlertState::Inactive;
    let mut notified_at: Option<Instant> = None;
    let mut attack_done_at: Option<Instant> = None;
    let mut failure: Option<String> = None;
    let mut interrupted = false;
    let deadline = t0 + plan.max_duration;
    let mut scaling_down = false;
    let min = plan.hpa.min_replicas;
    loop {
        tokio::select! {
            _ = interrupt.wait_for(|i| *i) => {
                interrupted = true;
                progress(Progress::Step("interrupted: stopping everything".into()));
                break;
            }
            _ = tick.tick() => {}
        }
        let s = sampler.sample().await;
        let t = s.t_seconds;
        // Milestones: scaling events, alert changes, notifications.
        let v = view.lock().map(|v| v.clone()).unwrap_or_default();
        for e in v.events.iter().skip(events_seen) {
            let cpu = e
                .metrics
                .iter()
                .find(|m| m.resource.name() == "cpu")
                .map_or(String::new(), |m| {
                    format!(
                        " (CPU {}% of request, target {}%)",
                        m.utilization_percent, m.target_percent
                    )
                });
            progress(Progress::Milestone {
                t_seconds: e.at.saturating_duration_since(t0).as_secs_f64(),
                message: format!("scaling_event {} → {}: {}{cpu}", e.from, e.to, e.reason),
            });
        }
        events_seen = v.events.len();
        if s.alert_state != last_state {
            progress(Progress::Milestone {
                t_seconds: t,
                message: format!("{ADMIN_ALERT}: {}", s.alert_state.as_str()),
            });
            last_state = s.alert_state;
        }
        progress(Progress::Sample(s.clone()));
        samples.push(s);

        if notified_at.is_none()
            && let Some((at, n)) = sink.of("admin").into_iter().next()
        {
            notified_at = Some(at);
            progress(Progress::Milestone {
                t_seconds: at.saturating_duration_since(t0).as_secs_f64(),
                message: format!(
                    "the admin webhook received: {}",
                    n.title().lines().next().unwrap_or_default()
                ),
            });
        }
        if attack_done_at.is_none()
            && let Some(status) = running.attack.as_mut().and_then(Proc::exited)
        {
            attack_done_at = Some(Instant::now());
            progress(Progress::Milestone {
                t_seconds: t,
                message: format!("the attack ended ({status})"),
            });
            if !args.negative && !status.success() && notified_at.is_none() {
                failure = Some(format!(
                    "the attack gave up before {ADMIN_ALERT} fired (max rate {} tx/s); see logs/attack.log",
                    plan.max_rate
                ));
                break;
            }
        }
        if Instant::now() > deadline {
            failure = Some(format!(
                "no outcome within {:?} (--max-duration)",
                plan.max_duration
            ));
            break;
        }
        if args.negative {
            if attack_done_at.is_some() {
                break;
            }
            continue;
        }
        if let Some(at) = notified_at {
            if !plan.scale_down {
                // A short settle so a duplicate notification would be caught.
                if at.elapsed() >= plan.interval * 2 {
                    break;
                }
                continue;
            }
            if !scaling_down {
                scaling_down = true;
                progress(Progress::Step(
                    "load stopped; watching the HPA scale back down".into(),
                ));
                if let Some(p) = running.attack.take() {
                    p.stop(Duration::from_secs(10)).await;
                }
            }
            if v.current() == min && v.events.last().is_some_and(|e| e.to == min && e.from > min) {
                break;
            }
        } else if let Some(done) = attack_done_at {
            // The attack stops as soon as Alertmanager has the alert; the notification follows after the
            // route's group_wait.
            if done.elapsed() > ADMIN_GROUP_WAIT * 3 + plan.interval * 4 {
                failure = Some("the alert fired but the admin webhook received nothing".into());
                break;
            }
        }
    }
    let view = running
        .cluster
        .as_ref()
        .map(Cluster::view)
        .unwrap_or_default();
    Ok((
        Observed {
            samples,
            view,
            sink,
            t0,
            started_at,
            mechanism,
            failure,
        },
        interrupted,
    ))
}

/// `fut`, unless Ctrl-C comes first.
async fn or_interrupt<T>(
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
    fut: impl Future<Output = Result<T, DrillError>>,
) -> Result<T, DrillError> {
    tokio::select! {
        r = fut => r,
        _ = interrupt.wait_for(|i| *i) => Err(DrillError::Interrupted),
    }
}

fn secs_since(t0: Instant, t: Instant) -> f64 {
    t.saturating_duration_since(t0).as_secs_f64()
}

/// Seconds from `t0` to `t`, negative before the attack started (the first replicas).
fn signed_secs(t0: Instant, t: Instant) -> f64 {
    if t >= t0 {
        t.duration_since(t0).as_secs_f64()
    } else {
        -t0.duration_since(t).as_secs_f64()
    }
}

fn write_report(
    args: &DrillArgs,
    plan: &Plan,
    dir: &Path,
    o: Observed,
    interrupted: bool,
    error: Option<&DrillError>,
) -> Result<Summary, DrillError> {
    let t0 = o.t0;
    let mut events = o.view.events.clone();
    for e in &mut events {
        e.t_seconds = Some(secs_since(t0, e.at));
    }
    let mut notes: Vec<Notification> = o
        .sink
        .received()
        .into_iter()
        .map(|(at, mut n)| {
            n.t_seconds = Some(secs_since(t0, at));
            n
        })
        .collect();
    notes.sort_by(|a, b| {
        a.t_seconds
            .partial_cmp(&b.t_seconds)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let admin: Vec<Notification> = notes
        .iter()
        .filter(|n| n.hook == "admin")
        .cloned()
        .collect();
    let oncall: Vec<Notification> = notes
        .iter()
        .filter(|n| n.hook == "oncall")
        .cloned()
        .collect();
    let replicas: Vec<ReplicaTimes> = o
        .view
        .lives
        .iter()
        .map(|l| ReplicaTimes {
            pod: l.pod.clone(),
            started_s: signed_secs(t0, l.started),
            ready_s: l.ready.map(|r| signed_secs(t0, r)),
            terminating_s: l.terminating.map(|t| signed_secs(t0, t)),
        })
        .collect();
    let max = plan.hpa.max_replicas;
    // The replica that brought the count to the maximum: the scale-up event to max, then the pod started
    // at that moment.
    let max_event = events.iter().find(|e| e.to == max && e.from < max);
    let max_replicas_ready_s = max_event.and_then(|e| {
        o.view
            .lives
            .iter()
            .filter(|l| l.started >= e.at)
            .filter_map(|l| l.ready)
            .min()
            .map(|r| secs_since(t0, r))
    });
    let first = |state: AlertState| {
        o.samples
            .iter()
            .find(|s| s.alert_state == state)
            .map(|s| s.t_seconds)
    };
    let alert_pending_s = first(AlertState::Pending).or(first(AlertState::Firing));
    let alert_firing_s = first(AlertState::Firing);
    let notification_s = admin.first().and_then(|n| n.t_seconds);

    let mut checks = Vec::new();
    let mut check = |name: &str, passed: bool, detail: String| {
        checks.push(Check {
            name: name.into(),
            passed,
            detail,
        });
    };
    if let Some(f) = &o.failure {
        check("the drill completed", false, f.clone());
    }
    if let Some(e) = error {
        check("the drill ran to the end", false, e.to_string());
    }
    check(
        "no replica crashed",
        o.view.crashes.is_empty(),
        if o.view.crashes.is_empty() {
            "none".into()
        } else {
            o.view.crashes.join(", ")
        },
    );
    let ups: Vec<&ScalingEvent> = events.iter().filter(|e| e.to > e.from).collect();
    if args.negative {
        check(
            "the admin alert never went pending or firing",
            alert_pending_s.is_none(),
            match alert_pending_s {
                Some(t) => format!("{ADMIN_ALERT} active at t = {t:.1} s"),
                None => format!("inactive in all {} samples", o.samples.len()),
            },
        );
        check(
            "the admin webhook received nothing",
            admin.is_empty(),
            format!("{} admin notification(s)", admin.len()),
        );
    } else {
        let path: Vec<String> = std::iter::once(plan.hpa.min_replicas.to_string())
            .chain(ups.iter().map(|e| e.to.to_string()))
            .collect();
        let one_by_one = ups.iter().all(|e| e.to == e.from + 1);
        check(
            &format!(
                "the HPA scaled {} → {max} one replica at a time",
                plan.hpa.min_replicas
            ),
            max_event.is_some() && one_by_one,
            format!("replicas {}", path.join(" → ")),
        );
        let period = plan
            .hpa
            .behavior
            .scale_up
            .longest_policy_period()
            .as_secs_f64();
        let gaps: Vec<f64> = ups
            .windows(2)
            .map(|w| w[1].t_seconds.unwrap_or_default() - w[0].t_seconds.unwrap_or_default())
            .collect();
        check(
            &format!("scale-ups at least one policy period ({period:.1} s) apart"),
            gaps.iter().all(|g| *g >= period - 0.05),
            format!(
                "gaps {:?} s",
                gaps.iter()
                    .map(|g| (g * 10.0).round() / 10.0)
                    .collect::<Vec<_>>()
            ),
        );
        check(
            "the admin alert fired only after the last replica (maxReplicas) was running",
            match (
                max_event.and_then(|e| e.t_seconds),
                alert_pending_s,
                alert_firing_s,
                max_replicas_ready_s,
            ) {
                (Some(scaled), Some(pending), Some(firing), Some(ready)) => {
                    pending >= scaled && firing >= ready
                }
                _ => false,
            },
            format!(
                "scaled to {max} at {}, ready at {}; alert pending at {}, firing at {}",
                fmt_s(max_event.and_then(|e| e.t_seconds)),
                fmt_s(max_replicas_ready_s),
                fmt_s(alert_pending_s),
                fmt_s(alert_firing_s)
            ),
        );
        // Exactly one FIRING notification of the admin alert; once the load has stopped (runs that watch
        // the scale-down), Alertmanager's `send_resolved` may add its RESOLVED notification, after it.
        let firing: Vec<&Notification> = admin
            .iter()
            .filter(|n| n.title().starts_with(EXPECTED_TITLE))
            .collect();
        let resolved: Vec<&Notification> = admin
            .iter()
            .filter(|n| n.title().starts_with(EXPECTED_RESOLVED_TITLE))
            .collect();
        let resolved_in_order = match (firing.first(), resolved.as_slice()) {
            (_, []) => true,
            (Some(f), [r]) => plan.scale_down && r.t_seconds >= f.t_seconds,
            _ => false,
        };
        let expected =
            firing.len() == 1 && firing.len() + resolved.len() == admin.len() && resolved_in_order;
        check(
            if plan.scale_down {
                "the admin webhook holds exactly one firing notification of the admin alert (and then at most its resolution)"
            } else {
                "the admin webhook holds exactly the expected notification"
            },
            expected,
            format!(
                "{} notification(s): {:?}",
                admin.len(),
                admin
                    .iter()
                    .map(|n| n.title().lines().next().unwrap_or_default().to_owned())
                    .collect::<Vec<_>>()
            ),
        );
        if plan.scale_down && !interrupted {
            let downs: Vec<&ScalingEvent> = events.iter().filter(|e| e.to < e.from).collect();
            check(
                &format!(
                    "after the load the HPA scaled back to {}",
                    plan.hpa.min_replicas
                ),
                o.view.current() == plan.hpa.min_replicas && !downs.is_empty(),
                format!(
                    "scale-downs at {:?} s",
                    downs
                        .iter()
                        .map(|e| e.t_seconds.map(|t| t.round()))
                        .collect::<Vec<_>>()
                ),
            );
        }
    }
    let passed = checks.iter().all(|c| c.passed);
    let verdict = if interrupted {
        "interrupted"
    } else if passed {
        "passed"
    } else {
        "failed"
    };
    let attack = std::fs::read_to_string(dir.join("attack-results.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mode = format!(
        "{}{}",
        if args.quick {
            "quick"
        } else if plan.time_scale < 1.0 {
            "scaled"
        } else {
            "full"
        },
        if args.negative { " negative" } else { "" }
    );
    let summary = Summary {
        verdict: verdict.into(),
        mode,
        time_scale: plan.time_scale,
        cpu_mechanism: o.mechanism,
        cpu_mechanism_description: o.mechanism.describe().into(),
        manifest_source: plan.deployed.source.clone(),
        hpa: plan.deployed.hpa.clone(),
        deployed_cpu_request_cores: plan.deployed.api.cpu_request_cores,
        deployed_cpu_limit_cores: plan.deployed.api.cpu_limit_cores,
        cpu_factor: plan.cpu_factor,
        drill_cpu_request_cores: plan.cpu_request,
        drill_cpu_limit_cores: plan.cpu_limit,
        controller: plan.settings.clone(),
        scrape_interval_s: plan.interval.as_secs_f64(),
        phases: config::format_phases(&plan.phases),
        attack_started_at: o.started_at.clone(),
        duration_s: o.samples.last().map_or(0.0, |s| s.t_seconds),
        scaling_events: events.clone(),
        replicas,
        max_replicas_ready_s,
        alert_pending_s,
        alert_firing_s,
        notification_s,
        admin_notifications: admin.clone(),
        oncall_notifications: oncall,
        attack,
        crashes: o.view.crashes.clone(),
        checks,
    };

    report::write(dir, "series.csv", &report::series_csv(&o.samples))?;
    report::write(dir, "replicas.csv", &report::replicas_csv(&o.samples))?;
    report::write(
        dir,
        "notifications.json",
        &report::notifications_json(&notes),
    )?;
    if let Some(first) = admin.first() {
        report::write(
            dir,
            "admin-notification.json",
            &serde_json::to_string_pretty(&first.body).unwrap_or_default(),
        )?;
    }
    report::write(
        dir,
        "summary.json",
        &serde_json::to_string_pretty(&summary).unwrap_or_default(),
    )?;
    let mut marks = Vec::new();
    if let Some(t) = notification_s {
        marks.push(Mark {
            t_seconds: t,
            label: "admin notified".into(),
        });
    }
    let title = format!(
        "fraudops drill ({}) — {} — CPU limit {:.1}m per replica via {} — {}",
        summary.mode,
        verdict.to_uppercase(),
        plan.cpu_limit * 1000.0,
        match o.mechanism {
            Mechanism::CgroupV1 => "cgroup v1 CFS quota",
            Mechanism::CgroupV2 => "cgroup v2 cpu.max",
            Mechanism::Accounting => "ACCOUNTING ONLY (not enforced)",
        },
        match (alert_firing_s, notification_s) {
            (Some(f), Some(n)) => format!("alert firing at {f:.0} s, admin notified at {n:.0} s"),
            (Some(f), None) => format!("alert firing at {f:.0} s"),
            _ => "no admin alert".into(),
        }
    );
    let cpu_target = plan
        .deployed
        .hpa
        .metrics
        .iter()
        .find(|m| m.resource.name() == "cpu")
        .map_or(0.0, |m| f64::from(m.average_utilization) / 100.0);
    report::draw_chart(
        &dir.join("chart.svg"),
        &ChartInput {
            title: &title,
            samples: &o.samples,
            events: &events,
            marks: &marks,
            hpa_target_of_limit: cpu_target * plan.cpu_request / plan.cpu_limit,
            max_replicas: max,
        },
    )?;
    report::write(dir, "summary.md", &summary_markdown(&summary, plan))?;
    Ok(summary)
}

fn fmt_s(v: Option<f64>) -> String {
    v.map_or_else(|| "–".into(), |v| format!("{v:.1} s"))
}

fn summary_markdown(s: &Summary, plan: &Plan) -> String {
    use std::fmt::Write as _;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# fraudops attack drill: {} ({})\n",
        s.verdict.to_uppercase(),
        s.mode
    );
    if s.cpu_mechanism == Mechanism::Accounting {
        let _ = writeln!(
            m,
            "> **WARNING: CPU WAS NOT LIMITED.** No cgroup was writable on this machine, so the replicas ran \
             without a CFS quota and only *reported* their CPU against `CPU_LIMIT_CORES`. Saturation in this \
             run says nothing about the limit. Run as root on a machine with writable cgroups.\n"
        );
    }
    let _ = writeln!(
        m,
        "Attack started {}; observed for {:.0} s. Time scale {} (1 = real time).\n",
        s.attack_started_at, s.duration_s, s.time_scale
    );
    let _ = writeln!(m, "## Outcome\n");
    let _ = writeln!(m, "| | seconds after the attack started |\n|---|---|");
    let _ = writeln!(
        m,
        "| replica {} (maxReplicas) ready | {} |",
        s.hpa.max_replicas,
        fmt_s(s.max_replicas_ready_s)
    );
    let _ = writeln!(
        m,
        "| `{ADMIN_ALERT}` pending | {} |",
        fmt_s(s.alert_pending_s)
    );
    let _ = writeln!(
        m,
        "| `{ADMIN_ALERT}` firing (time to alert) | {} |",
        fmt_s(s.alert_firing_s)
    );
    let _ = writeln!(
        m,
        "| admin webhook notified | {} |\n",
        fmt_s(s.notification_s)
    );
    let _ = writeln!(m, "| check | result | evidence |\n|---|---|---|");
    for c in &s.checks {
        let _ = writeln!(
            m,
            "| {} | {} | {} |",
            c.name,
            if c.passed { "pass" } else { "**FAIL**" },
            c.detail.replace('|', "\\|")
        );
    }
    let _ = writeln!(m, "\n## What ran\n");
    let _ = writeln!(
        m,
        "- **CPU limits: {}.** Each replica ran in its own cgroup with a CFS quota of {:.1}m CPU per {} ms period = the deployed limit {:.0}m × the drill's CPU factor {}; the HPA measured utilisation against the request {:.1}m (deployed {:.0}m × {}).",
        s.cpu_mechanism_description,
        s.drill_cpu_limit_cores * 1000.0,
        crate::cgroup::CFS_PERIOD.as_millis(),
        s.deployed_cpu_limit_cores * 1000.0,
        s.cpu_factor,
        s.drill_cpu_request_cores * 1000.0,
        s.deployed_cpu_request_cores * 1000.0,
        s.cpu_factor
    );
    let _ = writeln!(
        m,
        "- **Manifests:** `{}` — HPA `{}`: min {}, max {}, targets {}; scale-up {} per {:?} after a {:?} window; scale-down {} per {:?} after a {:?} window (deployed values; the drill ran them ×{}).",
        s.manifest_source,
        s.hpa.name,
        s.hpa.min_replicas,
        s.hpa.max_replicas,
        s.hpa
            .metrics
            .iter()
            .map(|t| format!("{} {}%", t.resource.name(), t.average_utilization))
            .collect::<Vec<_>>()
            .join(", "),
        policies(&s.hpa.behavior.scale_up),
        s.hpa
            .behavior
            .scale_up
            .policies
            .first()
            .map(|p| p.period)
            .unwrap_or_default(),
        s.hpa.behavior.scale_up.stabilization_window,
        policies(&s.hpa.behavior.scale_down),
        s.hpa
            .behavior
            .scale_down
            .policies
            .first()
            .map(|p| p.period)
            .unwrap_or_default(),
        s.hpa.behavior.scale_down.stabilization_window,
        s.time_scale
    );
    let _ = writeln!(
        m,
        "- **Autoscaler:** the Kubernetes HPA algorithm (fraudops-drill `hpa`), sync every {:?}, tolerance {}, CPU from the cgroups over a {:?} metrics-server window.",
        s.controller.sync_period,
        s.controller.tolerance,
        crate::cluster::metric_window(s.time_scale)
    );
    let _ = writeln!(
        m,
        "- **Prometheus:** the deployed `deploy/monitoring/rules/*.yaml` (recording rules unchanged; alert `for:` ×{}), scraping every {:.1} s the replicas, the stream worker, and stand-in kube-state-metrics and cAdvisor exporters fed by the drill's replicas and autoscaler.",
        s.time_scale, s.scrape_interval_s
    );
    let _ = writeln!(
        m,
        "- **Alertmanager:** `deploy/monitoring/alertmanager/alertmanager.yaml` unchanged; `secrets/admin-chat-url` and `secrets/oncall-chat-url` point at the drill's webhook sink."
    );
    let _ = writeln!(
        m,
        "- **Load:** `fraudops attack --phases {}` into Kafka (tansu), `fraudops stream` calling the API over HTTP through a round-robin load balancer over the ready replicas.\n",
        s.phases
    );
    if let Some(phases) = s
        .attack
        .as_ref()
        .and_then(|a| a.get("phases"))
        .and_then(|p| p.as_array())
    {
        let _ = writeln!(
            m,
            "## Attack phases\n\n| phase | target tx/s | achieved tx/s | sent | errors | seconds |\n|---|---|---|---|---|---|"
        );
        for p in phases {
            let g = |k: &str| {
                p.get(k).map_or("–".into(), |v| match v.as_f64() {
                    Some(f) if f.fract() != 0.0 => format!("{f:.1}"),
                    _ => v.to_string(),
                })
            };
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} | {} | {} |",
                g("phase"),
                g("target_rate"),
                g("achieved_rate"),
                g("sent"),
                g("errors"),
                g("elapsed_s")
            );
        }
        let _ = writeln!(m);
    }
    let _ = writeln!(
        m,
        "## Scaling events\n\n| t (s) | from | to | reason | CPU % of request | memory % of request | limited by |\n|---|---|---|---|---|---|---|"
    );
    for e in &s.scaling_events {
        let pct = |r: &str| {
            e.metrics
                .iter()
                .find(|x| x.resource.name() == r)
                .map_or("–".into(), |x| {
                    format!("{} (target {})", x.utilization_percent, x.target_percent)
                })
        };
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} | {} | {} |",
            fmt_s(e.t_seconds).trim_end_matches(" s"),
            e.from,
            e.to,
            e.reason,
            pct("cpu"),
            pct("memory"),
            e.condition
        );
    }
    let _ = writeln!(
        m,
        "\n## Replicas\n\n| pod | started (s) | ready (s) | terminating (s) |\n|---|---|---|---|"
    );
    for r in &s.replicas {
        let _ = writeln!(
            m,
            "| {} | {:.1} | {} | {} |",
            r.pod,
            r.started_s,
            fmt_s(r.ready_s).trim_end_matches(" s"),
            fmt_s(r.terminating_s).trim_end_matches(" s")
        );
    }
    let _ = writeln!(m, "\n## The administrator's notification\n");
    match s.admin_notifications.first() {
        Some(n) => {
            let _ = writeln!(
                m,
                "Received by the admin webhook at t = {} ({}):\n\n```json\n{}\n```",
                fmt_s(n.t_seconds),
                n.received_at,
                serde_json::to_string_pretty(&n.body).unwrap_or_default()
            );
        }
        None => {
            let _ = writeln!(m, "None received.");
        }
    }
    if !s.oncall_notifications.is_empty() {
        let _ = writeln!(
            m,
            "\nOn-call chat received {} notification(s): {}.",
            s.oncall_notifications.len(),
            s.oncall_notifications
                .iter()
                .map(|n| format!("`{}`", n.title().lines().next().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let _ = writeln!(
        m,
        "\n## Files\n\n- `chart.svg` — load, p95 latency, CPU per replica against its limit, replicas; the admin alert's pending/firing periods shaded\n- `series.csv` — one row per sample (every {:.1} s); `replicas.csv` — CPU per replica per sample\n- `summary.json` — this summary, machine-readable; `notifications.json`, `admin-notification.json`; `attack-results.json`\n- `config/` — the Prometheus configuration and rule files as loaded; `logs/` — every component's log",
        plan.sample_every.as_secs_f64()
    );
    m
}

fn policies(r: &crate::hpa::ScalingRules) -> String {
    r.policies
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p.value,
                match p.kind {
                    crate::hpa::PolicyKind::Pods => "pod(s)",
                    crate::hpa::PolicyKind::Percent => "%",
                }
            )
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_the_text_format() {
        let m = scrape_sums(
            "# HELP x y\n# TYPE kafka_messages_produced_total counter\nkafka_messages_produced_total{topic=\"a\"} 10\n\
             kafka_messages_produced_total{topic=\"b\"} 5\nattack_target_rate 200\n",
        );
        assert_eq!(m.get("kafka_messages_produced_total"), Some(&15.0));
        assert_eq!(m.get("attack_target_rate"), Some(&200.0));
    }

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
