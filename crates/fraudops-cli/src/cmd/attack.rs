//! `fraudops attack`: the escalating load of SPEC §5. The pacing is in `fraudops_stream::attack`; this
//! file runs the pre-flight check, draws the live progress line, prints the final table and writes
//! `--results`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fraudops_stream::KafkaArgs;
use fraudops_stream::LagProbe;
use fraudops_stream::attack::AttackConfig;

/// Options of `fraudops attack`: the attack's (`fraudops_stream::attack::AttackConfig`) and the
/// pre-flight check's; each also an env var.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// The attack.
    #[command(flatten)]
    pub config: AttackConfig,
    /// Topics that must already exist before anything is sent, comma-separated (e.g. `fraud-predictions`,
    /// which the stream worker writes: without it nothing consumes the attack). Kafka mode only.
    #[arg(
        long,
        env = "ATTACK_REQUIRE_TOPICS",
        value_delimiter = ',',
        conflicts_with = "http"
    )]
    pub require_topics: Vec<String>,
    /// Only the pre-flight check: reach the broker, require `--topic` and `--require-topics` to exist,
    /// print their partitions, and exit without creating or sending anything (non-zero if one is missing).
    #[arg(long, env = "ATTACK_CHECK_ONLY", conflicts_with = "http")]
    pub check_only: bool,
}

/// How often the progress line is repeated when stderr is a log file rather than a terminal.
const LOG_PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// The consumer group the pre-flight probe names when it reads offsets; it never joins or commits.
const PROBE_GROUP: &str = "fraudops-attack-preflight";

/// Runs the attack; prints the per-phase table on stdout. Exits non-zero when the broker cannot be
/// reached, a required topic is missing, or `--until-alert` was given and the alert never fired.
pub fn run(args: Args) -> anyhow::Result<()> {
    // Warnings only, on stderr: stdout is the results table.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let Args {
        config,
        require_topics,
        check_only,
    } = args;
    // Kafka mode, or `--http` with `--labels on` (the labels still go to Kafka).
    if config.http.is_none() || config.labels.enabled(true) {
        // Fail in seconds with the broker's address rather than after librdkafka's minute-long timeouts.
        // An empty list from a pipeline's template (`--require-topics ''`) means none.
        let mut required: Vec<&str> = require_topics
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .collect();
        if check_only {
            required.insert(0, &config.kafka.topic);
        }
        for (topic, partitions) in preflight(&config.kafka, &required)? {
            println!("topic {topic}: {partitions} partitions");
        }
        if check_only {
            println!("kafka at {}: ready", config.kafka.bootstrap_servers);
            return Ok(());
        }
    }
    let results = config.results.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;

    let terminal = std::io::stderr().is_terminal();
    let bar = crate::progress::spinner("starting");
    if !terminal {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut last_line = Instant::now();
    let report = runtime.block_on(fraudops_stream::attack::run(
        config,
        fraudops_serve::shutdown_signal(),
        |progress| {
            let line = progress.line();
            if !terminal && last_line.elapsed() >= LOG_PROGRESS_EVERY {
                last_line = Instant::now();
                eprintln!("{line}");
            }
            bar.set_message(line);
        },
    ))?;
    bar.finish_and_clear();
    print!("{}", report.table());

    if let Some(path) = results {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(&report).context("encoding the results")?;
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(alert) = report
        .alert
        .as_ref()
        .filter(|a| !a.fired && !report.interrupted)
    {
        bail!(
            "alert {} did not fire before the escalation ended (raise --max-rate or check {})",
            alert.alert,
            alert.alertmanager
        );
    }
    Ok(())
}

/// Asks the broker about each of `topics` (and about the attack's own topic, when `topics` is empty, just
/// to reach it); returns each topic's partition count. Fails with the broker's address when it does not
/// answer, and names every missing topic.
fn preflight(kafka: &KafkaArgs, topics: &[&str]) -> anyhow::Result<Vec<(String, usize)>> {
    let servers = &kafka.bootstrap_servers;
    let unreachable = || {
        format!(
            "cannot reach the Kafka broker at {servers} (--bootstrap-servers / \
             KAFKA_BOOTSTRAP_SERVERS): is it running and reachable from here?"
        )
    };
    let probe_topics: Vec<&str> = if topics.is_empty() {
        vec![kafka.topic.as_str()]
    } else {
        topics.to_vec()
    };
    let mut found = Vec::with_capacity(topics.len());
    let mut missing = Vec::new();
    for topic in probe_topics {
        let probe_args = KafkaArgs {
            topic: topic.to_owned(),
            ..kafka.clone()
        };
        let lag = LagProbe::new(&probe_args, PROBE_GROUP)
            .and_then(|probe| probe.measure())
            .with_context(unreachable)?;
        if topics.contains(&topic) {
            if lag.partitions.is_empty() {
                missing.push(topic);
            } else {
                found.push((topic.to_owned(), lag.partitions.len()));
            }
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing Kafka topic(s) at {servers}: {} (in the cluster Strimzi creates them from \
             deploy/k8s/base/kafka-topics.yaml; locally `fraudops stream` creates its topics)",
            missing.join(", ")
        );
    }
    Ok(found)
}
