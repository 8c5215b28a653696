//! The simulator's output has the handbook's statistics, is reproducible, and the stream matches it.
//!
//! Expected values are derived from the algorithm (SPEC §3.1) in the comments next to each assertion.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;
use std::time::Instant;

use fraudops_data::Transaction;
use fraudops_data::simulator::{
    SimulatorConfig, TransactionStream, generate, generate_with_progress,
};

use crate::population;

/// 1000 customers, 2000 terminals, 90 days: ≈ 1000 · 2 · 90 · 0.969 ≈ 174 k transactions, seconds in a
/// dev build.
fn moderate() -> SimulatorConfig {
    population(1000, 2000, 90, 1)
}

fn moderate_data() -> &'static [Transaction] {
    static DATA: OnceLock<Vec<Transaction>> = OnceLock::new();
    DATA.get_or_init(|| generate(&moderate()).unwrap())
}

/// Share of transactions compromised by scenarios 2 and 3, from the algorithm.
///
/// Scenario 2: on day d, min(d + 1, 28) · 2 terminal compromises are active, each a uniformly chosen
/// terminal, so (in expectation) that many n_terminals-ths of the day's transactions. Scenario 3: min(d + 1,
/// 14) · 3 cards are compromised and a third of their transactions become frauds. Overlaps (a card or
/// terminal chosen twice, a transaction hit by two scenarios) make the observed shares slightly smaller.
fn expected_scenario_shares(config: &SimulatorConfig) -> (f64, f64) {
    let days = f64::from(config.n_days);
    let active = |window: u32, per_day: f64| {
        (0..config.n_days)
            .map(|d| f64::from((d + 1).min(window)) * per_day)
            .sum::<f64>()
            / days
    };
    let s2 = active(28, 2.0) / config.n_terminals as f64;
    let s3 = active(14, 3.0) / config.n_customers as f64 / 3.0;
    (s2, s3)
}

fn scenario_counts(txs: &[Transaction]) -> [usize; 4] {
    let mut counts = [0; 4];
    for t in txs {
        counts[t.tx_fraud_scenario as usize] += 1;
        assert_eq!(t.tx_fraud, t.tx_fraud_scenario != 0);
    }
    counts
}

#[test]
fn row_count_matches_rates_times_days() {
    // Mean daily rate U(0, 4) → 2 per customer; a time of day N(43200, 20000) falls inside (0, 86400) with
    // probability P(|Z| < 2.16) = 0.969.
    let n = moderate_data().len() as f64;
    let expected = 1000.0 * 2.0 * 90.0 * 0.969;
    assert!(
        (n / expected - 1.0).abs() < 0.08,
        "{n} transactions, expected ≈ {expected}"
    );
}

#[test]
fn fraud_rates_follow_the_scenarios_and_scenario_1_is_rarest() {
    let txs = moderate_data();
    let n = txs.len() as f64;
    let [_, s1, s2, s3] = scenario_counts(txs);
    let (e2, e3) = expected_scenario_shares(&moderate());
    let (r2, r3) = (s2 as f64 / n, s3 as f64 / n);
    // At this scale: e2 ≈ 47.6 / 2000 = 2.4%, e3 ≈ 39.4 / 1000 / 3 = 1.3%.
    assert!(
        (0.6 * e2..1.4 * e2).contains(&r2),
        "scenario 2 share {r2}, expected ≈ {e2}"
    );
    assert!(
        (0.6 * e3..1.4 * e3).contains(&r3),
        "scenario 3 share {r3}, expected ≈ {e3}"
    );
    // Scenario 1 needs N(m, m/2) > 220 with m < 100, i.e. more than 2.4 σ: a few in ten thousand.
    let r1 = s1 as f64 / n;
    assert!(s1 > 0 && r1 < 0.002, "scenario 1 share {r1}");
    assert!(s1 < s3 && s1 < s2);
    let fraud = txs.iter().filter(|t| t.tx_fraud).count() as f64 / n;
    assert!(
        (0.6 * (e2 + e3)..1.4 * (e2 + e3) + 0.002).contains(&fraud),
        "fraud rate {fraud}"
    );
}

