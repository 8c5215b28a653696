//! `fraudops archive` against a real broker: SIGKILLed while a file streams in, it still leaves every
//! transaction and every label in the lake exactly once; an event it cannot archive goes to the
//! dead-letter topic and the partition goes on; an attack's synthetic traffic is archived marked, and
//! `lake snapshot` leaves it out.

use std::collections::HashMap;
use std::time::Duration;

use chrono::NaiveDate;
use fraudops_lake::{LabelCutoff, Lake, Synthetic, Table, count_rows, read_window};

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
            Synthetic::default(),
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

/// A transaction file (the simulator's CSV header) of `n` transactions from id `first` on `date`, one
/// every 10 minutes; every `fraud_every`-th is a fraud.
fn transaction_file(path: &std::path::Path, first: u64, n: u64, date: &str, fraud_every: u64) {
    let mut csv = String::from(
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO\n",
    );
    for i in 0..n {
        let fraud = u8::from(i % fraud_every == 0);
        csv.push_str(&format!(
            "{},{date} {:02}:{:02}:00,{},{},{}.25,{},0,{fraud},{fraud}\n",
            first + i,
            i / 6,
            (i % 6) * 10,
            i % 7,
            100 + i % 11,
            20 + i,
            i * 600,
        ));
    }
    std::fs::write(path, csv).expect("write transaction file");
}

/// `(id, fraud)` of every transaction of a file, sorted by id.
fn ids_and_labels(path: &std::path::Path) -> Vec<(u64, bool)> {
    let mut rows: Vec<(u64, bool)> = fraudops_data::reader::read_transactions(path)
        .expect("read transactions")
        .transactions
        .iter()
        .map(|t| (t.transaction_id, t.tx_fraud))
        .collect();
    rows.sort_unstable();
    rows
}

pub fn synthetic_traffic_is_marked_and_left_out_of_snapshots() {
    let broker = Broker::start();
    let lake_dir = broker.path("lake");
    let lake_text = lake_dir.to_str().expect("utf-8 path");
    let port = free_port();
    let mut archive = start_archive(&broker, "archive", lake_text, port);

    // Real traffic: 30 transactions replayed with their labels. The attack's: 20 more on the next day,
    // sent by `fraudops attack` (synthetic, labels included) into the same topics.
    let real = broker.path("real.csv");
    transaction_file(&real, 0, 30, "2018-04-01", 5);
    let attack_file = broker.path("attack.csv");
    transaction_file(&attack_file, 1000, 20, "2018-04-02", 2);
    let mut replay = broker.spawn(
        "replay",
        &[
            "lake",
            "replay",
            "--data",
            real.to_str().expect("utf-8 path"),
        ],
        &[],
    );
    assert!(
        replay.wait(Duration::from_secs(60)),
        "replay:\n{}",
        replay.output()
    );
    let mut attack = broker.spawn(
        "attack",
        &[
            "attack",
            "--replay",
            attack_file.to_str().expect("utf-8 path"),
            "--phases",
            "20:1s",
            "--label-delay",
            "0s",
            "--metrics-port",
            &free_port().to_string(),
        ],
        &[],
    );
    assert!(
        attack.wait(Duration::from_secs(60)),
        "attack:\n{}",
        attack.output()
    );
    wait_for(
        "all 50 and their labels in the lake",
        Duration::from_secs(60),
        || {
            metric(port, "lake_rows_written_total", &["transactions"]).unwrap_or(0.0) >= 50.0
                && metric(port, "lake_rows_written_total", &["labels"]).unwrap_or(0.0) >= 50.0
        },
    );
    assert!(archive.terminate(Duration::from_secs(30)), "graceful exit");
    let lake = Lake::open(lake_text).expect("lake");
    assert_eq!(rows(&lake, Table::Transactions), 50);
    assert_eq!(rows(&lake, Table::Labels), 50);

    // The lake knows which rows were synthetic: the attack's 20.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let day = |d| NaiveDate::from_ymd_opt(2018, 4, d).expect("date");
    let all = runtime
        .block_on(read_window(
            &lake,
            day(1),
            day(3),
            LabelCutoff::default(),
            Synthetic::Include,
        ))
        .expect("read");
    assert_eq!((all.transactions.len(), all.synthetic_kept), (50, 20));

    // The DAG's fetch_data: exactly the real transactions with their labels, and says what it left out.
    let snapshot = broker.path("snapshot.csv");
    let snapshot_text = snapshot.to_str().expect("utf-8 path");
    let out = fraudops_ok(&[
        "lake",
        "snapshot",
        "--lake",
        lake_text,
        "--train-start",
        "2018-04-01",
        "--out",
        snapshot_text,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("20 synthetic transactions and 20 synthetic labels left out"),
        "{stdout}"
    );
    assert_eq!(ids_and_labels(&snapshot), ids_and_labels(&real));
    assert_eq!(
        ids_and_labels(&snapshot).iter().filter(|(_, f)| *f).count(),
        6
    );

    // A drill that trains on its own traffic asks for it.
    let out = fraudops_ok(&[
        "lake",
        "snapshot",
        "--lake",
        lake_text,
        "--train-start",
        "2018-04-01",
        "--include-synthetic",
        "--out",
        snapshot_text,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("20 synthetic transactions kept"),
        "{stdout}"
    );
    let mut both = ids_and_labels(&real);
    both.extend(ids_and_labels(&attack_file));
    assert_eq!(ids_and_labels(&snapshot), both);
}
