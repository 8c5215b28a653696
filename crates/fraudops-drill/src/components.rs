//! Starting what the drill runs before the attack: the replicas' cgroups, the drill's own endpoints (the
//! admin webhook sink, the stand-in exporters, the load balancer), the broker, the API Deployment under its
//! HPA, the stream worker, Alertmanager and Prometheus on the deployed files — and stopping them again.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::balancer::Balancer;
use crate::cgroup::{CgroupTree, Mechanism};
use crate::cluster::{self, Cluster, ClusterConfig, ClusterView};
use crate::control::{self, Sink};
use crate::error::DrillError;
use crate::monitoring::{self, PrometheusApi, ScrapeTargets};
use crate::plan::replica_env;
use crate::process::{self, Output, Proc};
use crate::rules;
use crate::run::{Ctx, Progress, or_interrupt};

/// Everything started, for the teardown.
#[derive(Default)]
pub(crate) struct Running {
    pub(crate) tansu: Option<Proc>,
    pub(crate) stream: Option<Proc>,
    pub(crate) attack: Option<Proc>,
    pub(crate) prometheus: Option<Proc>,
    pub(crate) alertmanager: Option<Proc>,
    pub(crate) cluster: Option<Cluster>,
}

impl Running {
    /// Stops everything in reverse order of need: the load first, the replicas, then the observers.
    pub(crate) async fn stop(&mut self, progress: &mut impl FnMut(Progress)) {
        progress(Progress::Step(
            "stopping the attack, the stream worker and the replicas".into(),
        ));
        if let Some(p) = self.attack.take() {
            p.stop(ATTACK_STOP_GRACE).await;
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

/// How long the attack gets after SIGTERM: it waits up to a minute for the broker's outstanding
/// acknowledgements (`fraudops attack`'s finish timeout) and only then writes `attack-results.json`; a
/// SIGKILL before that loses the per-phase results.
pub(crate) const ATTACK_STOP_GRACE: Duration = Duration::from_secs(70);

/// What the attack and the watch loop need of the started components.
pub(crate) struct Started {
    pub(crate) http: reqwest::Client,
    pub(crate) mechanism: Mechanism,
    pub(crate) view: Arc<Mutex<ClusterView>>,
    pub(crate) sink: Sink,
    pub(crate) balancer: Balancer,
    pub(crate) bootstrap: String,
    pub(crate) stream_addr: SocketAddr,
    pub(crate) am_base: String,
    pub(crate) attack_addr: SocketAddr,
    pub(crate) prometheus: PrometheusApi,
}

/// Starts every component, each registered in `running` as soon as it runs (so a failure half-way still
/// stops what started), and waits until Prometheus records the stand-ins' series.
pub(crate) async fn start(
    ctx: &Ctx<'_>,
    running: &mut Running,
    servers_stopped: tokio::sync::watch::Receiver<bool>,
    interrupt: &mut tokio::sync::watch::Receiver<bool>,
    progress: &mut impl FnMut(Progress),
) -> Result<Started, DrillError> {
    let Ctx {
        args,
        plan,
        logs,
        config_dir,
        data,
        registry,
        ..
    } = *ctx;
    let http = reqwest::Client::new();
    let until_stopped = move || {
        let mut rx = servers_stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };

    // CPU limits first: without them there is no drill worth its name (or a loud fallback).
    let tree = CgroupTree::create(!args.require_cgroups)?;
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
        metric_window: crate::metrics_server::metric_window(plan.time_scale),
    };
    std::fs::write(&cluster_config.targets_file, "[]")
        .map_err(|e| DrillError::io("writing the targets file", e))?;

    // The drill's own endpoints: webhook sink and stand-in exporters.
    let view = Arc::new(Mutex::new(ClusterView::default()));
    let sink = Sink::default();
    let snapshot_view = view.clone();
    let snapshot_config = cluster_config.clone();
    let snapshot: control::SnapshotFn = Arc::new(move || {
        let v = snapshot_view.lock().map(|v| v.clone()).unwrap_or_default();
        cluster::snapshot(&v, &snapshot_config)
    });
    let control_addr = control::start(sink.clone(), snapshot, until_stopped()).await?;
    let balancer = Balancer::new(Duration::from_secs(30))?;
    let (lb_listener, lb_addr) = Balancer::bind().await?;
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
    let kafka_port = process::free_port()?;
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
    let mut tansu = process::spawn(registry, "tansu", cmd, Output::File(logs.join("tansu.log")))?;
    or_interrupt(
        interrupt,
        process::wait_for_tcp(
            &mut tansu,
            SocketAddr::from(([127, 0, 0, 1], kafka_port)),
            Duration::from_secs(30),
        ),
    )
    .await?;
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
    )?;
    running.cluster = Some(cluster);
    if let Some(c) = running.cluster.as_mut() {
        or_interrupt(
            interrupt,
            c.wait_ready(plan.hpa.min_replicas, Duration::from_secs(120)),
        )
        .await?;
    }

    // The stream worker, calling the API through the balancer.
    progress(Progress::Step(
        "starting the stream worker (HTTP mode, through the load balancer)".into(),
    ));
    let stream_port = process::free_port()?;
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
    )?;
    let stream_addr = SocketAddr::from(([127, 0, 0, 1], stream_port));
    or_interrupt(
        interrupt,
        process::wait_for_http(
            &http,
            &mut stream,
            &format!("http://{stream_addr}/metrics"),
            Duration::from_secs(60),
        ),
    )
    .await?;
    running.stream = Some(stream);

    // Alertmanager on the deployed routing, Prometheus on the deployed rules.
    progress(Progress::Step(
        "starting Alertmanager (deployed routing; admin chat → the drill's webhook sink)".into(),
    ));
    let am_config = plan
        .deploy_dir
        .join("monitoring/alertmanager/alertmanager.yaml");
    let am_work = data.join("alertmanager");
    std::fs::create_dir_all(&am_work).map_err(|e| DrillError::io("creating alertmanager/", e))?;
    let (am, am_base, am_addr) = or_interrupt(
        interrupt,
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
    .await?;
    running.alertmanager = Some(am);
    let rule_files = rules::write_scaled(
        &plan.deploy_dir.join("monitoring/rules"),
        &config_dir.join("rules"),
        plan.time_scale,
    )?;
    let attack_port = process::free_port()?;
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
    std::fs::create_dir_all(&prom_work).map_err(|e| DrillError::io("creating prometheus/", e))?;
    let (prom, prom_base) = or_interrupt(
        interrupt,
        monitoring::start_prometheus(
            registry,
            &plan.prometheus,
            &prom_work,
            &logs.join("prometheus.log"),
            &prom_config,
            &http,
        ),
    )
    .await?;
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
            return Err(DrillError::Timeout(format!(
                "Prometheus does not record fraudops:hpa_current_replicas = {} and fraudops:pod_cpu_usage_ratio:max \
                 from the stand-in exporters (got {current:?}, {ratio:?}); see {}",
                plan.hpa.min_replicas,
                logs.join("prometheus.log").display()
            )));
        }
        or_interrupt(interrupt, async {
            tokio::time::sleep(plan.interval / 2).await;
            Ok(())
        })
        .await?;
    }

    Ok(Started {
        http,
        mechanism,
        view,
        sink,
        balancer,
        bootstrap,
        stream_addr,
        am_base,
        attack_addr,
        prometheus,
    })
}
