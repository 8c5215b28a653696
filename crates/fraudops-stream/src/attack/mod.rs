//! `fraudops attack`: the escalating load of SPEC §5.
//!
//! Open model: message `i` of a phase is due `i / rate` seconds after the phase starts and is handed over
//! then, whatever the broker or the API is doing; outcomes are counted as they arrive. A slow system
//! therefore shows up as latency and errors in the results, never as a quietly lower rate.
//!
//! * [`config`] — the options; [`report`] — counters, the final table and its JSON;
//! * [`sink`] — Kafka or HTTP; [`alertmanager`] — the closed loop's stop condition;
//! * [`labels`] — each transaction's outcome to `fraud-labels`, once the attack's event-time clock has
//!   passed the transaction's time plus `--label-delay` (the transactions themselves carry no label).

pub mod alertmanager;
pub mod config;
pub mod labels;
pub mod report;
pub mod sink;

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use config::AttackConfig;
pub use report::{AlertReport, AttackReport, LabelReport, PhaseReport, Progress};

use crate::error::StreamError;
use crate::lag::{LagProbe, spawn_reporter};
use crate::phases::{Phase, Rate, Schedule};
use crate::source::EventSource;
use crate::telemetry::{KafkaMetrics, bind_metrics, serve_metrics};
use labels::Labels;
use report::PhaseStats;
use sink::{HttpSink, KafkaSink, SendError, Sink};

/// How often the progress callback is called.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long outstanding acknowledgements are awaited at the end.
const FINISH_TIMEOUT: Duration = Duration::from_secs(60);
/// `max` phases hand over this many messages between clock checks.
const MAX_RATE_BATCH: usize = 1024;

/// The closed loop's shared state: set by the poller, read by the pacing loop.
#[derive(Default)]
struct AlertState {
    fired: AtomicBool,
    at: Mutex<Option<Instant>>,
}

