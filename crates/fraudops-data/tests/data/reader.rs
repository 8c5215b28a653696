//! The tolerant reader on the file shapes found in the wild, dirty rows included.

use std::io::Write;
use std::path::PathBuf;

use flate2::Compression;
use flate2::write::GzEncoder;
use fraudops_data::Transaction;
use fraudops_data::reader::{ReadError, SkipReason, read_from, read_transactions};
use fraudops_data::writer::parse_datetime;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A transaction without extension fields; `offset` is (TX_TIME_SECONDS, TX_TIME_DAYS).
fn tx(
    id: u64,
    datetime: &str,
    customer: u64,
    terminal: u64,
    amount: f64,
    offset: (i64, i64),
    scenario: u8,
) -> Transaction {
    let (secs, days) = offset;
    Transaction {
        transaction_id: id,
        tx_datetime: parse_datetime(datetime).unwrap(),
        customer_id: customer,
        terminal_id: terminal,
        tx_amount: amount,
        tx_time_seconds: secs,
        tx_time_days: days,
        tx_fraud: scenario != 0,
        tx_fraud_scenario: scenario,
        merchant_category: None,
        user_age: None,
        account_balance: None,
    }
}

/// The four rows every handbook-shaped fixture holds.
fn handbook_rows() -> Vec<Transaction> {
    vec![
        tx(0, "2018-04-01 00:00:31", 596, 3156, 57.16, (31, 0), 0),
        tx(1, "2018-04-01 00:02:10", 4961, 3412, 81.51, (130, 0), 0),
        tx(2, "2018-04-01 00:07:56", 2, 1365, 146.0, (476, 0), 0),
        tx(3, "2018-04-02 03:14:15", 927, 9906, 1100.5, (97455, 1), 3),
    ]
}

#[test]
fn dirty_course_file_skips_and_counts_every_defect() {
    let outcome = read_transactions(&fixture("dirty_course.txt")).unwrap();
    let report = &outcome.report;
    assert_eq!(report.rows_seen, 16);
    assert_eq!(report.rows_accepted, 4);
    let expected = [
        (SkipReason::BadTransactionId, 2), // Err, None
        (SkipReason::BadDatetime, 1),      // 24:00:00
        (SkipReason::NegativeId, 1),       // -6
        (SkipReason::DuplicateTransactionId, 1),
        (SkipReason::WrongFieldCount, 1),
        (SkipReason::BadAmount, 3), // abc, -5.00, NaN
        (SkipReason::BadTerminalId, 1),
        (SkipReason::BadCustomerId, 1),
        (SkipReason::BadLabel, 1),
    ];
    assert_eq!(report.skipped.len(), expected.len(), "{report}");
    for (reason, count) in expected {
        assert_eq!(report.skipped_for(reason), count, "{reason}\n{report}");
    }
    assert_eq!(
        report.total_skipped() + report.rows_accepted,
        report.rows_seen
    );
    assert_eq!(
        outcome.transactions,
        vec![
            tx(0, "2019-08-22 06:51:03", 0, 711, 70.91, (24663, 0), 0),
            tx(1, "2019-08-22 05:10:37", 0, 0, 90.55, (18637, 0), 0),
            tx(2, "2019-08-22 19:05:33", 0, 753, 35.38, (68733, 0), 0),
            tx(10, "2019-08-23 00:15:00", 6, 40, 226.5, (87300, 1), 1),
        ]
    );
    let table = report.to_string();
    assert!(
        table.contains("bad_transaction_id") && table.contains("duplicate_transaction_id"),
        "{table}"
    );
}

#[test]
fn course_rows_separated_by_pipes_are_read_too() {
    let text = "# tranaction_id | tx_datetime | customer_id | terminal_id | tx_amount | tx_time_seconds | tx_time_days | tx_fraud | tx_fraud_scenario\n\
                0 | 2019-08-22 06:51:03 | 0 | 711 | 70.91 | 24663 | 0 | 0 | 0\r\n\
                1 | 2019-08-22 05:10:37 | 0 | 0 | 90.55 | 18637 | 0 | 1 | 2\r\n";
    let outcome = read_from(text.as_bytes()).unwrap();
    assert_eq!(outcome.report.rows_accepted, 2, "{}", outcome.report);
    assert_eq!(
        outcome.transactions[1],
        tx(1, "2019-08-22 05:10:37", 0, 0, 90.55, (18637, 0), 2)
    );
}

#[test]
fn handbook_csv_in_upper_case_lower_case_any_order_or_with_a_pandas_index_reads_the_same() {
    for name in [
        "handbook_upper.csv",
        "handbook_lower_shuffled.csv",
        "pandas_index.csv",
    ] {
        let outcome = read_transactions(&fixture(name)).unwrap();
        assert_eq!(outcome.report.rows_seen, 4, "{name}");
        assert_eq!(
            outcome.report.total_skipped(),
            0,
            "{name}: {}",
            outcome.report
        );
        assert_eq!(outcome.transactions, handbook_rows(), "{name}");
    }
}

#[test]
fn gzip_is_detected_by_content_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let plain = std::fs::read(fixture("handbook_upper.csv")).unwrap();
    for name in ["data.csv.gz", "data.csv"] {
        let path = dir.path().join(name);
        let mut gz = GzEncoder::new(
            std::fs::File::create(&path).unwrap(),
            Compression::default(),
        );
        gz.write_all(&plain).unwrap();
        gz.finish().unwrap();
        let outcome = read_transactions(&path).unwrap();
        assert_eq!(outcome.transactions, handbook_rows(), "{name}");
    }
}