#[test]
fn scenario_rows_carry_their_signature() {
    let txs = moderate_data();
    for t in txs.iter().filter(|t| t.tx_fraud_scenario == 1) {
        assert!(t.tx_amount > 220.0, "{t:?}");
    }
    // ×5 of a cents amount is a multiple of 5 cents, and the ×5 amounts average ≈ 5 × the genuine mean.
    let s3: Vec<f64> = txs
        .iter()
        .filter(|t| t.tx_fraud_scenario == 3)
        .map(|t| t.tx_amount)
        .collect();
    for a in &s3 {
        assert_eq!((a * 100.0).round() as i64 % 5, 0, "{a}");
    }
    let genuine_mean = mean(txs.iter().filter(|t| !t.tx_fraud).map(|t| t.tx_amount));
    let s3_mean = mean(s3.iter().copied());
    assert!(
        (3.5..6.5).contains(&(s3_mean / genuine_mean)),
        "{s3_mean} vs {genuine_mean}"
    );
    // Scenario-2 frauds sit on few terminals (2 a day), each with many transactions.
    let terminals: HashSet<u64> = txs
        .iter()
        .filter(|t| t.tx_fraud_scenario == 2)
        .map(|t| t.terminal_id)
        .collect();
    assert!(terminals.len() <= 2 * 90, "{}", terminals.len());
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    sum / n as f64
}

#[test]
fn amounts_average_the_customers_mean_amount() {
    // mean_amount ~ U(5, 100) → 52.5. N(m, m/2) is negative with probability Φ(−2) = 2.3% and those are
    // redrawn from U(0, 2m) (mean m); the kept positive part has mean m(0.977 + 0.5 · φ(2)) = 1.004 m, so the
    // average amount is ≈ 1.027 · 52.5 = 53.9 (rate-weighted over 1000 customers: σ ≈ 1).
    let m = mean(
        moderate_data()
            .iter()
            .filter(|t| t.tx_fraud_scenario != 3)
            .map(|t| t.tx_amount),
    );
    assert!((49.0..59.0).contains(&m), "mean amount {m}");
    assert!(
        moderate_data()
            .iter()
            .all(|t| t.tx_amount >= 0.0 && (t.tx_amount * 100.0).round() / 100.0 == t.tx_amount)
    );
}

