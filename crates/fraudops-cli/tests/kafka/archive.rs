//! `fraudops archive` against a real broker: SIGKILLed while a file streams in, it still leaves every
//! transaction and every label in the lake exactly once; an event it cannot archive goes to the
//! dead-letter topic and the partition goes on.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use fraudops_lake::{LabelCutoff, Lake, Table, count_rows, read_window};

use crate::helpers::{Broker, Proc, fraudops_ok, free_port, metric, wait_for};

/// The archive's Kafka session timeout (`fraudops_stream::archive`).
const ARCHIVE_SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// An archive flushing every 100 ms in small files (many commits to land a kill between) and merging
/// every 3 small files of a day.
fn start_archive(broker: &Broker, name: &str, lake: &str, port: u16) -> Proc {
    let port = port.to_string();
    let mut archive = broker.spawn(
        name,
        &[
            "archive",
            "--lake",
            lake,
            "--metrics-port",
            &port,
            "--flush-interval",
            "100ms",
            "--flush-rows",
            "700",
            "--compact-min-files",
            "3",
            "--lag-interval",
            "200ms",
        ],
        &[],
    );
    wait_for("the archive to start", Duration::from_secs(30), || {
        assert!(
            archive.is_running(),
            "archive exited:\n{}",
            archive.output()
        );
        metric(
            port.parse().unwrap_or(0),
            "lake_seconds_since_last_commit",
            &[],
        )
        .is_some()
    });
    archive
}

fn rows(lake: &Lake, table: Table) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(count_rows(lake, table)).expect("count").0
}

pub fn exactly_once_across_sigkills() {
    let broker = Broker::start();
    let data = broker.path("world.csv.gz");
    let data_text = data.to_str().expect("utf-8 path");
    fraudops_ok(&[
        "simulate",
        "--out",
        data_text,
        "--customers",
        "400",
        "--terminals",
        "800",
        "--days",
        "30",
        "--start-date",
        "2018-04-01",
        "--seed",
        "5",
    ]);
    let expected = fraudops_data::reader::read_transactions(&data)
        .expect("the world")
        .transactions;
    let n = expected.len() as u64;
    assert!(n > 15_000, "{n} transactions");
    let lake_dir = broker.path("lake");
    let lake_text = lake_dir.to_str().expect("utf-8 path");
    let lake = Lake::open(lake_text).expect("lake");

    let port = free_port();
    let mut archive = start_archive(&broker, "archive-1", lake_text, port);
    // One record per batch: tansu 0.6 answers a fetch from inside a batch with the batches after it (Kafka
    // returns the batch holding the offset), so an archive resuming mid-batch would skip records there.
    let mut replay = broker.spawn(
        "replay",
        &["lake", "replay", "--data", data_text, "--max-batch", "1"],
        &[],
    );
    // Kill it twice mid-stream, each time after it committed some rows, and start it again.
    for round in 2..=3 {
        wait_for(
            "the archive to commit rows",
            Duration::from_secs(60),
            || metric(port, "lake_rows_written_total", &["transactions"]).unwrap_or(0.0) > 2_000.0,
        );
        archive.kill();
        // tansu 0.6 keeps a group whose dead leader has not yet missed its session (the archive's 10 s)
        // in "rebalance in progress" for every member that joins meanwhile (Kafka replaces the member);
        // a pod restarted by Kubernetes takes longer than that anyway. There is no group state to poll.
        std::thread::sleep(ARCHIVE_SESSION_TIMEOUT + Duration::from_secs(1));
        archive = start_archive(&broker, &format!("archive-{round}"), lake_text, port);
    }
    assert!(
        replay.wait(Duration::from_secs(120)),
        "replay:\n{}",
        replay.output()
    );
    wait_for("every record in the lake", Duration::from_secs(120), || {
        rows(&lake, Table::Transactions) >= n && rows(&lake, Table::Labels) >= n
    });
    assert!(archive.terminate(Duration::from_secs(30)), "graceful exit");
    assert!(
        archive.output().contains("drained=true"),
        "{}",
        archive.output()
    );

    // Exactly once: as many rows as records, each id once, the file's values and labels.
    assert_eq!(rows(&lake, Table::Transactions), n, "no transaction twice");
    assert_eq!(rows(&lake, Table::Labels), n, "no label twice");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let day = |d| NaiveDate::from_ymd_opt(2018, 4, d).expect("date");
    let window = runtime
        .block_on(read_window(
            &lake,
            day(1),
            day(30) + chrono::TimeDelta::days(1),
            LabelCutoff::default(),
        ))
        .expect("read");
    assert_eq!(window.duplicates, 0);
    assert_eq!(window.unlabelled, 0);
    let by_id: HashMap<u64, &fraudops_data::Transaction> = window
        .transactions
        .iter()
        .map(|t| (t.transaction_id, t))
        .collect();
    assert_eq!(by_id.len() as u64, n);
    for tx in &expected {
        let got = by_id[&tx.transaction_id];
        assert_eq!(
            (
                got.tx_datetime,
                got.customer_id,
                got.terminal_id,
                got.tx_amount.to_bits(),
                got.tx_fraud
            ),
            (
                tx.tx_datetime,
                tx.customer_id,
                tx.terminal_id,
                tx.tx_amount.to_bits(),
                tx.tx_fraud
            ),
            "transaction {}",
            tx.transaction_id
        );
    }
    let compacted: f64 = metric(port, "lake_files_compacted_total", &[]).unwrap_or(0.0);
    eprintln!(
        "  {n} transactions and labels once each after 2 SIGKILLs; {compacted} small files merged by the last archive"
    );
}

pub fn dead_letters_what_it_cannot_archive() {
    let broker = Broker::start();
    let lake_dir = broker.path("lake");
    let lake_text = lake_dir.to_str().expect("utf-8 path");
    let port = free_port();
    let mut archive = start_archive(&broker, "archive", lake_text, port);
    let good = br#"{"transaction_id":1,"amount":12.5,"customer_id":7,"terminal_id":9,"tx_datetime":"2018-04-02 03:04:05"}"#;
    let text_id = br#"{"transaction_id":"tx-2","amount":1,"customer_id":7,"terminal_id":9,"tx_datetime":"2018-04-02 03:04:05"}"#;
    let after = br#"{"transaction_id":3,"amount":1,"customer_id":7,"terminal_id":9,"tx_datetime":"2018-04-02 04:04:05"}"#;
    let key = Some(&b"7"[..]);
    broker.produce(
        "transactions-input",
        &[
            (key, &good[..]),
            (key, &b"{not json"[..]),
            (key, &text_id[..]),
            (key, &after[..]),
        ],
    );
    wait_for("the good ones in the lake", Duration::from_secs(30), || {
        metric(port, "lake_rows_written_total", &["transactions"]).unwrap_or(0.0) >= 2.0
    });
    assert_eq!(
        metric(port, "lake_dead_letters_total", &["transactions"]),
        Some(2.0)
    );
    let letters = broker.dead_letters("transactions-dead-letter");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert!(
        letters.iter().any(|l| l.reason.contains("integer id")),
        "{letters:?}"
    );
    assert!(
        letters
            .iter()
            .all(|l| l.source_topic == "transactions-input")
    );
    assert!(archive.terminate(Duration::from_secs(30)));
    let lake = Lake::open(lake_text).expect("lake");
    assert_eq!(rows(&lake, Table::Transactions), 2);
}
