//! The lake's guarantees, on a real directory: what goes in is read back exactly; a crash before the
//! ledger commit is rolled back and the records land once; redeliveries add nothing; compaction keeps
//! every row once; labels are joined as known at the cutoff.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use fraudops_lake::table::{LabelRow, TransactionRow};
use fraudops_lake::{
    CompactionPolicy, FlushPolicy, LabelCutoff, Lake, PartitionSink, Provenance, Row, Synthetic,
    Table, count_rows, read_window,
};

const TX_TOPIC: &str = "transactions-input";
const LABEL_TOPIC: &str = "fraud-labels";
/// 2018-04-01 00:00:00.
const START: i64 = 1_522_540_800;
const DAY: i64 = 86_400;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn day(d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2018, 4, d).expect("date")
}

/// Transaction `i`: one every 3 hours from 2018-04-01, ten cards, five terminals.
fn tx(i: i64) -> Row {
    Row::Transaction(TransactionRow {
        transaction_id: i,
        tx_datetime: START + i * 3 * 3600,
        customer_id: i % 10,
        terminal_id: i % 5,
        tx_amount: 10.0 + i as f64 / 100.0,
        merchant_category: (i % 2 == 0).then_some("grocery"),
        user_age: (i % 3 == 0).then_some(30.5),
        account_balance: None,
        synthetic: false,
    })
}

fn label(i: i64, fraud: bool, labelled_at: i64) -> Row {
    Row::Label(LabelRow {
        transaction_id: i,
        customer_id: i % 10,
        terminal_id: i % 5,
        tx_datetime: START + i * 3 * 3600,
        tx_fraud: fraud,
        labelled_at,
        synthetic: false,
    })
}

fn from(offset: i64) -> Provenance {
    Provenance {
        partition: 0,
        offset,
        timestamp_ms: Some(1_700_000_000_000 + offset),
    }
}

fn push_all(sink: &mut PartitionSink, rows: impl IntoIterator<Item = (i64, Row)>) {
    for (offset, row) in rows {
        sink.push(offset, Some((&row, from(offset))));
    }
}

fn lake() -> (tempfile::TempDir, Lake) {
    let dir = tempfile::tempdir().expect("temp dir");
    let lake = Lake::open(dir.path().to_str().expect("utf-8 path")).expect("lake");
    (dir, lake)
}

fn parquet_files(dir: &std::path::Path, table: &str) -> Vec<String> {
    let mut files = Vec::new();
    let root = dir.join(table);
    for day in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            files.push(file.path().display().to_string());
        }
    }
    files.sort();
    files
}

