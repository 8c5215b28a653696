//! How much Redis memory the feature store needs per card, per terminal and per scored transaction, so
//! `maxmemory` can be sized from traffic (docs/feature-store.md, "Sizing"):
//! `cargo run --release -p fraudops-store --example store_memory [-- CUSTOMERS TERMINALS DAYS]`.
//!
//! A real `redis-server` on a random port; the simulator's transactions (default: 5,000 cards, 10,000
//! terminals, 45 days: past the 37-day reach, so pruning is in steady state) are observed through the
//! store's own script in event-time order, labelled, and their scores recorded, as the scorers and the
//! label consumer do; the label consumer's evaluation samples of the last 7 days too. Then `MEMORY USAGE` of every key, grouped by kind, and `used_memory`.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDate;
use fraudops_data::simulator::{SimulatorConfig, generate};
use fraudops_store::testing::RedisServer;
use fraudops_store::{EvaluatedLabel, FeatureStore, Label, Observation, ScoreRecord, StoredScore};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let (customers, terminals, days) = match args[..] {
        [c, t, d] => (c, t, d),
        [] => (5_000, 10_000, 45),
        _ => return Err("arguments: CUSTOMERS TERMINALS DAYS".into()),
    };
    let config = SimulatorConfig {
        n_customers: customers,
        n_terminals: terminals,
        n_days: u32::try_from(days)?,
        start_date: NaiveDate::from_ymd_opt(2018, 4, 1).ok_or("date")?,
        ..SimulatorConfig::default()
    };
    let mut txs = generate(&config)?;
    txs.sort_by_key(|t| (t.tx_datetime, t.transaction_id));
    let server =
        RedisServer::start_or_skip("store_memory", false).ok_or("redis-server is needed")?;
    let runtime = tokio::runtime::Runtime::new()?;
    let _context = runtime.enter();
    let store = FeatureStore::connect(&server.url(), Duration::from_secs(5))?;
    let last_day = txs.last().map_or(0, |t| t.tx_datetime.div_euclid(86_400));
    runtime.block_on(async {
        for chunk in txs.chunks(256) {
            let observations: Vec<Observation> = chunk.iter().map(Observation::from).collect();
            store.observe(&observations).await?;
            let labels: Vec<Label> = chunk.iter().map(Label::from).collect();
            store.apply_labels(&labels).await?;
            // Scores are kept for the label delay: only the last 8 days' are in the store at once.
            let recent: Vec<ScoreRecord> = chunk
                .iter()
                .filter(|t| t.tx_datetime.div_euclid(86_400) > last_day - 8)
                .map(|t| ScoreRecord {
                    transaction_id: t.transaction_id.to_string(),
                    time: t.tx_datetime,
                    namespace: fraudops_store::Namespace::Real,
                    score: StoredScore {
                        fraud_probability: 0.012_345_678_901_234_5,
                        is_fraud: false,
                        model_version: "gbdt-0123456789ab".into(),
                    },
                })
                .collect();
            store.record_scores(&recent).await?;
            // The label consumer keeps its 7-day window's samples (each label with its score).
            let evaluated: Vec<EvaluatedLabel> = recent
                .iter()
                .zip(
                    chunk
                        .iter()
                        .filter(|t| t.tx_datetime.div_euclid(86_400) > last_day - 8),
                )
                .filter(|(r, _)| r.time.div_euclid(86_400) > last_day - 7)
                .map(|(r, t)| EvaluatedLabel {
                    transaction_id: r.transaction_id.clone(),
                    time: r.time,
                    customer_id: t.customer_id,
                    fraud: t.tx_fraud,
                    score: r.score.clone(),
                })
                .collect();
            store.record_evaluations(&evaluated).await?;
        }
        Ok::<_, fraudops_store::StoreError>(())
    })?;

    let mut conn = server.connection();
    let keys: Vec<String> = redis::cmd("KEYS").arg("fraudops:v*").query(&mut conn)?;
    let mut by_kind: BTreeMap<&str, (usize, u64, u64)> = BTreeMap::new();
    for key in &keys {
        // fraudops:v3:{c42}; fraudops:v2:{t7}:t, {t7}:f, {s17000}, {e17000}, {e}:days.
        let tag = key.split_once(":{").map_or("", |(_, tag)| tag);
        let kind = match (tag.chars().next(), key.rsplit(':').next()) {
            (Some('c'), _) => "card (c)",
            (Some('t'), Some("t")) => "terminal (t)",
            (Some('t'), Some("f")) => "terminal frauds (f)",
            (Some('s'), _) => "scores of a day (s)",
            (Some('e'), Some("days")) => "evaluation days (e:days)",
            (Some('e'), _) => "evaluation samples of a day (e)",
            _ => "other",
        };
        let bytes: u64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query(&mut conn)?;
        let members: u64 = match kind {
            "scores of a day (s)" | "evaluation samples of a day (e)" => {
                redis::cmd("HLEN").arg(key).query(&mut conn)?
            }
            _ => redis::cmd("ZCARD").arg(key).query(&mut conn)?,
        };
        let e = by_kind.entry(kind).or_default();
        e.0 += 1;
        e.1 += bytes;
        e.2 += members;
    }
    let info: String = redis::cmd("INFO").arg("memory").query(&mut conn)?;
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    println!(
        "{} transactions, {customers} cards, {terminals} terminals, {days} days (simulator, seed {})",
        txs.len(),
        config.seed
    );
    println!("| key kind | keys | bytes | bytes/key | members | bytes/member |");
    println!("|---|---:|---:|---:|---:|---:|");
    for (kind, (n, bytes, members)) in &by_kind {
        println!(
            "| {kind} | {n} | {bytes} | {} | {members} | {:.1} |",
            bytes / *n as u64,
            *bytes as f64 / (*members).max(1) as f64
        );
    }
    println!(
        "used_memory {used} bytes ({:.1} MiB)",
        used as f64 / 1048576.0
    );
    Ok(())
}
