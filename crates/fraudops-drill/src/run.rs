//! The drill from start to report: resolve what is deployed, start every component, run the attack,
//! watch, stop everything, write the report.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::balancer::Balancer;
use crate::cgroup::{CgroupTree, Mechanism};
use crate::cluster::{self, Cluster, ClusterConfig, ClusterView};
use crate::config::{self, DrillArgs};
use crate::control::{self, Notification, Sink};
use crate::error::DrillError;
use crate::monitoring::{self, AlertState, PrometheusApi, ScrapeTargets};
use crate::plan::{self, Plan, replica_env};
use crate::process::{self, Output, Proc, Registry};
use crate::report::{self, ChartInput, Mark, Sample};
use crate::rules;
use crate::sampler::Sampler;
use crate::summary::{self, DrillOutcome, ReplicaTimes, Summary};
use crate::verdict::{self, ADMIN_ALERT, ADMIN_GROUP_WAIT, Evidence};

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

/// Runs a drill; `shutdown` (Ctrl-C) ends it early, still stopping everything and writing the report.
pub async fn run(
    args: DrillArgs,
    shutdown: impl Future<Output = ()> + Send + 'static,
    mut progress: impl FnMut(Progress),
) -> Result<DrillOutcome, DrillError> {
    let plan = plan::plan(&args)?;
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
        "starting {} replicas of `fraudops serve` ({}), each limited to {:.1}m CPU{}",
        plan.hpa.min_replicas,
        plan.overlay,
        plan.cpu_limit * 1000.0,
        if plan.cpu_factor == 1.0 {
            " as deployed".to_owned()
        } else {
            format!(
                " — SCALED: deployed {}m × CPU factor {}",
                plan.deployed.api.cpu_limit_cores * 1000.0,
                plan.cpu_factor
            )
        }
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

/// Writes every report file and returns the summary with its verdict.
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

    let capacity = plan::capacity_statement(plan, &o.samples);
    let checks = verdict::checks(&Evidence {
        negative: args.negative,
        scale_down: plan.scale_down,
        interrupted,
        failure: o.failure.as_deref(),
        error: error.map(ToString::to_string).as_deref(),
        crashes: &o.view.crashes,
        hpa: &plan.hpa,
        events: &events,
        replicas_now: o.view.current(),
        max_replicas_ready_s,
        alert_pending_s,
        alert_firing_s,
        samples: o.samples.len(),
        admin: &admin,
        capacity: capacity.as_ref(),
        held_rate: plan.phases.last().map_or(0.0, |p| p.rate),
    });
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
        overlay: plan.overlay.clone(),
        cpu_scaled: plan.cpu_factor != 1.0,
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
        capacity,
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
        "fraudops drill ({}) — {} — {} — CPU limit {:.1}m per replica{} via {} — {}",
        summary.mode,
        verdict.to_uppercase(),
        plan.overlay,
        plan.cpu_limit * 1000.0,
        if summary.cpu_scaled {
            format!(" (SCALED ×{})", plan.cpu_factor)
        } else {
            String::new()
        },
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
    report::write(
        dir,
        "summary.md",
        &summary::markdown(&summary, plan.sample_every),
    )?;
    Ok(summary)
}
