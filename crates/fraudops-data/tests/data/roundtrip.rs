//! What the writer writes, the reader reads back unchanged.

use fraudops_data::reader::read_from;
use fraudops_data::simulator::generate;
use fraudops_data::writer::{CSV_HEADER, write_csv};

use crate::population;

#[test]
fn simulated_data_survives_write_then_read() {
    let config = population(150, 300, 20, 11);
    let mut txs = generate(&config).unwrap();
    assert!(
        txs.iter().any(|t| t.tx_fraud_scenario == 3),
        "the sample should exercise ×5 amounts"
    );
    // Rows without the extension fields must come back without them.
    for t in txs.iter_mut().step_by(7) {
        t.merchant_category = None;
        t.user_age = None;
        t.account_balance = None;
    }
    txs[1].user_age = Some(33.25);
    let mut bytes = Vec::new();
    write_csv(&mut bytes, &txs).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert_eq!(text.lines().next(), Some(CSV_HEADER));
    let second = text.lines().nth(1).unwrap();
    assert!(second.starts_with("0,2018-04-01 "), "{second}");

    let outcome = read_from(&bytes[..]).unwrap();
    assert_eq!(outcome.report.total_skipped(), 0, "{}", outcome.report);
    assert_eq!(outcome.transactions.len(), txs.len());
    for (read, written) in outcome.transactions.iter().zip(&txs) {
        assert_eq!(read, written);
    }
}

#[test]
fn amounts_have_exactly_two_decimals_and_missing_extensions_are_empty() {
    let config = population(20, 50, 3, 0);
    let mut txs = generate(&config).unwrap();
    txs.truncate(5);
    txs[0].account_balance = None;
    txs[0].user_age = None;
    txs[0].merchant_category = None;
    let mut bytes = Vec::new();
    write_csv(&mut bytes, &txs).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    for line in text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), 12, "{line}");
        let (_, decimals) = fields[4].split_once('.').unwrap();
        assert_eq!(decimals.len(), 2, "{line}");
    }
    assert!(text.lines().nth(1).unwrap().ends_with(",,,"));
}
