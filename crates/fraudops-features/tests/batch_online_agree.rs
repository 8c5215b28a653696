//! The batch and online paths must give identical feature vectors for any event sequence.

use fraudops_data::{MerchantCategory, Transaction};
use fraudops_features::batch::{compute, processing_order};
use fraudops_features::definition::DAY;
use fraudops_features::{FEATURE_NAMES, OnlineFeatures};
use proptest::prelude::*;

const START: i64 = 1_522_540_800; // 2018-04-01

fn tx(id: u64, t: i64, customer: u64, terminal: u64, amount: f64, fraud: bool) -> Transaction {
    Transaction {
        transaction_id: id,
        tx_datetime: t,
        customer_id: customer,
        terminal_id: terminal,
        tx_amount: amount,
        tx_time_seconds: t - START,
        tx_time_days: (t - START) / DAY,
        tx_fraud: fraud,
        tx_fraud_scenario: u8::from(fraud),
        merchant_category: MerchantCategory::from_code((terminal % 10) as u8),
        user_age: if customer.is_multiple_of(3) {
            None
        } else {
            Some(30.0)
        },
        account_balance: Some(1000.0),
    }
}

fn assert_same(
    batch: &[f64; fraudops_features::N_FEATURES],
    online: &[f64; fraudops_features::N_FEATURES],
    context: &str,
) {
    for (k, (b, o)) in batch.iter().zip(online).enumerate() {
        assert_eq!(
            b.to_bits(),
            o.to_bits(),
            "{context}: feature {} batch {b} online {o}",
            FEATURE_NAMES[k]
        );
    }
}

fn event_strategy() -> impl Strategy<Value = Vec<(i64, u64, u64, u32, bool)>> {
    // Times on a coarse grid so ties and exact window boundaries happen often.
    prop::collection::vec(
        (
            0i64..(80 * 24),
            0u64..6,
            0u64..4,
            1u32..50_000,
            prop::bool::weighted(0.2),
        ),
        1..300,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn online_equals_batch(events in event_strategy()) {
        let txs: Vec<Transaction> = events
            .iter()
            .enumerate()
            .map(|(i, &(hours, c, term, cents, fraud))| {
                // Half-hour grid: many events exactly 1, 7, 30, 37 days apart.
                tx(i as u64, START + hours * 1800, c, term, f64::from(cents) / 100.0, fraud)
            })
            .collect();
        let batch = compute(&txs);
        let mut online = OnlineFeatures::new();
        for i in processing_order(&txs) {
            let got = online.process(&txs[i as usize]);
            assert_same(batch.row(i as usize), &got, &format!("tx {i}"));
        }
    }
}

#[test]
fn windows_follow_the_handbook_definition() {
    let t0 = START + 10 * 3600;
    let txs = vec![
        tx(0, t0, 1, 9, 10.0, true),            // terminal 9 fraud, day 0
        tx(1, t0 + DAY, 1, 9, 20.0, false), // exactly one day later: the 1-day window excludes tx 0
        tx(2, t0 + 7 * DAY, 2, 9, 30.0, false), // exactly 7 days after tx 0: tx 0's label is now known
        tx(3, t0 + 8 * DAY, 2, 9, 40.0, false), // 1-day terminal window (t-8d, t-7d] holds tx 1 only
    ];
    let m = compute(&txs);
    // Customer 1 at tx 1: 1-day window (t-1d, t] holds only itself; 7-day holds both.
    assert_eq!(m.row(1)[3], 1.0);
    assert_eq!(m.row(1)[4], 20.0);
    assert_eq!(m.row(1)[5], 2.0);
    assert_eq!(m.row(1)[6], 15.0);
    // Terminal at tx 2: window (t-8d, t-7d] contains tx 0 (at exactly t-7d) → 1 tx, risk 1.
    assert_eq!((m.row(2)[9], m.row(2)[10]), (1.0, 1.0));
    // Terminal at tx 3: 1-day window (t-8d, t-7d] = tx 1 only (tx 0 is at t-8d, excluded); 7-day has both.
    assert_eq!((m.row(3)[9], m.row(3)[10]), (1.0, 0.0));
    assert_eq!((m.row(3)[11], m.row(3)[12]), (2.0, 0.5));
    // A transaction's own label never counts for itself, and no history means zeros.
    assert_eq!(
        (m.row(0)[9], m.row(0)[10], m.row(0)[13], m.row(0)[14]),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn online_state_stays_bounded_over_a_long_stream() {
    let mut online = OnlineFeatures::new();
    // 400 days, 2,000 customers cycling: old keys must be swept once they fall out of every window.
    let mut id = 0;
    for day in 0..400i64 {
        for k in 0..500u64 {
            let customer = (day as u64 * 500 + k) % 2_000 + (day as u64 / 60) * 10_000;
            online.process(&tx(
                id,
                START + day * DAY + k as i64,
                customer,
                customer % 300 + (day as u64 / 60) * 1_000,
                12.5,
                false,
            ));
            id += 1;
        }
    }
    let (customers, terminals) = online.tracked_keys();
    assert!(customers <= 4_000, "customers tracked: {customers}");
    assert!(terminals <= 600, "terminals tracked: {terminals}");
}