#[test]
fn rows_come_back_exactly_partitioned_by_event_day() {
    let rt = runtime();
    let (dir, lake) = lake();
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    assert_eq!(sink.resume_offset(), None);
    push_all(&mut sink, (0..40).map(|i| (i, tx(i))));
    let committed = rt.block_on(sink.flush()).unwrap();
    assert_eq!(committed.next_offset, Some(40));
    // 40 transactions every 3 hours: 5 days, one file per day, named by the flush's offsets.
    assert_eq!(committed.written.len(), 5);
    let files = parquet_files(dir.path(), "transactions");
    assert_eq!(files.len(), 5);
    assert!(files[0].ends_with(
        "transactions/dt=2018-04-01/transactions-input+0+00000000000000000000+00000000000000000039.parquet"
    ), "{}", files[0]);

    let window = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(6),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    assert_eq!(window.transactions.len(), 40);
    for (i, t) in window.transactions.iter().enumerate() {
        let Row::Transaction(expected) = tx(i as i64) else {
            unreachable!()
        };
        assert_eq!(t.transaction_id, expected.transaction_id as u64);
        assert_eq!(t.tx_datetime, expected.tx_datetime);
        assert_eq!(t.tx_amount.to_bits(), expected.tx_amount.to_bits());
        assert_eq!(
            t.merchant_category.map(|m| m.as_str()),
            expected.merchant_category
        );
        assert_eq!(t.user_age, expected.user_age);
        assert_eq!(t.account_balance, None);
    }
    // A day range reads only its days.
    let one = rt
        .block_on(read_window(
            &lake,
            day(2),
            day(3),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    assert_eq!(one.transactions.len(), 8);
    assert_eq!(
        rt.block_on(count_rows(&lake, Table::Transactions)).unwrap(),
        (40, 5)
    );
}

#[test]
fn a_crash_before_the_ledger_commit_is_rolled_back_and_every_record_lands_once() {
    let rt = runtime();
    let (dir, lake) = lake();
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    push_all(&mut sink, (0..16).map(|i| (i, tx(i))));
    rt.block_on(sink.flush()).unwrap();
    // What a crash in the middle of the next flush leaves: the ledger names the change as pending, one of
    // its files is written, the other never was, and nothing was committed (offset still 16).
    let orphan = "transactions/dt=2018-04-03/transactions-input+0+00000000000000000016+00000000000000000030.parquet";
    let ledger = dir.path().join("_archive/transactions-input/0.json");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
    assert_eq!(state["next_offset"], 16);
    std::fs::write(
        &ledger,
        serde_json::to_vec(&serde_json::json!({
            "next_offset": 16,
            "pending": {"writes": [orphan, "transactions/dt=2018-04-04/never-written.parquet"], "next_offset": 31}
        }))
        .unwrap(),
    )
    .unwrap();
    let copy_of = parquet_files(dir.path(), "transactions")[1].clone();
    std::fs::create_dir_all(dir.path().join("transactions/dt=2018-04-03")).unwrap();
    std::fs::copy(copy_of, dir.path().join(orphan)).unwrap();
    drop(sink);

    // The next owner recovers: the orphan is gone, reading resumes at 16, the records land once.
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    assert_eq!(sink.resume_offset(), Some(16));
    assert!(
        !dir.path().join(orphan).exists(),
        "the uncommitted file is rolled back"
    );
    // Redelivered records below the resume offset are ignored; the rest is taken.
    push_all(&mut sink, (0..40).map(|i| (i, tx(i))));
    assert_eq!(sink.buffered_rows(), 24);
    rt.block_on(sink.flush()).unwrap();
    let window = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(10),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    let ids: Vec<u64> = window
        .transactions
        .iter()
        .map(|t| t.transaction_id)
        .collect();
    assert_eq!(ids, (0..40).collect::<Vec<u64>>());
    assert_eq!(window.duplicates, 0);
    assert_eq!(
        rt.block_on(count_rows(&lake, Table::Transactions))
            .unwrap()
            .0,
        40
    );
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&ledger).unwrap()).unwrap();
    assert_eq!(state["next_offset"], 40);
    assert!(state.get("pending").is_none(), "{state}");
}

#[test]
fn records_that_become_no_row_still_move_the_offset() {
    let rt = runtime();
    let (_dir, lake) = lake();
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 3, Table::Transactions))
        .unwrap();
    let row = tx(0);
    assert!(sink.push(5, Some((&row, from(5)))));
    assert!(sink.push(6, None), "a dead-lettered record");
    assert!(!sink.push(6, None), "the same offset twice");
    let committed = rt.block_on(sink.flush()).unwrap();
    assert_eq!(committed.next_offset, Some(7));
    let reopened = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 3, Table::Transactions))
        .unwrap();
    assert_eq!(reopened.resume_offset(), Some(7));
}

#[test]
fn flush_rules_fire_on_rows_bytes_and_age() {
    let rt = runtime();
    let (_dir, lake) = lake();
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    let policy = FlushPolicy {
        max_rows: 10,
        max_bytes: 1 << 20,
        max_age: Duration::from_secs(3600),
    };
    let now = Instant::now();
    assert!(!sink.due(&policy, now), "an empty buffer is never due");
    push_all(&mut sink, (0..9).map(|i| (i, tx(i))));
    assert!(!sink.due(&policy, Instant::now()));
    push_all(&mut sink, [(9, tx(9))]);
    assert!(sink.due(&policy, Instant::now()), "rows");
    let by_bytes = FlushPolicy {
        max_rows: 1000,
        max_bytes: 100,
        ..policy
    };
    assert!(sink.due(&by_bytes, Instant::now()), "bytes");
    let by_age = FlushPolicy {
        max_rows: 1000,
        max_age: Duration::ZERO,
        ..policy
    };
    assert!(sink.due(&by_age, Instant::now()), "age");
}

