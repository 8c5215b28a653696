//! The drill from start to report: resolve what is deployed ([`crate::plan`]), start every component
//! ([`crate::components`]), run the attack and watch it, stop everything, conclude ([`crate::conclude`]).

use std::future::Future;
use std::path::Path;
use std::time::Instant;

use crate::cgroup::Mechanism;
use crate::cluster::{Cluster, ClusterView};
use crate::components::{self, Running};
use crate::conclude;
use crate::config::{self, DrillArgs};
use crate::control::Sink;
use crate::error::DrillError;
use crate::monitoring::AlertState;
use crate::plan::{self, Plan};
use crate::process::{self, Output, Proc, Registry};
use crate::report::Sample;
use crate::rules;
use crate::sampler::Sampler;
use crate::summary::DrillOutcome;
use crate::verdict::{ADMIN_ALERT, ADMIN_GROUP_WAIT};

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
    let ctx = Ctx {
        args: &args,
        plan: &plan,
        report_dir: &report_dir,
        logs: &logs,
        config_dir: &config_dir,
        data: data.path(),
        registry: &registry,
    };
    let result = drive(
        &ctx,
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
    let summary = conclude::write_report(
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
pub(crate) struct Observed {
    pub(crate) samples: Vec<Sample>,
    pub(crate) view: ClusterView,
    pub(crate) sink: Sink,
    pub(crate) t0: Instant,
    pub(crate) started_at: String,
    pub(crate) mechanism: Mechanism,
    pub(crate) failure: Option<String>,
}

type DriveResult = Result<(Observed, bool), (Option<Observed>, DrillError)>;

/// What every step of a drill reads: the options, the plan, where files go, the process registry.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub(crate) args: &'a DrillArgs,
    pub(crate) plan: &'a Plan,
    pub(crate) report_dir: &'a Path,
    pub(crate) logs: &'a Path,
    pub(crate) config_dir: &'a Path,
    pub(crate) data: &'a Path,
    pub(crate) registry: &'a Registry,
}

/// Starts the components, runs the attack and watches until the outcome (or the deadline, or Ctrl-C).
async fn drive(
    ctx: &Ctx<'_>,
    running: &mut Running,
    servers_stopped: tokio::sync::watch::Receiver<bool>,
    mut interrupt: tokio::sync::watch::Receiver<bool>,
    progress: &mut impl FnMut(Progress),
) -> DriveResult {
    let fail = |e: DrillError| (None, e);
    let Ctx {
        args,
        plan,
        report_dir,
        data,
        registry,
        logs,
        ..
    } = *ctx;
    let started = components::start(ctx, running, servers_stopped, &mut interrupt, progress)
        .await
        .map_err(fail)?;

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
        // The drill measures the API's CPU; labels would only add broker load (no store runs here).
        .args(["--labels", "off"])
        .args(["--metrics-port", &started.attack_addr.port().to_string()])
        .args([
            "--results",
            &report_dir.join("attack-results.json").display().to_string(),
        ])
        .env("KAFKA_BOOTSTRAP_SERVERS", &started.bootstrap)
        .env("RUST_LOG", "warn");
    if !args.negative {
        cmd.args(["--until-alert", ADMIN_ALERT])
            .args(["--alertmanager", &started.am_base])
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

    let mut sampler = Sampler::new(&started, plan.cpu_limit, t0);
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
        let v = started.view.lock().map(|v| v.clone()).unwrap_or_default();
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
            && let Some((at, n)) = started.sink.of("admin").into_iter().next()
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
                    p.stop(components::ATTACK_STOP_GRACE).await;
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
            sink: started.sink,
            t0,
            started_at,
            mechanism: started.mechanism,
            failure,
        },
        interrupted,
    ))
}

/// `fut`, unless Ctrl-C comes first.
pub(crate) async fn or_interrupt<T>(
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
    fut: impl Future<Output = Result<T, DrillError>>,
) -> Result<T, DrillError> {
    tokio::select! {
        r = fut => r,
        _ = interrupt.wait_for(|i| *i) => Err(DrillError::Interrupted),
    }
}
