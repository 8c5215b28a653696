//! The part of Kubernetes the drill reproduces for the API: a Deployment whose pods are `fraudops serve`
//! processes, each in its own cgroup under its CPU limit; readiness probes that put pods in and out of the
//! load balancer; the pod termination sequence (out of the endpoints, preStop, SIGTERM, SIGKILL after the
//! grace period); a metrics-server view of each pod's CPU and memory; and the HPA controller syncing
//! every sync period with the algorithm of [`crate::hpa`].
//!
//! Why one file of ~800 lines: one task owns every pod and process, and each step of a pod's life (start,
//! probe, terminate, sync) mutates that task's state; what the HPA reads of a pod is `metrics_server.rs`.
//!
//! One task owns every pod and process (no locks around children); it publishes a [`ClusterView`] that
//! the exporters, the report sampler and the balancer read.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::balancer::{Balancer, Endpoint};
use crate::cgroup::{CgroupTree, ReplicaGroup, proc_resident_bytes};
use crate::error::DrillError;
use crate::exporter::{ClusterSnapshot, PodSnapshot};
use crate::hpa::{Autoscaler, ControllerSettings, HpaSpec, MetricProposal, PodState};
use crate::manifest::ApiWorkload;
use crate::metrics_server::UsageWindow;
use crate::process::{self, Output, Proc, Registry};

/// How the drill runs the Deployment.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The deployed workload (names, probes, drain).
    pub api: ApiWorkload,
    /// The HPA object, time-scaled.
    pub hpa: HpaSpec,
    /// Controller flags, time-scaled.
    pub settings: ControllerSettings,
    /// CPU limit of each replica (the deployed limit × the drill's CPU factor), cores.
    pub cpu_limit_cores: f64,
    /// CPU request of each replica (the deployed request × the same factor), cores.
    pub cpu_request_cores: f64,
    /// The clock factor (1 = real time).
    pub time_scale: f64,
    /// The `fraudops` binary.
    pub fraudops_bin: PathBuf,
    /// Environment of each replica (the ConfigMap's, adapted; see `run`).
    pub env: BTreeMap<String, String>,
    /// Where replica logs go.
    pub log_dir: PathBuf,
    /// Working directory of the replicas.
    pub work_dir: PathBuf,
    /// Prometheus file_sd targets file for job `fraudops-api`.
    pub targets_file: PathBuf,
    /// The metrics-server window a CPU average covers.
    pub metric_window: Duration,
}

/// One `scaling_event`: the HPA changed the replica count.
#[derive(Debug, Clone, Serialize)]
pub struct ScalingEvent {
    /// When.
    #[serde(skip)]
    pub at: Instant,
    /// Seconds since the attack started (filled in by the report).
    pub t_seconds: Option<f64>,
    /// Replicas before.
    pub from: u32,
    /// Replicas after.
    pub to: u32,
    /// Why (`cpu resource utilization (percentage of request) above target`, ...).
    pub reason: String,
    /// What shaped the count (`ScaleUpLimit`, `TooManyReplicas`, `DesiredWithinRange`, ...).
    pub condition: String,
    /// The largest metric proposal before stabilisation and policies.
    pub recommended: Option<u32>,
    /// Per-metric utilisation and proposal.
    pub metrics: Vec<MetricProposal>,
}

/// A pod's life, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PodLife {
    /// Pod name.
    pub pod: String,
    /// Started.
    #[serde(skip)]
    pub started: Instant,
    /// First became ready.
    #[serde(skip)]
    pub ready: Option<Instant>,
    /// Began terminating.
    #[serde(skip)]
    pub terminating: Option<Instant>,
}

/// A pod as the view shows it.
#[derive(Debug, Clone)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Process id.
    pub pid: u32,
    /// Its cgroup (read at scrape time for fresh numbers).
    pub group: ReplicaGroup,
    /// Ready condition.
    pub ready: bool,
    /// Being drained.
    pub terminating: bool,
    /// Working set at the last tick.
    pub memory_bytes: u64,
}

/// What the rest of the drill sees of the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterView {
    /// Deployment `spec.replicas` (set by the HPA).
    pub spec_replicas: u32,
    /// HPA `status.desiredReplicas`.
    pub desired_replicas: u32,
    /// The pods, terminating ones included.
    pub pods: Vec<PodView>,
    /// Every scaling event so far.
    pub events: Vec<ScalingEvent>,
    /// Every pod that ever ran.
    pub lives: Vec<PodLife>,
    /// Pods that exited without being asked (crashes).
    pub crashes: Vec<String>,
}

