//! `fraudops attack`, `fraudops stream`, `fraudops labels` and `fraudops archive` against a real Kafka-protocol broker
//! (tansu), end to end: the binary as a user runs it, the real API, a real Redis as the feature store,
//! the broker's own record of what was written.
//!
//! A test binary with its own runner (`harness = false`) so that:
//! * a missing broker is a visible `SKIPPED` line in plain `cargo test` (libtest would hide it), and a
//!   failure under `FRAUDOPS_KAFKA_TESTS=require` (what `scripts/test-kafka.sh` sets);
//! * the tests run one after another: they measure rates on a 2-core machine and must not compete.
//!
//! `FRAUDOPS_KAFKA_TESTS`: unset = run if `tansu` is on PATH; `require` = fail without it; `skip` = skip.
//! Long variants run with `FRAUDOPS_LONG_TESTS=1` or `--ignored`. A name filter works as with libtest.

mod archive;
mod attack;
#[path = "../common/mod.rs"]
mod common;
mod evaluation;
mod helpers;
mod labels;
mod stream;
mod workers;

use std::panic::AssertUnwindSafe;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// One test: name, whether it is a long variant, body.
type Test = (&'static str, bool, fn());

const TESTS: &[Test] = &[
    (
        "archive_after_sigkills_holds_every_transaction_and_label_once",
        false,
        archive::exactly_once_across_sigkills,
    ),
    (
        "archive_dead_letters_what_it_cannot_archive_and_goes_on",
        false,
        archive::dead_letters_what_it_cannot_archive,
    ),
    (
        "archive_marks_synthetic_traffic_and_lake_snapshot_leaves_it_out",
        false,
        archive::synthetic_traffic_is_marked_and_left_out_of_snapshots,
    ),
    (
        "attack_2000_per_second_for_10_s_lands_in_kafka_keyed_by_customer",
        false,
        attack::holds_2000_per_second_for_10_s,
    ),
    (
        "attack_over_http_sends_every_request_to_the_api",
        false,
        attack::over_http,
    ),
    (
        "attack_replays_a_file_in_a_loop_with_fresh_ids",
        false,
        attack::replays_a_file_in_a_loop,
    ),
    (
        "attack_escalates_until_alertmanager_reports_the_alert",
        false,
        attack::escalates_until_the_alert_fires,
    ),
    (
        "attack_preflight_names_a_dead_broker_and_missing_topics",
        false,
        attack::preflight_names_a_dead_broker_and_missing_topics,
    ),
    (
        "stream_gives_every_input_exactly_one_prediction_via_the_api",
        false,
        stream::exactly_one_prediction_per_input_via_the_api,
    ),
    (
        "stream_sends_poison_messages_to_the_dead_letter_topic_and_keeps_going",
        false,
        stream::poison_messages_go_to_the_dead_letter_topic,
    ),
    (
        "stream_waits_for_a_failing_store_then_scores_with_it",
        false,
        stream::waits_for_a_failing_store_then_scores_with_it,
    ),
    (
        "stream_after_sigkill_every_input_still_gets_a_prediction",
        false,
        stream::at_least_once_across_sigkill,
    ),
    (
        "stream_lag_rises_while_stopped_and_falls_to_zero_after_catch_up",
        false,
        stream::lag_rises_while_stopped_and_falls_to_zero,
    ),
    (
        "labels_consumer_applies_each_label_once_and_skips_poison",
        false,
        labels::consumer_applies_each_label_once_and_skips_poison,
    ),
    (
        "labels_attack_produces_each_label_after_the_event_time_delay",
        false,
        labels::attack_produces_each_label_after_the_event_time_delay,
    ),
    (
        "stream_three_workers_score_every_transaction_as_the_batch_definition",
        false,
        workers::three_workers_score_every_transaction_as_the_batch_definition,
    ),
    (
        "labels_online_evaluation_equals_offline_and_a_shifted_replay_drifts",
        false,
        evaluation::labels_consumer_exports_online_metrics_equal_to_offline,
    ),
    (
        "long_attack_20000_per_second_for_30_s",
        true,
        attack::holds_20000_per_second_for_30_s,
    ),
    (
        "long_stream_survives_three_sigkills",
        true,
        stream::at_least_once_across_three_sigkills,
    ),
];

fn tansu_version() -> Option<String> {
    let out = Command::new("tansu").arg("--version").output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // libtest options cargo may pass (`--nocapture`, `--test-threads=1`, ...) are accepted and ignored.
    let ignored = args
        .iter()
        .any(|a| a == "--ignored" || a == "--include-ignored");
    let long = ignored || std::env::var("FRAUDOPS_LONG_TESTS").is_ok_and(|v| v == "1");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _, _) in TESTS {
            println!("{name}: test");
        }
        return ExitCode::SUCCESS;
    }
    let mode = std::env::var("FRAUDOPS_KAFKA_TESTS").unwrap_or_default();
    if mode == "skip" {
        println!(
            "kafka tests SKIPPED: FRAUDOPS_KAFKA_TESTS=skip (scripts/test-kafka.sh runs them)"
        );
        return ExitCode::SUCCESS;
    }
    let Some(version) = tansu_version() else {
        if mode == "require" {
            println!(
                "kafka tests FAILED: `tansu` is not on PATH (scripts/ensure/tansu.sh installs it)"
            );
            return ExitCode::FAILURE;
        }
        println!(
            "kafka tests SKIPPED: `tansu` is not on PATH; scripts/test-kafka.sh installs it and runs them"
        );
        return ExitCode::SUCCESS;
    };
    let selected: Vec<&Test> = TESTS
        .iter()
        .filter(|(name, is_long, _)| {
            (if ignored { *is_long } else { !*is_long || long })
                && (filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str())))
        })
        .collect();
    println!("\nrunning {} kafka tests against {version}", selected.len());
    let mut failed = Vec::new();
    let started = Instant::now();
    for (name, _, test) in &selected {
        let t0 = Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(test));
        let secs = t0.elapsed().as_secs_f64();
        match outcome {
            Ok(()) => println!("test {name} ... ok ({secs:.1} s)"),
            Err(_) => {
                println!("test {name} ... FAILED ({secs:.1} s)");
                failed.push(*name);
            }
        }
    }
    let status = if failed.is_empty() { "ok" } else { "FAILED" };
    println!(
        "\ntest result: {status}. {} passed; {} failed; finished in {:.1} s",
        selected.len() - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    for name in &failed {
        println!("    {name}");
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