#[test]
fn corrupt_gzip_is_an_io_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.csv.gz");
    std::fs::write(
        &path,
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef],
    )
    .unwrap();
    assert!(matches!(read_transactions(&path), Err(ReadError::Io(_))));
}

#[test]
fn missing_required_column_is_named() {
    let text =
        "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID\n0,2018-04-01 00:00:31,596,3156\n";
    let err = read_from(text.as_bytes()).unwrap_err();
    assert!(
        matches!(&err, ReadError::MissingColumns { missing, .. } if missing == &["TX_AMOUNT"]),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("TX_AMOUNT") && message.contains("TERMINAL_ID"),
        "{message}"
    );

    let err = read_from("amount,when\n1,2\n".as_bytes()).unwrap_err();
    let message = err.to_string();
    for column in [
        "TRANSACTION_ID",
        "TX_DATETIME",
        "CUSTOMER_ID",
        "TERMINAL_ID",
        "TX_AMOUNT",
    ] {
        assert!(message.contains(column), "{message}");
    }
}

#[test]
fn empty_input_is_an_error_and_a_header_alone_is_zero_rows() {
    assert!(matches!(read_from(&b""[..]), Err(ReadError::Empty)));
    assert!(matches!(
        read_from(&b"\n\r\n  \n"[..]),
        Err(ReadError::Empty)
    ));
    let outcome = read_from(
        &b"\xEF\xBB\xBFTRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT\r\n"[..],
    )
    .unwrap();
    assert!(outcome.transactions.is_empty());
    assert_eq!(outcome.report.rows_seen, 0);
}

#[test]
fn without_time_and_label_columns_offsets_count_from_the_first_rows_midnight() {
    let text = "transaction_id,tx_datetime,customer_id,terminal_id,tx_amount\n\
                7,2019-08-22 06:51:03,1,2,3.5\n\
                8,2019-08-24 00:00:10,1,2,4\n\
                9,2019-08-21 23:00:00,1,2,4\n";
    let txs = read_from(text.as_bytes()).unwrap().transactions;
    assert_eq!(
        txs.iter()
            .map(|t| (
                t.tx_time_seconds,
                t.tx_time_days,
                t.tx_fraud,
                t.tx_fraud_scenario
            ))
            .collect::<Vec<_>>(),
        vec![
            (24_663, 0, false, 0),
            (2 * 86_400 + 10, 2, false, 0),
            (-3_600, -1, false, 0)
        ]
    );
}

#[test]
fn extension_columns_are_read_and_validated() {
    let text = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,MERCHANT_CATEGORY,USER_AGE,ACCOUNT_BALANCE\n\
                0,2018-04-01 00:00:31,1,2,3.00,gas_station,42,1234.56\n\
                1,2018-04-01 00:00:32,1,2,3.00,,,\n\
                2,2018-04-01 00:00:33,1,2,3.00,4,18,-10\n\
                3,2018-04-01 00:00:34,1,2,3.00,casino,42,1\n\
                4,2018-04-01 00:00:35,1,2,3.00,travel,-1,1\n\
                5,2018-04-01 00:00:36,1,2,3.00,travel,42,inf\n";
    let outcome = read_from(text.as_bytes()).unwrap();
    let ext: Vec<_> = outcome
        .transactions
        .iter()
        .map(|t| (t.merchant_category, t.user_age, t.account_balance))
        .collect();
    use fraudops_data::MerchantCategory::*;
    assert_eq!(
        ext,
        vec![
            (Some(GasStation), Some(42.0), Some(1234.56)),
            (None, None, None),
            (Some(Electronics), Some(18.0), Some(-10.0))
        ]
    );
    for reason in [
        SkipReason::BadMerchantCategory,
        SkipReason::BadUserAge,
        SkipReason::BadAccountBalance,
    ] {
        assert_eq!(outcome.report.skipped_for(reason), 1, "{reason}");
    }
}

#[test]
fn garbage_and_mutated_files_never_panic() {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let dirty = std::fs::read(fixture("dirty_course.txt")).unwrap();
    let upper = std::fs::read(fixture("handbook_upper.csv")).unwrap();
    let alphabet = b"0123456789,|#-.: \n\r\"TxEeNnaZ\xff\x00";
    for round in 0..600 {
        let input: Vec<u8> = match round % 3 {
            0 => (0..rng.gen_range(0..400))
                .map(|_| rng.r#gen::<u8>())
                .collect(),
            1 => (0..rng.gen_range(0..400))
                .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                .collect(),
            _ => {
                let mut bytes = if round % 2 == 0 {
                    dirty.clone()
                } else {
                    upper.clone()
                };
                for _ in 0..rng.gen_range(1..20) {
                    let at = rng.gen_range(0..bytes.len());
                    bytes[at] = alphabet[rng.gen_range(0..alphabet.len())];
                }
                bytes
            }
        };
        if let Ok(outcome) = read_from(&input[..]) {
            let report = outcome.report;
            assert_eq!(
                report.rows_accepted + report.total_skipped(),
                report.rows_seen
            );
            assert_eq!(report.rows_accepted, outcome.transactions.len() as u64);
        }
    }
}