impl ClusterView {
    /// Pods not terminating (`status.replicas`, the HPA's current replicas).
    pub fn current(&self) -> u32 {
        self.pods.iter().filter(|p| !p.terminating).count() as u32
    }

    /// Ready pods not terminating.
    pub fn ready(&self) -> u32 {
        self.pods
            .iter()
            .filter(|p| p.ready && !p.terminating)
            .count() as u32
    }
}

/// The running cluster.
pub struct Cluster {
    view: Arc<Mutex<ClusterView>>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), DrillError>>>,
}

enum Event {
    Listening { pod: String, base_url: String },
    ListenFailed { pod: String, reason: String },
    Probe { pod: String, ok: bool },
    Terminated { pod: String },
}

struct Pod {
    name: String,
    proc: Option<Proc>,
    pid: u32,
    group: ReplicaGroup,
    started: Instant,
    base_url: Option<String>,
    ready: bool,
    ready_changed: Option<Instant>,
    failures: u32,
    probing: bool,
    terminating: bool,
    /// What metrics-server reports of it.
    usage: UsageWindow,
}

impl Cluster {
    /// Starts the Deployment at `minReplicas` and its controllers.
    /// `view` is shared with whoever reads the cluster (the exporters hold it before the cluster starts).
    pub fn start(
        config: ClusterConfig,
        tree: CgroupTree,
        registry: Registry,
        balancer: Balancer,
        view: Arc<Mutex<ClusterView>>,
    ) -> Result<Self, DrillError> {
        if let Ok(mut v) = view.lock() {
            v.spec_replicas = config.hpa.min_replicas;
            v.desired_replicas = config.hpa.min_replicas;
        }
        let (stop, stop_rx) = oneshot::channel();
        let controller = Controller::new(config, tree, registry, balancer, view.clone());
        let task = tokio::spawn(controller.run(stop_rx));
        Ok(Self {
            view,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The current view.
    pub fn view(&self) -> ClusterView {
        self.view.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Polls until `n` pods are ready, the controller fails, or `timeout` passes.
    pub async fn wait_ready(&mut self, n: u32, timeout: Duration) -> Result<(), DrillError> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.view().ready() >= n {
                return Ok(());
            }
            if self.task.as_ref().is_some_and(JoinHandle::is_finished) {
                return match self.task.take() {
                    Some(t) => match t.await {
                        Ok(Ok(())) => {
                            Err(DrillError::Tool("the cluster controller stopped".into()))
                        }
                        Ok(Err(e)) => Err(e),
                        Err(e) => Err(DrillError::Tool(format!(
                            "the cluster controller panicked: {e}"
                        ))),
                    },
                    None => Err(DrillError::Tool("the cluster controller stopped".into())),
                };
            }
            if Instant::now() > deadline {
                return Err(DrillError::Timeout(format!(
                    "{n} replicas were not ready within {timeout:?} (see the replica logs)"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every pod (drained as on a scale-down, without the preStop wait) and removes the cgroups.
    pub async fn shutdown(mut self) -> Result<(), DrillError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(t) => t
                .await
                .map_err(|e| DrillError::Tool(format!("the cluster controller panicked: {e}")))?,
            None => Ok(()),
        }
    }
}

/// The stand-in exporters' snapshot of `view`, with CPU read from the cgroups now.
pub fn snapshot(view: &ClusterView, config: &ClusterConfig) -> ClusterSnapshot {
    let pod = |p: &PodView| PodSnapshot {
        name: p.name.clone(),
        ready: p.ready,
        cpu: p.group.stats(Some(p.pid)),
        memory_bytes: p.memory_bytes,
    };
    ClusterSnapshot {
        namespace: config.api.namespace.clone(),
        deployment: config.api.deployment.clone(),
        container: config.api.container.clone(),
        hpa: config.hpa.name.clone(),
        current_replicas: view.current(),
        desired_replicas: view.desired_replicas,
        min_replicas: config.hpa.min_replicas,
        max_replicas: config.hpa.max_replicas,
        targets: config
            .hpa
            .metrics
            .iter()
            .map(|m| (m.resource.name(), m.average_utilization))
            .collect(),
        spec_replicas: view.spec_replicas,
        cpu_request_cores: config.cpu_request_cores,
        cpu_limit_cores: config.cpu_limit_cores,
        memory_request_bytes: config.api.memory_request_bytes,
        memory_limit_bytes: config.api.memory_limit_bytes,
        pods: view
            .pods
            .iter()
            .filter(|p| !p.terminating)
            .map(pod)
            .collect(),
        terminating: view
            .pods
            .iter()
            .filter(|p| p.terminating)
            .map(pod)
            .collect(),
    }
}

struct Controller {
    config: ClusterConfig,
    tree: CgroupTree,
    registry: Registry,
    balancer: Balancer,
    view: Arc<Mutex<ClusterView>>,
    hpa: Autoscaler,
    pods: Vec<Pod>,
    next_index: usize,
    spec_replicas: u32,
    desired_replicas: u32,
    events: Vec<ScalingEvent>,
    lives: Vec<PodLife>,
    crashes: Vec<String>,
    tx: mpsc::UnboundedSender<Event>,
    rx: mpsc::UnboundedReceiver<Event>,
    http: reqwest::Client,
    epoch: Instant,
    last_targets: String,
}

impl Controller {
    fn new(
        config: ClusterConfig,
        tree: CgroupTree,
        registry: Registry,
        balancer: Balancer,
        view: Arc<Mutex<ClusterView>>,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let hpa = Autoscaler::new(config.hpa.clone(), config.settings.clone());
        let min = config.hpa.min_replicas;
        Self {
            config,
            tree,
            registry,
            balancer,
            view,
            hpa,
            pods: Vec::new(),
            next_index: 1,
            spec_replicas: min,
            desired_replicas: min,
            events: Vec::new(),
            lives: Vec::new(),
            crashes: Vec::new(),
            tx,
            rx,
            http: reqwest::Client::new(),
            epoch: Instant::now(),
            last_targets: String::new(),
        }
    }

    /// The controller's clock for the HPA: time since it started.
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// A deployed duration as the drill runs it (× the time scale).
    fn scaled(&self, deployed: Duration) -> Duration {
        deployed.mul_f64(self.config.time_scale)
    }

    async fn run(mut self, mut stop: oneshot::Receiver<()>) -> Result<(), DrillError> {
        let sync = self
            .config
            .settings
            .sync_period
            .max(Duration::from_millis(100));
        let tick_every = (sync / 10).clamp(Duration::from_millis(50), Duration::from_millis(500));
        let probe_every = self
            .scaled(self.config.api.readiness_period)
            .max(Duration::from_millis(200));
        let mut tick = tokio::time::interval(tick_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next_probe = Instant::now();
        // Like kube-controller-manager, the first sync comes one period after the controller starts.
        let mut next_sync = Instant::now() + sync;
        let result = loop {
            tokio::select! {
                _ = &mut stop => break Ok(()),
                Some(event) = self.rx.recv() => self.handle(event),
                _ = tick.tick() => {
                    if let Err(e) = self.reconcile_deployment() {
                        break Err(e);
                    }
                    self.sample();
                    let now = Instant::now();
                    if now >= next_probe {
                        self.probe();
                        next_probe = now + probe_every;
                    }
                    if now >= next_sync {
                        self.sync_hpa();
                        next_sync += sync;
                        if next_sync < now {
                            next_sync = now + sync;
                        }
                    }
                    self.publish();
                }
            }
        };
        self.stop_all().await;
        self.publish();
        self.tree.remove();
        result
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Listening { pod, base_url } => {
                if let Some(p) = self.pods.iter_mut().find(|p| p.name == pod) {
                    tracing::info!(event = "replica_listening", pod = %pod, url = %base_url);
                    p.base_url = Some(base_url);
                }
            }
            Event::ListenFailed { pod, reason } => {
                tracing::warn!(event = "replica_start_failed", pod = %pod, reason = %reason);
            }
            Event::Probe { pod, ok } => {
                let threshold = self.config.api.readiness_failure_threshold.max(1);
                let now = Instant::now();
                if let Some(p) = self.pods.iter_mut().find(|p| p.name == pod) {
                    p.probing = false;
                    if ok {
                        p.failures = 0;
                        if !p.ready && !p.terminating {
                            p.ready = true;
                            p.ready_changed = Some(now);
                            tracing::info!(event = "replica_ready", pod = %pod);
                            if let Some(life) = self.lives.iter_mut().find(|l| l.pod == pod) {
                                life.ready.get_or_insert(now);
                            }
                        }
                    } else {
                        p.failures += 1;
                        if p.ready && p.failures >= threshold {
                            p.ready = false;
                            p.ready_changed = Some(now);
                            tracing::warn!(event = "replica_unready", pod = %pod, failures = p.failures);
                        }
                    }
                }
            }
            Event::Terminated { pod } => {
                if let Some(i) = self.pods.iter().position(|p| p.name == pod) {
                    let p = self.pods.remove(i);
                    self.tree.remove_replica(&p.group);
                    tracing::info!(event = "replica_terminated", pod = %pod);
                }
            }
        }
    }

    /// The ReplicaSet controller: as many live pods as `spec.replicas`; crashed pods are replaced.
    fn reconcile_deployment(&mut self) -> Result<(), DrillError> {
        let mut crashed = Vec::new();
        for p in &mut self.pods {
            if let Some(proc) = p.proc.as_mut()
                && let Some(status) = proc.exited()
            {
                tracing::warn!(event = "replica_crashed", pod = %p.name, status = %status);
                crashed.push(p.name.clone());
            }
        }
        for name in crashed {
            if let Some(i) = self.pods.iter().position(|p| p.name == name) {
                let p = self.pods.remove(i);
                self.tree.remove_replica(&p.group);
            }
            self.crashes.push(name);
        }
        let live = self.pods.iter().filter(|p| !p.terminating).count() as u32;
        if live < self.spec_replicas {
            for _ in live..self.spec_replicas {
                self.start_pod()?;
            }
        } else if live > self.spec_replicas {
            for _ in self.spec_replicas..live {
                self.terminate_one();
            }
        }
        Ok(())
    }

    fn start_pod(&mut self) -> Result<(), DrillError> {
        let name = format!("{}-{}", self.config.api.deployment, self.next_index);
        self.next_index += 1;
        let group = self.tree.replica(&name, self.config.cpu_limit_cores)?;
        let mut cmd = std::process::Command::new(&self.config.fraudops_bin);
        cmd.arg("serve")
            .current_dir(&self.config.work_dir)
            .env_clear()
            .envs(inherited_env())
            .envs(&self.config.env)
            .env("PORT", "0")
            .env("BIND_ADDRESS", "127.0.0.1")
            .env("REPLICA_ID", &name);
        group.attach(&mut cmd)?;
        let mut proc = process::spawn(
            &self.registry,
            &name,
            cmd,
            Output::Piped(self.config.log_dir.join(format!("{name}.stderr.log"))),
        )?;
        let stdout = proc.take_stdout();
        let log = self.config.log_dir.join(format!("{name}.log"));
        let tx = self.tx.clone();
        let pod = name.clone();
        tokio::spawn(async move {
            let Some(stdout) = stdout else {
                let _ = tx.send(Event::ListenFailed {
                    pod,
                    reason: "no stdout".into(),
                });
                return;
            };
            forward_replica_log(pod, stdout, log, tx).await;
        });
        let now = Instant::now();
        tracing::info!(event = "replica_started", pod = %name, pid = proc.pid,
            cpu_limit_cores = self.config.cpu_limit_cores);
        self.lives.push(PodLife {
            pod: name.clone(),
            started: now,
            ready: None,
            terminating: None,
        });
        self.pods.push(Pod {
            name,
            pid: proc.pid,
            proc: Some(proc),
            group,
            started: now,
            base_url: None,
            ready: false,
            ready_changed: None,
            failures: 0,
            probing: false,
            terminating: false,
            usage: UsageWindow::default(),
        });
        Ok(())
    }

    /// Picks the pod a ReplicaSet deletes first (not ready before ready, then the newest) and starts its
    /// termination: out of the endpoints at once, preStop, SIGTERM, SIGKILL after the grace period.
    fn terminate_one(&mut self) {
        let victim = self
            .pods
            .iter()
            .enumerate()
            .filter(|(_, p)| !p.terminating)
            .max_by_key(|(_, p)| (!p.ready, p.started))
            .map(|(i, _)| i);
        let Some(i) = victim else {
            return;
        };
        let now = Instant::now();
        let pod = &mut self.pods[i];
        pod.terminating = true;
        let name = pod.name.clone();
        if let Some(life) = self.lives.iter_mut().find(|l| l.pod == name) {
            life.terminating = Some(now);
        }
        let Some(proc) = pod.proc.take() else {
            return;
        };
        let pre_stop = self.scaled(self.config.api.pre_stop);
        let grace = self.scaled(self.config.api.termination_grace);
        let tx = self.tx.clone();
        tracing::info!(event = "replica_terminating", pod = %name);
        tokio::spawn(async move {
            tokio::time::sleep(pre_stop).await;
            proc.stop(grace.saturating_sub(pre_stop).max(Duration::from_secs(1)))
                .await;
            let _ = tx.send(Event::Terminated { pod: name });
        });
    }

    /// CPU (cumulative, from the cgroup) and memory of every pod, for the metrics-server window.
    fn sample(&mut self) {
        let now = Instant::now();
        for p in &mut self.pods {
            let stats = p.group.stats(Some(p.pid));
            p.usage.record(
                now,
                stats.usage_seconds,
                proc_resident_bytes(p.pid),
                self.config.metric_window,
            );
        }
    }

    /// Readiness probes (`GET /ready`), one in flight per pod.
    fn probe(&mut self) {
        let timeout = Duration::from_secs(2);
        for p in &mut self.pods {
            let (Some(base), false, false) = (&p.base_url, p.probing, p.terminating) else {
                continue;
            };
            p.probing = true;
            let url = format!("{base}/ready");
            let http = self.http.clone();
            let tx = self.tx.clone();
            let pod = p.name.clone();
            tokio::spawn(async move {
                let ok = matches!(
                    http.get(&url).timeout(timeout).send().await,
                    Ok(r) if r.status().is_success()
                );
                let _ = tx.send(Event::Probe { pod, ok });
            });
        }
    }

    fn sync_hpa(&mut self) {
        let now_i = Instant::now();
        let now = self.now();
        let since = |t: Instant| now.saturating_sub(now_i.duration_since(t));
        let states: Vec<PodState> = self
            .pods
            .iter()
            .map(|p| PodState {
                name: p.name.clone(),
                started_at: since(p.started),
                ready: p.ready,
                ready_changed_at: p.ready_changed.map(since).or(Some(since(p.started))),
                terminating: p.terminating,
                cpu_request_millis: (self.config.cpu_request_cores * 1000.0).round() as i64,
                memory_request_bytes: self.config.api.memory_request_bytes as i64,
                usage: p.usage.usage(self.config.metric_window, now_i, now),
            })
            .collect();
        let r = self.hpa.reconcile(now, self.spec_replicas, &states);
        self.desired_replicas = r.desired;
        if let Some(e) = &r.error {
            tracing::debug!(event = "hpa_metrics_incomplete", error = %e);
        }
        if r.rescale() {
            let cpu = r.metrics.iter().find(|m| m.resource.name() == "cpu");
            let memory = r.metrics.iter().find(|m| m.resource.name() == "memory");
            tracing::info!(
                event = "scaling_event",
                from = r.current,
                to = r.desired,
                reason = %r.reason,
                condition = %r.condition,
                recommended = ?r.recommended,
                cpu_utilization_percent = ?cpu.map(|m| m.utilization_percent),
                memory_utilization_percent = ?memory.map(|m| m.utilization_percent),
            );
            self.events.push(ScalingEvent {
                at: now_i,
                t_seconds: None,
                from: r.current,
                to: r.desired,
                reason: r.reason.clone(),
                condition: r.condition.clone(),
                recommended: r.recommended,
                metrics: r.metrics.clone(),
            });
            self.spec_replicas = r.desired;
        }
    }

    /// Endpoints, Prometheus targets and the shared view.
    fn publish(&mut self) {
        let endpoints: Vec<Endpoint> = self
            .pods
            .iter()
            .filter(|p| p.ready && !p.terminating)
            .filter_map(|p| {
                p.base_url.as_ref().map(|b| Endpoint {
                    pod: p.name.clone(),
                    base_url: b.clone(),
                })
            })
            .collect();
        self.balancer.set_endpoints(endpoints.clone());
        // Prometheus scrapes the Service's endpoints, as the ServiceMonitor does: ready pods only.
        let targets: Vec<serde_json::Value> = endpoints
            .iter()
            .map(|e| {
                serde_json::json!({
                    "targets": [e.base_url.trim_start_matches("http://")],
                    "labels": {"namespace": self.config.api.namespace, "pod": e.pod, "container": self.config.api.container},
                })
            })
            .collect();
        let text = serde_json::Value::Array(targets).to_string();
        if text != self.last_targets {
            let tmp = self.config.targets_file.with_extension("json.tmp");
            let written = std::fs::write(&tmp, &text)
                .and_then(|()| std::fs::rename(&tmp, &self.config.targets_file));
            match written {
                Ok(()) => self.last_targets = text,
                Err(e) => tracing::warn!(event = "targets_not_written", error = %e),
            }
        }
        if let Ok(mut v) = self.view.lock() {
            v.spec_replicas = self.spec_replicas;
            v.desired_replicas = self.desired_replicas;
            v.pods = self
                .pods
                .iter()
                .map(|p| PodView {
                    name: p.name.clone(),
                    pid: p.pid,
                    group: p.group.clone(),
                    ready: p.ready,
                    terminating: p.terminating,
                    memory_bytes: p.usage.memory_bytes,
                })
                .collect();
            v.events.clone_from(&self.events);
            v.lives.clone_from(&self.lives);
            v.crashes.clone_from(&self.crashes);
        }
    }

    /// Stops every pod: out of the endpoints, SIGTERM, SIGKILL after the (scaled) grace period.
    async fn stop_all(&mut self) {
        self.balancer.set_endpoints(Vec::new());
        let grace = self
            .scaled(self.config.api.termination_grace)
            .max(Duration::from_secs(2));
        let mut stops = Vec::new();
        for p in &mut self.pods {
            p.terminating = true;
            if let Some(proc) = p.proc.take() {
                stops.push(tokio::spawn(proc.stop(grace)));
            }
        }
        for s in stops {
            let _ = s.await;
        }
        // Pods already terminating finish their own sequence; wait for their reports.
        let deadline = Instant::now() + self.config.api.termination_grace + Duration::from_secs(5);
        while self.pods.iter().any(|p| {
            p.proc.is_none() && self.registry.running().iter().any(|(pid, _)| *pid == p.pid)
        }) && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        while let Ok(event) = self.rx.try_recv() {
            self.handle(event);
        }
        for p in std::mem::take(&mut self.pods) {
            self.tree.remove_replica(&p.group);
        }
    }
}

/// The few variables a replica may inherit from the drill (everything else comes from the ConfigMap).
fn inherited_env() -> Vec<(String, String)> {
    ["PATH", "HOME", "TZ", "LANG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
        .collect()
}

/// Reads a replica's JSON log lines: reports its address from `server_started`, and keeps every line but
/// the per-prediction `prediction_made` ones (written and paid for by the replica as in production, but
/// thousands per second are not worth keeping in a report).
async fn forward_replica_log(
    pod: String,
    stdout: tokio::process::ChildStdout,
    log: PathBuf,
    tx: mpsc::UnboundedSender<Event>,
) {
    let mut lines = BufReader::new(stdout).lines();
    let mut file = match tokio::fs::File::create(&log).await {
        Ok(f) => Some(tokio::io::BufWriter::new(f)),
        Err(e) => {
            tracing::warn!(event = "replica_log_unwritable", path = %log.display(), error = %e);
            None
        }
    };
    let mut announced = false;
    let mut last_flush = Instant::now();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("\"prediction_made\"") {
            continue;
        }
        if !announced && line.contains("\"server_started\"") {
            let addr = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| v.get("addr").and_then(|a| a.as_str()).map(str::to_owned));
            match addr {
                Some(a) => {
                    announced = true;
                    let _ = tx.send(Event::Listening {
                        pod: pod.clone(),
                        base_url: format!("http://{a}"),
                    });
                }
                None => {
                    let _ = tx.send(Event::ListenFailed {
                        pod: pod.clone(),
                        reason: format!("server_started without addr: {line}"),
                    });
                }
            }
        }
        if let Some(f) = file.as_mut() {
            let _ = f.write_all(line.as_bytes()).await;
            let _ = f.write_all(b"\n").await;
            if last_flush.elapsed() > Duration::from_secs(1) {
                let _ = f.flush().await;
                last_flush = Instant::now();
            }
        }
    }
    if let Some(f) = file.as_mut() {
        let _ = f.flush().await;
    }
    if !announced {
        let _ = tx.send(Event::ListenFailed {
            pod,
            reason: "exited before server_started".into(),
        });
    }
}