/// Runs the attack until its phases are done, the awaited alert fires, or `shutdown` resolves; calls
/// `on_progress` about four times a second. Returns the results (also when interrupted).
pub async fn run(
    config: AttackConfig,
    shutdown: impl Future<Output = ()>,
    mut on_progress: impl FnMut(&Progress),
) -> Result<AttackReport, StreamError> {
    validate(&config)?;
    let metrics = KafkaMetrics::new()?;
    let listener = bind_metrics(config.metrics_port).await?;
    let metrics_task = tokio::spawn(serve_metrics(listener, metrics.clone()));

    let (mut source, source_name) = match &config.replay {
        Some(path) => (EventSource::replay(path)?, path.display().to_string()),
        None => (
            EventSource::simulated(config.seed, config.customers, config.terminals)?,
            format!("simulator (seed {})", config.seed),
        ),
    };
    let with_labels = config.labels.enabled(config.http.is_some());
    let mut topics = Vec::new();
    if config.http.is_none() {
        topics.push((config.kafka.topic.as_str(), config.kafka.partitions));
    }
    if with_labels {
        topics.push((config.labels_topic.as_str(), config.kafka.partitions));
    }
    if !topics.is_empty() {
        crate::admin::ensure_topics(&config.kafka, &topics).await?;
    }
    let (mut sink, mode, destination) = match &config.http {
        Some(url) => {
            let sink = HttpSink::new(
                url,
                config.api_key.as_deref(),
                config.http_max_in_flight,
                config.http_timeout,
            )?;
            let url = sink.url().to_owned();
            (Sink::Http(sink), "http", url)
        }
        None => {
            let sink = KafkaSink::new(&config.kafka, metrics.clone())?;
            (Sink::Kafka(sink), "kafka", config.kafka.topic.clone())
        }
    };
    let mut labels = if with_labels {
        Some(Labels::new(
            &config.kafka,
            &config.labels_topic,
            config.label_delay,
            &metrics,
            true,
        )?)
    } else {
        None
    };

    let stop_lag = Arc::new(AtomicBool::new(false));
    let lag_thread = match &config.lag_group {
        Some(group) => Some(
            spawn_reporter(
                LagProbe::new(&config.kafka, group)?,
                metrics.clone(),
                config.lag_interval,
                Box::new(|| None),
                stop_lag.clone(),
            )
            .map_err(|e| StreamError::io("starting the lag reporter", e))?,
        ),
        None => None,
    };

    let alert = Arc::new(AlertState::default());
    let poller = match (&config.until_alert, &config.alertmanager) {
        (Some(name), Some(url)) => Some(tokio::spawn(poll_alert(
            alertmanager::Alertmanager::new(url)?,
            name.clone(),
            config.alert_poll,
            alert.clone(),
        ))),
        _ => None,
    };

    let started_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let attack_start = Instant::now();
    let mut plan: VecDeque<Phase> = config.phases.0.iter().copied().collect();
    let listed = plan.len();
    let mut last = plan.back().copied();
    let mut stats_list: Vec<Arc<PhaseStats>> = Vec::new();
    let mut interrupted = false;
    let mut triggering: Option<(usize, Option<f64>)> = None;
    tokio::pin!(shutdown);

    while let Some(phase) = next_phase(&mut plan, &mut last, &config) {
        let number = stats_list.len() + 1;
        let stats = Arc::new(PhaseStats::new(number, phase));
        stats_list.push(stats.clone());
        metrics.set_target_rate(phase.rate.per_second().unwrap_or(0.0));
        tracing::info!(event = "phase_started", phase = number, rate = %phase.rate, duration_s = phase.duration.as_secs_f64());
        let phases_known = (config.until_alert.is_none() || number <= listed).then_some(listed);
        let outcome = run_phase(
            &stats,
            &mut source,
            &mut sink,
            labels.as_mut(),
            &alert,
            &mut shutdown,
            &mut |s: &PhaseStats, elapsed| {
                on_progress(&Progress {
                    phase: s.number,
                    phases: phases_known,
                    target_rate: s.phase.rate.per_second(),
                    elapsed,
                    duration: s.phase.duration,
                    sent: s.sent(),
                    delivered: s.delivered(),
                    errors: s.errors(),
                })
            },
            &metrics,
        )
        .await;
        match outcome {
            PhaseEnd::Completed => {}
            PhaseEnd::AlertFired => {
                triggering = Some((number, phase.rate.per_second()));
                break;
            }
            PhaseEnd::Interrupted => {
                interrupted = true;
                break;
            }
            PhaseEnd::SourceExhausted => {
                return Err(StreamError::Config(
                    "the simulated population cannot transact (no terminal within reach of any customer)"
                        .into(),
                ));
            }
        }
    }
    metrics.set_target_rate(0.0);
    sink.finish(FINISH_TIMEOUT).await;
    // Due labels are sent, the rest are not: the clock never passed them (see `labels`).
    let label_report = match labels {
        Some(l) => Some(l.finish(FINISH_TIMEOUT).await),
        None => None,
    };

    if let Some(p) = poller {
        p.abort();
    }
    stop_lag.store(true, Ordering::Relaxed);
    if let Some(t) = lag_thread {
        let _ = tokio::task::spawn_blocking(move || t.join()).await;
    }
    metrics_task.abort();

    let alert_report = config.until_alert.as_ref().map(|name| {
        let fired_at = alert.at.lock().ok().and_then(|a| *a);
        AlertReport {
            alert: name.clone(),
            alertmanager: config.alertmanager.clone().unwrap_or_default(),
            fired: triggering.is_some(),
            time_to_alert_s: fired_at.map(|t| t.duration_since(attack_start).as_secs_f64()),
            triggering_rate: triggering.and_then(|(_, r)| r),
            triggering_phase: triggering.map(|(n, _)| n),
        }
    });
    Ok(AttackReport {
        mode: mode.to_owned(),
        destination,
        source: source_name,
        started_at,
        duration_s: attack_start.elapsed().as_secs_f64(),
        interrupted,
        phases: stats_list.iter().map(|s| s.report()).collect(),
        alert: alert_report,
        labels: label_report,
    })
}