#[test]
fn times_are_consistent_sorted_and_ids_count_up() {
    let txs = moderate_data();
    let start = fraudops_data::writer::parse_datetime("2018-04-01 00:00:00").unwrap();
    for (i, t) in txs.iter().enumerate() {
        assert_eq!(t.transaction_id, i as u64);
        let time_of_day = t.tx_time_seconds - t.tx_time_days * 86_400;
        assert!(0 < time_of_day && time_of_day < 86_400, "{t:?}");
        assert!((0..90).contains(&t.tx_time_days));
        assert_eq!(t.tx_datetime, start + t.tx_time_seconds);
    }
    for w in txs.windows(2) {
        assert!(
            (w[0].tx_datetime, w[0].customer_id) <= (w[1].tx_datetime, w[1].customer_id),
            "not sorted: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

#[test]
fn extension_columns_are_per_terminal_and_per_customer() {
    let mut category = HashMap::new();
    let mut customer = HashMap::new();
    for t in moderate_data() {
        let c = t.merchant_category.unwrap();
        assert_eq!(*category.entry(t.terminal_id).or_insert(c), c);
        let profile = (
            t.user_age.unwrap().to_bits(),
            t.account_balance.unwrap().to_bits(),
        );
        assert_eq!(*customer.entry(t.customer_id).or_insert(profile), profile);
        let age = t.user_age.unwrap();
        assert!((18.0..=90.0).contains(&age) && age.fract() == 0.0);
        assert!(t.account_balance.unwrap() > 0.0);
    }
    let used: HashSet<_> = category.values().collect();
    assert_eq!(used.len(), fraudops_data::MerchantCategory::ALL.len());
}

#[test]
fn same_seed_same_data_other_seed_other_data() {
    let config = population(200, 400, 20, 5);
    let a = generate(&config).unwrap();
    assert_eq!(a, generate(&config).unwrap());
    let b = generate(&SimulatorConfig { seed: 6, ..config }).unwrap();
    assert_ne!(a.len(), 0);
    assert_ne!(a, b);
}

#[test]
fn progress_is_reported_once_per_day() {
    let config = population(50, 100, 12, 0);
    let mut calls = Vec::new();
    let with = generate_with_progress(&config, |done, total| calls.push((done, total))).unwrap();
    assert_eq!(calls, (1..=12).map(|d| (d, 12)).collect::<Vec<_>>());
    assert_eq!(with, generate(&config).unwrap());
}

#[test]
fn stream_matches_generate_and_keeps_going() {
    let config = population(300, 600, 30, 3);
    let dataset = generate(&config).unwrap();
    let stream: Vec<Transaction> = TransactionStream::new(&config)
        .unwrap()
        .take_while(|t| t.tx_time_days < 45)
        .collect();
    // Days 0..17 (whose scenario-3 windows end inside the dataset) are identical, row for row.
    let identical = |t: &&Transaction| t.tx_time_days < 30 - 13;
    let head: Vec<_> = dataset.iter().filter(identical).collect();
    assert!(!head.is_empty());
    assert_eq!(stream.iter().filter(identical).collect::<Vec<_>>(), head);
    // On the dataset's last days only the scenario-3 effects (which look 13 days ahead) may differ.
    for (s, d) in stream.iter().zip(&dataset) {
        assert_eq!(
            (
                s.transaction_id,
                s.tx_datetime,
                s.customer_id,
                s.terminal_id
            ),
            (
                d.transaction_id,
                d.tx_datetime,
                d.customer_id,
                d.terminal_id
            )
        );
        if s.tx_fraud_scenario != 3 && d.tx_fraud_scenario != 3 {
            assert_eq!(s, d);
        }
    }
    // Past n_days: ids contiguous, time non-decreasing, all scenarios still happening.
    assert!(stream.len() > dataset.len() * 4 / 3);
    for (i, w) in stream.windows(2).enumerate() {
        assert_eq!(w[1].transaction_id, w[0].transaction_id + 1, "at {i}");
        assert!(w[1].tx_datetime >= w[0].tx_datetime);
    }
    let late: Vec<Transaction> = stream
        .into_iter()
        .filter(|t| t.tx_time_days >= 30)
        .collect();
    let [_, _, s2, s3] = scenario_counts(&late);
    assert!(
        s2 > 0 && s3 > 0,
        "compromises continue past n_days: {s2} {s3}"
    );
}

#[test]
fn stream_compromise_state_carries_forward() {
    // After the ramp-up, ≈ 56 terminals are compromised at any time: the scenario-2 share in a late window
    // stays near 56 / n_terminals (it would fall to 2 / n_terminals a day if the state were lost).
    let config = population(300, 600, 1, 9);
    let window: Vec<Transaction> = TransactionStream::new(&config)
        .unwrap()
        .skip_while(|t| t.tx_time_days < 60)
        .take_while(|t| t.tx_time_days < 90)
        .collect();
    let s2 =
        window.iter().filter(|t| t.tx_fraud_scenario == 2).count() as f64 / window.len() as f64;
    let expected = 56.0 / 600.0;
    assert!(
        (0.5 * expected..1.5 * expected).contains(&s2),
        "{s2} vs {expected}"
    );
}

/// Run with `cargo test --release -p fraudops-data -- --ignored --nocapture reference`.
#[test]
#[ignore = "reference scale: ~1.75 M rows, run in release"]
fn reference_scale_matches_the_handbook() {
    let started = Instant::now();
    let txs = generate(&SimulatorConfig::default()).unwrap();
    let elapsed = started.elapsed();
    let n = txs.len() as f64;
    let counts = scenario_counts(&txs);
    let fraud = (n - counts[0] as f64) / n;
    println!(
        "reference scale: {n} transactions, fraud {:.3}%, scenarios {counts:?}, generated in {elapsed:.2?}",
        fraud * 100.0
    );
    assert!((1_575_000.0..1_925_000.0).contains(&n), "{n}");
    assert!((0.006..0.011).contains(&fraud), "{fraud}");

    let mut csv = Vec::new();
    let started = Instant::now();
    fraudops_data::writer::write_csv(&mut csv, &txs).unwrap();
    let written = started.elapsed();
    let started = Instant::now();
    let read = fraudops_data::reader::read_from(&csv[..]).unwrap();
    println!(
        "wrote {} MB in {written:.2?}, read back in {:.2?}",
        csv.len() / 1_000_000,
        started.elapsed()
    );
    assert_eq!(read.transactions.len(), txs.len());
}