#[test]
fn compaction_merges_a_days_small_files_and_keeps_every_row_once() {
    let rt = runtime();
    let (dir, lake) = lake();
    let mut sink = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    // Eight flushes of one day each (transactions 0-7 are all on 2018-04-01).
    for i in 0..8 {
        push_all(&mut sink, [(i, tx(i))]);
        rt.block_on(sink.flush()).unwrap();
    }
    assert_eq!(parquet_files(dir.path(), "transactions").len(), 8);
    let policy = CompactionPolicy {
        min_files: 8,
        small_file_bytes: 1 << 20,
    };
    let committed = rt.block_on(sink.compact(&policy)).unwrap();
    assert_eq!(committed.replaced, 8);
    let files = parquet_files(dir.path(), "transactions");
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .ends_with("transactions-input+0+00000000000000000000+00000000000000000007.parquet")
    );
    let window = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(2),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    assert_eq!(
        window
            .transactions
            .iter()
            .map(|t| t.transaction_id)
            .collect::<Vec<_>>(),
        (0..8).collect::<Vec<u64>>()
    );
    let state: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("_archive/transactions-input/0.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["next_offset"], 8);
    assert!(
        state.get("garbage").is_none() && state.get("pending").is_none(),
        "{state}"
    );
    // Below the threshold nothing happens.
    push_all(&mut sink, [(8, tx(1000))]);
    rt.block_on(sink.flush()).unwrap();
    assert_eq!(rt.block_on(sink.compact(&policy)).unwrap().replaced, 0);
}

#[test]
fn labels_are_joined_as_known_at_the_cutoff_latest_value_wins() {
    let rt = runtime();
    let (_dir, lake) = lake();
    let mut txs = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    push_all(&mut txs, (0..8).map(|i| (i, tx(i))));
    // A duplicate of transaction 3 (a producer's retry) at a later offset.
    push_all(&mut txs, [(8, tx(3))]);
    rt.block_on(txs.flush()).unwrap();
    let mut labels = rt
        .block_on(PartitionSink::open(&lake, LABEL_TOPIC, 0, Table::Labels))
        .unwrap();
    let cutoff = START + 10 * DAY;
    push_all(
        &mut labels,
        [
            (0, label(0, true, START + DAY)),
            // Reversed: fraud, then genuine (the latest known wins).
            (1, label(1, true, START + DAY)),
            (2, label(1, false, START + 2 * DAY)),
            // Known only after the cutoff: does not exist yet.
            (3, label(2, true, cutoff + 1)),
            (4, label(4, false, START + DAY)),
        ],
    );
    rt.block_on(labels.flush()).unwrap();
    let window = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(3),
            LabelCutoff {
                as_of: Some(cutoff),
            },
            Synthetic::default(),
        ))
        .unwrap();
    let fraud: Vec<(u64, bool)> = window
        .transactions
        .iter()
        .map(|t| (t.transaction_id, t.tx_fraud))
        .collect();
    assert_eq!(
        fraud,
        [
            (0, true),
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, false),
            (6, false),
            (7, false)
        ]
    );
    assert_eq!(window.duplicates, 1);
    assert_eq!(window.labelled, 3);
    assert_eq!(window.unlabelled, 5);
    assert_eq!(window.labels_after_cutoff, 1);
    assert_eq!(window.labels_reversed, 1);
    // Without a cutoff, the late label exists.
    let all = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(3),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    assert!(all.transactions[2].tx_fraud);
}