/// Refuses option combinations that cannot work, before anything is sent.
fn validate(config: &AttackConfig) -> Result<(), StreamError> {
    if config.until_alert.is_some() {
        if !(config.step.is_finite() && config.step > 1.0) {
            return Err(StreamError::Config(format!(
                "--step must be > 1 to escalate, got {}",
                config.step
            )));
        }
        if config.phases.0.last().is_some_and(|p| p.rate == Rate::Max) {
            return Err(StreamError::Config(
                "--until-alert needs a numeric rate in the last phase to escalate from".into(),
            ));
        }
    }
    if config.http.is_some() && config.lag_group.is_some() {
        return Err(StreamError::Config(
            "--lag-group reports a Kafka backlog; it has no meaning with --http".into(),
        ));
    }
    Ok(())
}

/// The listed phases, then (closed loop only) the last one again at `step` times its rate until
/// `max_rate` would be exceeded.
fn next_phase(
    plan: &mut VecDeque<Phase>,
    last: &mut Option<Phase>,
    config: &AttackConfig,
) -> Option<Phase> {
    if let Some(p) = plan.pop_front() {
        return Some(p);
    }
    config.until_alert.as_ref()?;
    let previous = (*last)?;
    let rate = previous.rate.per_second()? * config.step;
    if rate > config.max_rate {
        return None;
    }
    let next = Phase {
        rate: Rate::PerSecond(rate.round()),
        duration: previous.duration,
    };
    *last = Some(next);
    Some(next)
}

/// Why a phase ended.
enum PhaseEnd {
    Completed,
    AlertFired,
    Interrupted,
    SourceExhausted,
}

/// Sends one phase on schedule; every transaction handed over schedules its label.
#[allow(clippy::too_many_arguments)]
async fn run_phase<S: Future<Output = ()>>(
    stats: &Arc<PhaseStats>,
    source: &mut EventSource,
    sink: &mut Sink,
    mut labels: Option<&mut Labels>,
    alert: &AlertState,
    shutdown: &mut std::pin::Pin<&mut S>,
    on_progress: &mut impl FnMut(&PhaseStats, Duration),
    metrics: &KafkaMetrics,
) -> PhaseEnd {
    let start = stats.started();
    let end = start + stats.phase.duration;
    let schedule = Schedule::of(&stats.phase);
    let mut sent: u64 = 0;
    let mut last_progress = start;
    let mut last_send = start;
    let end_reason = loop {
        if alert.fired.load(Ordering::Relaxed) {
            break PhaseEnd::AlertFired;
        }
        let now = Instant::now();
        let due = match schedule {
            Some(s) => s.due_by(now - start),
            None if now >= end => sent,
            None => sent + MAX_RATE_BATCH as u64,
        };
        while sent < due {
            let Some(tx) = source.next_transaction() else {
                return PhaseEnd::SourceExhausted;
            };
            match sink.send(&tx, stats) {
                Ok(()) => {
                    last_send = Instant::now();
                    stats.record_sent(last_send);
                    sent += 1;
                    if let Some(l) = labels.as_deref_mut() {
                        l.record(&tx);
                    }
                }
                // `max` measures what the destination sustains: a full buffer means wait, not lose.
                Err(SendError::Backlogged) if schedule.is_none() => break,
                Err(e) => {
                    stats.record_error(e.reason());
                    metrics.attack_errors(e.reason(), 1);
                    sent += 1;
                }
            }
        }
        let now = Instant::now();
        if now.duration_since(last_progress) >= PROGRESS_EVERY {
            last_progress = now;
            on_progress(stats, now.duration_since(start));
        }
        // Paced phases are held to their full length (the next phase must not start early); `max`
        // phases end on the clock.
        let all_sent = schedule.map_or(now >= end, |s| sent >= s.total());
        if all_sent && now >= end {
            break PhaseEnd::Completed;
        }
        let wake = match schedule {
            _ if all_sent => end.min(now + PROGRESS_EVERY),
            Some(s) => (start + s.due_at(sent)).min(now + PROGRESS_EVERY),
            // `max`: a short pause only when the buffer is full.
            None if sent < due => now + Duration::from_millis(1),
            // Otherwise no pause: an elapsed timer still lets the runtime's budget run other tasks.
            None => now,
        };
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            () = shutdown.as_mut() => break PhaseEnd::Interrupted,
        }
    };
    let elapsed = last_send.duration_since(start).max(match end_reason {
        PhaseEnd::Completed => stats.phase.duration,
        _ => Instant::now().duration_since(start),
    });
    stats.finish(elapsed);
    on_progress(stats, elapsed);
    end_reason
}

/// Polls Alertmanager until the alert is seen firing; poll errors are logged and retried (an
/// Alertmanager restart must not end the attack).
async fn poll_alert(
    client: alertmanager::Alertmanager,
    name: String,
    every: Duration,
    state: Arc<AlertState>,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        ticker.tick().await;
        match client.is_firing(&name).await {
            Ok(true) => {
                if let Ok(mut at) = state.at.lock() {
                    *at = Some(Instant::now());
                }
                state.fired.store(true, Ordering::Relaxed);
                tracing::info!(event = "alert_fired", alert = %name);
                return;
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(event = "alertmanager_poll_failed", error = %e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: AttackConfig,
    }

    fn config(args: &[&str]) -> AttackConfig {
        let mut argv = vec!["attack"];
        argv.extend_from_slice(args);
        Cli::parse_from(argv).config
    }

    #[test]
    fn defaults_are_the_missions_profile() {
        let c = config(&[]);
        assert_eq!(c.phases.to_string(), crate::phases::DEFAULT_PHASES);
        assert_eq!(c.kafka.topic, "transactions-input");
    }

    #[test]
    fn the_closed_loop_escalates_by_step_up_to_max_rate() {
        let c = config(&[
            "--phases",
            "100:1s,300:1s",
            "--until-alert",
            "A",
            "--alertmanager",
            "http://am",
            "--step",
            "2",
            "--max-rate",
            "2000",
        ]);
        let mut plan: VecDeque<Phase> = c.phases.0.iter().copied().collect();
        let mut last = plan.back().copied();
        let rates: Vec<f64> = std::iter::from_fn(|| next_phase(&mut plan, &mut last, &c))
            .filter_map(|p| p.rate.per_second())
            .collect();
        assert_eq!(rates, vec![100.0, 300.0, 600.0, 1200.0]);
    }

    #[test]
    fn without_the_closed_loop_the_list_is_all() {
        let c = config(&["--phases", "100:1s"]);
        let mut plan: VecDeque<Phase> = c.phases.0.iter().copied().collect();
        let mut last = plan.back().copied();
        assert!(next_phase(&mut plan, &mut last, &c).is_some());
        assert!(next_phase(&mut plan, &mut last, &c).is_none());
    }

    #[test]
    fn impossible_combinations_are_refused() {
        let c = config(&[
            "--until-alert",
            "A",
            "--alertmanager",
            "http://am",
            "--step",
            "1",
        ]);
        assert!(validate(&c).is_err());
        let c = config(&["--http", "http://api", "--lag-group", "g"]);
        assert!(validate(&c).is_err());
    }

    #[test]
    fn labels_default_to_three_days_on_fraud_labels() {
        let c = config(&[]);
        assert_eq!(c.labels_topic, "fraud-labels");
        assert_eq!(c.label_delay, 3 * 86_400);
        assert!(c.labels.enabled(false) && !c.labels.enabled(true));
        let c = config(&["--label-delay", "12h", "--labels", "on"]);
        assert_eq!(c.label_delay, 12 * 3600);
        assert!(c.labels.enabled(true));
        assert!(
            Cli::try_parse_from(["attack", "--label-delay", "8d"]).is_err(),
            "more than 7 days is refused"
        );
    }
}