#[test]
fn events_the_lake_cannot_key_are_refused_with_a_reason() {
    use fraudops_lake::table::parse;
    let ok = br#"{"transaction_id":17,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","merchant_category":"travel"}"#;
    assert!(matches!(
        parse(Table::Transactions, ok, None),
        Ok(Row::Transaction(_))
    ));
    for (payload, why) in [
        (&br#"{"transaction_id":"tx-1","amount":1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05"}"#[..], "integer id"),
        (br#"{"transaction_id":1,"amount":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05"}"#, "customer_id"),
        (br#"{"transaction_id":1,"amount":1,"customer_id":1,"terminal_id":2}"#, "tx_datetime"),
        (br#"{"transaction_id":1,"amount":1,"customer_id":1,"terminal_id":2,"tx_datetime":"soon"}"#, "tx_datetime"),
        (br#"{"transaction_id":1,"amount":-1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05"}"#, "amount"),
        (br#"{"transaction_id":1,"amount":1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05","merchant_category":"casino"}"#, "merchant_category"),
        (br#"{"transaction_id":9223372036854775808,"amount":1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05"}"#, "64-bit"),
        (b"{not json", "key must be a string"),
    ] {
        let err = parse(Table::Transactions, payload, None).unwrap_err();
        assert!(err.contains(why), "{why}: {err}");
    }
    // A label without labelled_at is known when it was written to the topic.
    let bare = br#"{"transaction_id":1,"customer_id":1,"terminal_id":2,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true}"#;
    let Ok(Row::Label(l)) = parse(Table::Labels, bare, Some(1_600_000_000_123)) else {
        panic!()
    };
    assert_eq!(l.labelled_at, 1_600_000_000);
    assert!(
        parse(Table::Labels, bare, None)
            .unwrap_err()
            .contains("labelled_at")
    );
}

/// Transaction `id` at transaction `like`'s time, card and terminal, for 999, marked synthetic (an
/// attack's).
fn synthetic_tx(id: i64, like: i64) -> Row {
    let Row::Transaction(mut row) = tx(like) else {
        unreachable!()
    };
    row.transaction_id = id;
    row.tx_amount = 999.0;
    row.synthetic = true;
    Row::Transaction(row)
}

/// The label of synthetic transaction `id` (made like transaction `like`), marked synthetic.
fn synthetic_label(id: i64, like: i64, fraud: bool, labelled_at: i64) -> Row {
    let Row::Label(mut row) = label(like, fraud, labelled_at) else {
        unreachable!()
    };
    row.transaction_id = id;
    row.synthetic = true;
    Row::Label(row)
}

#[test]
fn a_window_leaves_synthetic_transactions_and_their_labels_out_unless_asked() {
    let rt = runtime();
    let (_dir, lake) = lake();
    let mut txs = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    // An attack among real traffic on the same days: four synthetic transactions with ids of their own,
    // and one reusing real transaction 5's id, time and card, written before it.
    push_all(
        &mut txs,
        [
            (0, synthetic_tx(1000, 0)),
            (1, synthetic_tx(1001, 1)),
            (2, synthetic_tx(1002, 2)),
            (3, synthetic_tx(1003, 3)),
            (4, synthetic_tx(5, 5)),
        ],
    );
    push_all(&mut txs, (0..8).map(|i| (5 + i, tx(i))));
    rt.block_on(txs.flush()).unwrap();
    let mut labels = rt
        .block_on(PartitionSink::open(&lake, LABEL_TOPIC, 0, Table::Labels))
        .unwrap();
    push_all(
        &mut labels,
        [
            (0, label(0, true, START + DAY)),
            (1, label(1, false, START + DAY)),
            (2, synthetic_label(1000, 0, true, START + DAY)),
            (3, synthetic_label(1001, 1, true, START + DAY)),
            // A synthetic label on a real id, known later: it must not turn real transaction 1 into fraud.
            (4, synthetic_label(1, 1, true, START + 2 * DAY)),
        ],
    );
    rt.block_on(labels.flush()).unwrap();

    let read = |synthetic| {
        rt.block_on(read_window(
            &lake,
            day(1),
            day(3),
            LabelCutoff::default(),
            synthetic,
        ))
        .unwrap()
    };
    let fraud = |window: &fraudops_lake::Window| -> Vec<(u64, bool)> {
        window
            .transactions
            .iter()
            .map(|t| (t.transaction_id, t.tx_fraud))
            .collect()
    };

    // By default: exactly the real transactions and labels.
    let real = read(Synthetic::default());
    assert_eq!(
        fraud(&real),
        [
            (0, true),
            (1, false),
            (2, false),
            (3, false),
            (4, false),
            (5, false),
            (6, false),
            (7, false)
        ]
    );
    assert_eq!(real.synthetic_left_out, 5);
    assert_eq!(real.synthetic_labels_left_out, 3);
    assert_eq!(real.synthetic_kept, 0);
    assert_eq!(
        real.duplicates, 0,
        "the synthetic copy of 5 does not hide the real one"
    );
    assert_eq!((real.labelled, real.unlabelled), (2, 6));
    // Transaction 5 is the real one (its own amount), not the synthetic copy written first.
    assert_eq!(real.transactions[5].tx_amount.to_bits(), 10.05f64.to_bits());

    // Asked for: every transaction and label, as before the column existed.
    let all = read(Synthetic::Include);
    assert_eq!(
        fraud(&all),
        [
            (0, true),
            (1000, true),
            (1, true),
            (1001, true),
            (2, false),
            (1002, false),
            (3, false),
            (1003, false),
            (4, false),
            (5, false),
            (6, false),
            (7, false)
        ]
    );
    assert_eq!(
        all.synthetic_kept, 5,
        "four of the attack's own and the copy of 5 read first"
    );
    assert_eq!(all.duplicates, 1);
    assert_eq!(
        all.transactions[9].tx_amount, 999.0,
        "the first copy of 5 wins"
    );
    assert_eq!(
        (all.synthetic_left_out, all.synthetic_labels_left_out),
        (0, 0)
    );
    assert_eq!(all.labels_reversed, 1);
}

/// Rewrites every Parquet file of `table` under `dir` without the `synthetic` column: the files the
/// archive wrote before the column existed. Checks they have exactly the columns the lake had then.
fn strip_synthetic(dir: &std::path::Path, table: &str, columns_then: &[&str]) {
    use parquet::arrow::ArrowWriter;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    for path in parquet_files(dir, table) {
        let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader
            .map(|b| {
                let b = b.unwrap();
                let keep: Vec<usize> = (0..b.num_columns())
                    .filter(|&i| b.schema().field(i).name() != "synthetic")
                    .collect();
                b.project(&keep).unwrap()
            })
            .collect();
        let schema = batches[0].schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, columns_then, "{path}");
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, schema.clone(), None).unwrap();
        for batch in &batches {
            writer.write(batch).unwrap();
        }
        writer.close().unwrap();
        std::fs::write(&path, out).unwrap();
    }
}

/// The columns of `transactions` and `labels` before `synthetic`.
const TRANSACTION_COLUMNS_THEN: [&str; 11] = [
    "transaction_id",
    "tx_datetime",
    "customer_id",
    "terminal_id",
    "tx_amount",
    "merchant_category",
    "user_age",
    "account_balance",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
];
const LABEL_COLUMNS_THEN: [&str; 9] = [
    "transaction_id",
    "customer_id",
    "terminal_id",
    "tx_datetime",
    "tx_fraud",
    "labelled_at",
    "kafka_partition",
    "kafka_offset",
    "kafka_timestamp",
];

#[test]
fn files_written_before_the_synthetic_column_read_as_real_traffic() {
    let rt = runtime();
    let (dir, lake) = lake();
    // The lake as the archive left it before the column: transactions 0-7 and two labels.
    let mut txs = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    push_all(&mut txs, (0..8).map(|i| (i, tx(i))));
    rt.block_on(txs.flush()).unwrap();
    let mut labels = rt
        .block_on(PartitionSink::open(&lake, LABEL_TOPIC, 0, Table::Labels))
        .unwrap();
    push_all(
        &mut labels,
        [
            (0, label(0, true, START + DAY)),
            (1, label(3, true, START + DAY)),
        ],
    );
    rt.block_on(labels.flush()).unwrap();
    strip_synthetic(dir.path(), "transactions", &TRANSACTION_COLUMNS_THEN);
    strip_synthetic(dir.path(), "labels", &LABEL_COLUMNS_THEN);

    // Then the upgraded archive goes on in the same days: real and synthetic traffic, new files.
    push_all(
        &mut txs,
        [(8, tx(8)), (9, synthetic_tx(1000, 1)), (10, tx(9))],
    );
    rt.block_on(txs.flush()).unwrap();
    push_all(
        &mut labels,
        [(2, synthetic_label(1000, 1, true, START + DAY))],
    );
    rt.block_on(labels.flush()).unwrap();

    let window = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(3),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap();
    let ids: Vec<(u64, bool)> = window
        .transactions
        .iter()
        .map(|t| (t.transaction_id, t.tx_fraud))
        .collect();
    assert_eq!(
        ids,
        [
            (0, true),
            (1, false),
            (2, false),
            (3, true),
            (4, false),
            (5, false),
            (6, false),
            (7, false),
            (8, false),
            (9, false)
        ],
        "every row of the old files is real, labels included"
    );
    assert_eq!(
        (window.synthetic_left_out, window.synthetic_labels_left_out),
        (1, 1)
    );
    assert_eq!(
        rt.block_on(count_rows(&lake, Table::Transactions)).unwrap(),
        (11, 3)
    );
}

#[test]
fn a_file_missing_a_column_that_has_no_default_is_refused() {
    let rt = runtime();
    let (dir, lake) = lake();
    let mut txs = rt
        .block_on(PartitionSink::open(&lake, TX_TOPIC, 0, Table::Transactions))
        .unwrap();
    push_all(&mut txs, (0..4).map(|i| (i, tx(i))));
    rt.block_on(txs.flush()).unwrap();
    // The amount gone (not a column added later): not one of the lake's files.
    for path in parquet_files(dir.path(), "transactions") {
        use parquet::arrow::ArrowWriter;
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let bytes = bytes::Bytes::from(std::fs::read(&path).unwrap());
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let keep: Vec<usize> = (0..batch.num_columns())
            .filter(|&i| batch.schema().field(i).name() != "tx_amount")
            .collect();
        let batch = batch.project(&keep).unwrap();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        std::fs::write(&path, out).unwrap();
    }
    let err = rt
        .block_on(read_window(
            &lake,
            day(1),
            day(2),
            LabelCutoff::default(),
            Synthetic::default(),
        ))
        .unwrap_err();
    assert!(
        matches!(&err, fraudops_lake::LakeError::Schema { reason, .. } if reason.contains("tx_amount")),
        "{err}"
    );
}

#[test]
fn the_events_synthetic_flag_lands_in_its_row() {
    use fraudops_lake::table::parse;
    let real = br#"{"transaction_id":17,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05"}"#;
    let attack = br#"{"transaction_id":18,"amount":129.9,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","synthetic":true}"#;
    let flag = |payload: &[u8]| match parse(Table::Transactions, payload, None) {
        Ok(Row::Transaction(r)) => r.synthetic,
        other => panic!("{other:?}"),
    };
    assert!(!flag(real));
    assert!(flag(attack));
    let label = |payload: &[u8]| match parse(Table::Labels, payload, None) {
        Ok(Row::Label(r)) => r.synthetic,
        other => panic!("{other:?}"),
    };
    assert!(!label(
        br#"{"transaction_id":17,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true,"labelled_at":"2018-04-03 00:00:00"}"#
    ));
    assert!(label(
        br#"{"transaction_id":18,"customer_id":42,"terminal_id":3107,"tx_datetime":"2018-04-02 03:04:05","tx_fraud":true,"labelled_at":"2018-04-03 00:00:00","synthetic":true}"#
    ));
}
