//! The handbook's transaction simulator (SPEC §3.1), reimplemented from its description.
//!
//! Why one file of ~700 lines: the handbook's generator is one algorithm (population, days, three fraud
//! scenarios) over one set of random streams; ~150 lines are its distribution tests.
//!
//! How it is put together:
//! - Every random decision has its own ChaCha8 stream, keyed by `(seed, purpose, day)` and numbered by the
//!   customer (or 0). A customer's transactions on a day therefore never depend on how many random numbers
//!   another customer or another day used, so the data is reproducible whatever order it is computed in, and
//!   the extension columns (drawn from their own purpose) cannot shift the base columns.
//! - One engine produces days in order for both [`generate`] (a finite horizon) and [`TransactionStream`]
//!   (no horizon). Scenario 3 looks 13 days ahead (a compromised card's frauds are a third of its next 14
//!   days' transactions), so the engine keeps 14 days generated but not yet handed out; terminal compromises
//!   (scenario 2) only need a per-terminal "compromised until" day, carried forward.
//! - Consequently a stream and a dataset with the same config agree transaction for transaction on every day
//!   whose scenario-3 windows end inside the dataset (days `0..n_days-13`), and on every column but the
//!   scenario-3 effects after that.

use std::collections::VecDeque;

use chrono::NaiveDate;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson, StandardNormal};

use crate::{EpochSeconds, MerchantCategory, Transaction};

/// Seconds in a simulated day.
const SECONDS_PER_DAY: i64 = 86_400;
/// Side of the square the customers and terminals live in.
const GRID_SIDE: f64 = 100.0;
/// Transactions above this amount are fraud by scenario 1.
const SCENARIO_1_THRESHOLD: f64 = 220.0;
/// Terminals compromised per day (scenario 2).
const TERMINALS_COMPROMISED_PER_DAY: usize = 2;
/// How many days, the day of compromise included, a terminal stays compromised.
const TERMINAL_COMPROMISE_DAYS: u64 = 28;
/// Customers (cards) compromised per day (scenario 3).
const CUSTOMERS_COMPROMISED_PER_DAY: usize = 3;
/// How many days, the day of compromise included, a card stays compromised.
const CUSTOMER_COMPROMISE_DAYS: u64 = 14;
/// Scenario 3 multiplies the amount of the fraudulent transactions by this.
const SCENARIO_3_AMOUNT_FACTOR: f64 = 5.0;
/// Time of day: N(noon, 20000 s), as in the handbook.
const TIME_OF_DAY_MEAN: f64 = 43_200.0;
const TIME_OF_DAY_STD: f64 = 20_000.0;
/// Extension: customers' ages are uniform integers in this range.
const USER_AGE_RANGE: std::ops::RangeInclusive<u32> = 18..=90;
/// Extension: account balance is log-normal with this median and log-scale spread.
const BALANCE_MEDIAN: f64 = 1_500.0;
const BALANCE_LOG_SIGMA: f64 = 1.0;

/// The purposes random streams are keyed by; each value must stay unique and never change, or every
/// dataset generated before changes too.
#[derive(Clone, Copy)]
#[repr(u64)]
enum Purpose {
    CustomerProfiles = 1,
    TerminalProfiles = 2,
    Transactions = 3,
    TerminalCompromise = 4,
    CustomerCompromise = 5,
    CustomerExtension = 6,
    TerminalExtension = 7,
}

/// The simulator's knobs; the defaults are the handbook's reference scale (SPEC §3.1).
///
/// Plain public fields so the CLI can map its options one to one; [`SimulatorConfig::default`] gives the
/// scale the reference numbers (≈1.75 M transactions, ≈0.8% fraud) are quoted for.
#[derive(Debug, Clone, PartialEq)]
pub struct SimulatorConfig {
    /// Number of customers (cards). Scenario 3 compromises 3 a day whatever this is, so the fraud rate
    /// depends on it.
    pub n_customers: usize,
    /// Number of terminals. Scenario 2 compromises 2 a day whatever this is, so the fraud rate depends on it.
    pub n_terminals: usize,
    /// Days of data [`generate`] produces; [`TransactionStream`] ignores it.
    pub n_days: u32,
    /// Calendar day of `TX_TIME_DAYS = 0` (transactions are naive local times from its midnight).
    pub start_date: NaiveDate,
    /// A customer uses the terminals closer than this (Euclidean, in a 100 × 100 square).
    pub radius: f64,
    /// Everything random derives from this; the same seed gives the same data on any machine.
    pub seed: u64,
    /// Drift on purpose: every amount is multiplied by this as the day is handed out, after the fraud
    /// scenarios have labelled it (prices moved — inflation, a currency change — but who commits fraud did
    /// not). A model trained at 1.0 then sees larger amounts than it learned and flags genuine spending:
    /// its score distribution shifts and its precision falls. 1.0 (the default) changes nothing.
    pub amount_scale: f64,
    /// A week of its own: amounts at night (hours 0–6, the features' night) are multiplied by this, ...
    pub night_amount_scale: f64,
    /// ... and amounts on weekends by this, as the day is handed out. Normal traffic whose mix changes
    /// with the part of the week (people spend less at night and more on Saturdays): what drift must not
    /// mistake for a shift when the model was trained on it. 1.0 (the defaults) changes nothing.
    pub weekend_amount_scale: f64,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        Self {
            n_customers: 5_000,
            n_terminals: 10_000,
            n_days: 183,
            start_date: NaiveDate::from_ymd_opt(2018, 4, 1).unwrap_or_default(),
            radius: 5.0,
            seed: 0,
            amount_scale: 1.0,
            night_amount_scale: 1.0,
            weekend_amount_scale: 1.0,
        }
    }
}

/// A configuration the simulator cannot run; reported instead of producing an empty or endless result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SimulatorError {
    /// With no customers nothing can ever be generated (and a stream would spin forever).
    #[error("the simulation needs at least one customer")]
    NoCustomers,
    /// With no terminals no customer can ever pay anywhere.
    #[error("the simulation needs at least one terminal")]
    NoTerminals,
    /// The radius must be a positive finite distance.
    #[error("radius must be a positive finite number, got {0}")]
    BadRadius(f64),
    /// The amount scale must be a positive finite factor.
    #[error("amount scale must be a positive finite number, got {0}")]
    BadAmountScale(f64),
    /// Ids are kept as 32-bit integers internally.
    #[error("{what} = {value} is more than the simulator supports ({max})")]
    TooLarge {
        /// Which setting.
        what: &'static str,
        /// Its value.
        value: usize,
        /// The largest accepted value.
        max: usize,
    },
}

/// Generates the whole dataset of `config.n_days` days, as the handbook does.
///
/// Rows are sorted by `tx_datetime` (ties by customer), `transaction_id` counts from 0 in that order, and the
/// fraud scenarios 1, 2, 3 are applied.
pub fn generate(config: &SimulatorConfig) -> Result<Vec<Transaction>, SimulatorError> {
    generate_with_progress(config, |_, _| {})
}

/// [`generate`], calling `on_day(days_done, n_days)` after each day so a CLI can show progress; this library
/// draws no progress bar itself.
pub fn generate_with_progress(
    config: &SimulatorConfig,
    on_day: impl FnMut(u32, u32),
) -> Result<Vec<Transaction>, SimulatorError> {
    generate_seeded(config, config.seed, on_day)
}

/// [`generate`] with the extension columns drawn from `extension_seed`; the tests use it to show the base
/// columns do not depend on the extension's draws.
fn generate_seeded(
    config: &SimulatorConfig,
    extension_seed: u64,
    mut on_day: impl FnMut(u32, u32),
) -> Result<Vec<Transaction>, SimulatorError> {
    let profiles = Profiles::new(config, extension_seed)?;
    let mut engine = Engine::new(config, profiles, Some(u64::from(config.n_days)));
    let mut out =
        Vec::with_capacity(engine.expected_transactions_per_day() * config.n_days as usize);
    let mut done = 0;
    while let Some(day) = engine.next_day() {
        out.extend(day);
        done += 1;
        on_day(done, config.n_days);
    }
    Ok(out)
}

/// An endless supply of simulated transactions, day after day, for the attack producer and replay tests.
///
/// Uses the same profiles as [`generate`] for the same config and carries the compromise state forward (a
/// terminal stays compromised 28 days, a card 14), so its data looks like the training data indefinitely.
/// It is identical to [`generate`] on days `0..n_days-13`, and ids and times keep increasing past `n_days`.
pub struct TransactionStream {
    /// Produces one day at a time.
    engine: Engine,
    /// The day being handed out.
    current: std::vec::IntoIter<Transaction>,
    /// False when no customer can ever transact (no terminal in reach); the stream then ends at once
    /// instead of searching forever.
    can_transact: bool,
}

impl TransactionStream {
    /// Starts the stream at `config.start_date`; `config.n_days` is ignored.
    pub fn new(config: &SimulatorConfig) -> Result<Self, SimulatorError> {
        let profiles = Profiles::new(config, config.seed)?;
        let can_transact = profiles.customers.iter().any(|c| {
            c.nb_tx.is_some()
                && profiles.terminal_offsets[c.index + 1] > profiles.terminal_offsets[c.index]
        });
        Ok(Self {
            engine: Engine::new(config, profiles, None),
            current: Vec::new().into_iter(),
            can_transact,
        })
    }
}

impl Iterator for TransactionStream {
    type Item = Transaction;

    fn next(&mut self) -> Option<Transaction> {
        loop {
            if let Some(tx) = self.current.next() {
                return Some(tx);
            }
            if !self.can_transact {
                return None;
            }
            self.current = self.engine.next_day()?.into_iter();
        }
    }
}

/// What the simulator knows about one customer.
struct CustomerProfile {
    /// Position in the customer table, also the customer id.
    index: usize,
    /// Amounts are N(mean_amount, mean_amount / 2), redrawn from U(0, 2 · mean_amount) when negative.
    mean_amount: f64,
    /// mean_nb_tx_per_day, kept for capacity estimates.
    rate: f64,
    /// Poisson(mean_nb_tx_per_day); `None` when the rate is 0 (Poisson needs a positive rate).
    nb_tx: Option<Poisson<f64>>,
    /// Extension: age in whole years.
    user_age: f32,
    /// Extension: balance in cents-rounded currency units.
    account_balance: f64,
}

/// Customers, terminals, and who can use which terminal.
struct Profiles {
    customers: Vec<CustomerProfile>,
    /// Terminals available to customer `c`: `terminals[terminal_offsets[c]..terminal_offsets[c + 1]]`,
    /// ascending ids. Flat so a 5000-customer table is two allocations.
    terminal_offsets: Vec<usize>,
    terminals: Vec<u32>,
    /// Extension: each terminal's merchant category.
    terminal_category: Vec<MerchantCategory>,
}

impl Profiles {
    fn new(config: &SimulatorConfig, extension_seed: u64) -> Result<Self, SimulatorError> {
        let max = u32::MAX as usize;
        if config.n_customers == 0 {
            return Err(SimulatorError::NoCustomers);
        }
        if config.n_terminals == 0 {
            return Err(SimulatorError::NoTerminals);
        }
        if !(config.radius.is_finite() && config.radius > 0.0) {
            return Err(SimulatorError::BadRadius(config.radius));
        }
        for scale in [
            config.amount_scale,
            config.night_amount_scale,
            config.weekend_amount_scale,
        ] {
            if !(scale.is_finite() && scale > 0.0) {
                return Err(SimulatorError::BadAmountScale(scale));
            }
        }
        for (what, value) in [
            ("n_customers", config.n_customers),
            ("n_terminals", config.n_terminals),
        ] {
            if value > max {
                return Err(SimulatorError::TooLarge { what, value, max });
            }
        }
        let seed = config.seed;

        let mut rng = stream_rng(seed, Purpose::CustomerProfiles, 0, 0);
        let mut ext_rng = stream_rng(extension_seed, Purpose::CustomerExtension, 0, 0);
        let balance = LogNormal::new(BALANCE_MEDIAN.ln(), BALANCE_LOG_SIGMA).ok();
        let mut positions = Vec::with_capacity(config.n_customers);
        let mut customers = Vec::with_capacity(config.n_customers);
        for index in 0..config.n_customers {
            let x = rng.gen_range(0.0..GRID_SIDE);
            let y = rng.gen_range(0.0..GRID_SIDE);
            let mean_amount = rng.gen_range(5.0..100.0);
            let rate: f64 = rng.gen_range(0.0..4.0);
            positions.push((x, y));
            let user_age = ext_rng.gen_range(USER_AGE_RANGE) as f32;
            let account_balance =
                balance.map_or(BALANCE_MEDIAN, |d| round_cents(d.sample(&mut ext_rng)));
            customers.push(CustomerProfile {
                index,
                mean_amount,
                rate,
                nb_tx: Poisson::new(rate).ok(),
                user_age,
                account_balance,
            });
        }

        let mut rng = stream_rng(seed, Purpose::TerminalProfiles, 0, 0);
        let terminal_positions: Vec<(f64, f64)> = (0..config.n_terminals)
            .map(|_| (rng.gen_range(0.0..GRID_SIDE), rng.gen_range(0.0..GRID_SIDE)))
            .collect();
        let mut ext_rng = stream_rng(extension_seed, Purpose::TerminalExtension, 0, 0);
        let terminal_category = (0..config.n_terminals)
            .map(|_| MerchantCategory::ALL[ext_rng.gen_range(0..MerchantCategory::ALL.len())])
            .collect();

        let (terminal_offsets, terminals) =
            terminals_in_reach(&positions, &terminal_positions, config.radius);
        Ok(Self {
            customers,
            terminal_offsets,
            terminals,
            terminal_category,
        })
    }

    fn terminals_of(&self, customer: usize) -> &[u32] {
        &self.terminals[self.terminal_offsets[customer]..self.terminal_offsets[customer + 1]]
    }
}

/// For each customer, the terminals strictly within `radius`, found through a grid of cells at least
/// `radius` wide so only the 3 × 3 neighbouring cells are searched.
fn terminals_in_reach(
    customers: &[(f64, f64)],
    terminals: &[(f64, f64)],
    radius: f64,
) -> (Vec<usize>, Vec<u32>) {
    let cells = ((GRID_SIDE / radius).floor() as usize).clamp(1, 512);
    let cell_size = GRID_SIDE / cells as f64;
    let cell_of = |v: f64| ((v / cell_size) as usize).min(cells - 1);
    let mut buckets: Vec<Vec<u32>> = vec![Vec::new(); cells * cells];
    for (id, &(x, y)) in terminals.iter().enumerate() {
        buckets[cell_of(y) * cells + cell_of(x)].push(id as u32);
    }
    let r2 = radius * radius;
    let mut offsets = Vec::with_capacity(customers.len() + 1);
    offsets.push(0);
    let mut flat = Vec::new();
    for &(x, y) in customers {
        let start = flat.len();
        let (cx, cy) = (cell_of(x), cell_of(y));
        for gy in cy.saturating_sub(1)..=(cy + 1).min(cells - 1) {
            for gx in cx.saturating_sub(1)..=(cx + 1).min(cells - 1) {
                for &t in &buckets[gy * cells + gx] {
                    let (tx, ty) = terminals[t as usize];
                    if (tx - x).powi(2) + (ty - y).powi(2) < r2 {
                        flat.push(t);
                    }
                }
            }
        }
        flat[start..].sort_unstable();
        offsets.push(flat.len());
    }
    (offsets, flat)
}

/// Produces the days in order, applying the fraud scenarios; shared by [`generate`] and
/// [`TransactionStream`] so the two cannot drift apart.
struct Engine {
    profiles: Profiles,
    seed: u64,
    /// [`SimulatorConfig::amount_scale`], applied as a day is handed out.
    amount_scale: f64,
    /// [`SimulatorConfig::night_amount_scale`] and [`SimulatorConfig::weekend_amount_scale`], likewise.
    night_amount_scale: f64,
    weekend_amount_scale: f64,
    /// Epoch seconds of `start_date` at midnight.
    start_epoch: EpochSeconds,
    /// `Some(n_days)` for a dataset: nothing at or past this day exists, so scenario-3 windows are cut there.
    horizon: Option<u64>,
    /// Days generated (scenarios 1 and 2 applied) but not handed out yet; the front is `next_day_to_emit`.
    pending: VecDeque<Vec<Transaction>>,
    next_day_to_generate: u64,
    next_day_to_emit: u64,
    next_id: u64,
    /// Scenario 2: terminal `t` is compromised on days `< compromised_until[t]` (from its compromise day on).
    terminal_compromised_until: Vec<u64>,
}

impl Engine {
    fn new(config: &SimulatorConfig, profiles: Profiles, horizon: Option<u64>) -> Self {
        let start_epoch = config
            .start_date
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp();
        let n_terminals = profiles.terminal_category.len();
        Self {
            profiles,
            seed: config.seed,
            amount_scale: config.amount_scale,
            night_amount_scale: config.night_amount_scale,
            weekend_amount_scale: config.weekend_amount_scale,
            start_epoch,
            horizon,
            pending: VecDeque::with_capacity(CUSTOMER_COMPROMISE_DAYS as usize + 1),
            next_day_to_generate: 0,
            next_day_to_emit: 0,
            next_id: 0,
            terminal_compromised_until: vec![0; n_terminals],
        }
    }

    /// A capacity hint: the mean of all customers' daily rates.
    fn expected_transactions_per_day(&self) -> usize {
        let total: f64 = self.profiles.customers.iter().map(|c| c.rate).sum();
        (total * 1.02) as usize + 16
    }

    /// The next day's transactions, with every scenario applied; `None` past the horizon.
    fn next_day(&mut self) -> Option<Vec<Transaction>> {
        let day = self.next_day_to_emit;
        let mut generate_until = day + CUSTOMER_COMPROMISE_DAYS;
        if let Some(horizon) = self.horizon {
            if day >= horizon {
                return None;
            }
            generate_until = generate_until.min(horizon);
        }
        while self.next_day_to_generate < generate_until {
            let generated = self.generate_day(self.next_day_to_generate);
            self.pending.push_back(generated);
            self.next_day_to_generate += 1;
        }
        self.compromise_customers(day);
        self.next_day_to_emit += 1;
        let mut txs = self.pending.pop_front()?;
        // After every scenario has labelled the day, so the labels are those of the unscaled world.
        let seasonal = self.night_amount_scale != 1.0 || self.weekend_amount_scale != 1.0;
        if self.amount_scale != 1.0 || seasonal {
            for tx in &mut txs {
                let mut scale = self.amount_scale;
                // The features' own calendar (TX_DURING_NIGHT, TX_DURING_WEEKEND).
                let weekday = (tx.tx_datetime.div_euclid(SECONDS_PER_DAY) + 3).rem_euclid(7);
                let hour = tx.tx_datetime.rem_euclid(SECONDS_PER_DAY) / 3600;
                if hour <= 6 {
                    scale *= self.night_amount_scale;
                }
                if weekday >= 5 {
                    scale *= self.weekend_amount_scale;
                }
                tx.tx_amount = round_cents(tx.tx_amount * scale);
            }
        }
        Some(txs)
    }

    /// One day's genuine transactions, sorted, numbered, with scenarios 1 and 2 applied.
    fn generate_day(&mut self, day: u64) -> Vec<Transaction> {
        let mut txs = Vec::with_capacity(self.expected_transactions_per_day());
        let key = stream_key(self.seed, Purpose::Transactions, day);
        let day_start = day as i64 * SECONDS_PER_DAY;
        for customer in &self.profiles.customers {
            let Some(nb_tx) = &customer.nb_tx else {
                continue;
            };
            let terminals = self.profiles.terminals_of(customer.index);
            if terminals.is_empty() {
                continue;
            }
            let mut rng = ChaCha8Rng::from_seed(key);
            rng.set_stream(customer.index as u64);
            let n = nb_tx.sample(&mut rng) as u64;
            for _ in 0..n {
                // Whole seconds, truncated as the handbook's `int(...)`; outside the day the draw is dropped.
                let z: f64 = rng.sample(StandardNormal);
                let time = (TIME_OF_DAY_MEAN + TIME_OF_DAY_STD * z) as i64;
                if !(0 < time && time < SECONDS_PER_DAY) {
                    continue;
                }
                let z: f64 = rng.sample(StandardNormal);
                let mut amount = customer.mean_amount + customer.mean_amount / 2.0 * z;
                if amount < 0.0 {
                    amount = rng.gen_range(0.0..2.0 * customer.mean_amount);
                }
                let terminal = terminals[rng.gen_range(0..terminals.len())];
                let tx_time_seconds = day_start + time;
                txs.push(Transaction {
                    transaction_id: 0,
                    tx_datetime: self.start_epoch + tx_time_seconds,
                    customer_id: customer.index as u64,
                    terminal_id: u64::from(terminal),
                    tx_amount: round_cents(amount),
                    tx_time_seconds,
                    tx_time_days: day as i64,
                    tx_fraud: false,
                    tx_fraud_scenario: 0,
                    merchant_category: Some(self.profiles.terminal_category[terminal as usize]),
                    user_age: Some(customer.user_age),
                    account_balance: Some(customer.account_balance),
                });
            }
        }
        // Stable: equal times keep customer order, then the customer's own order.
        txs.sort_by_key(|t| t.tx_time_seconds);

        let mut rng = stream_rng(self.seed, Purpose::TerminalCompromise, day, 0);
        let n_terminals = self.terminal_compromised_until.len();
        for t in index::sample(
            &mut rng,
            n_terminals,
            TERMINALS_COMPROMISED_PER_DAY.min(n_terminals),
        ) {
            let until = &mut self.terminal_compromised_until[t];
            *until = (*until).max(day + TERMINAL_COMPROMISE_DAYS);
        }
        for tx in &mut txs {
            tx.transaction_id = self.next_id;
            self.next_id += 1;
            if tx.tx_amount > SCENARIO_1_THRESHOLD {
                tx.tx_fraud = true;
                tx.tx_fraud_scenario = 1;
            }
            if day < self.terminal_compromised_until[tx.terminal_id as usize] {
                tx.tx_fraud = true;
                tx.tx_fraud_scenario = 2;
            }
        }
        txs
    }

    /// Scenario 3 for the cards compromised on `day`: a third (rounded down) of their transactions in the
    /// pending window (`day` and the 13 days after, as far as they exist) become frauds of 5 × the amount.
    fn compromise_customers(&mut self, day: u64) {
        let mut rng = stream_rng(self.seed, Purpose::CustomerCompromise, day, 0);
        let n_customers = self.profiles.customers.len();
        let chosen = index::sample(
            &mut rng,
            n_customers,
            CUSTOMERS_COMPROMISED_PER_DAY.min(n_customers),
        );
        let chosen: Vec<u64> = chosen.into_iter().map(|c| c as u64).collect();
        let mut candidates = Vec::new();
        for (d, txs) in self
            .pending
            .iter()
            .enumerate()
            .take(CUSTOMER_COMPROMISE_DAYS as usize)
        {
            for (i, tx) in txs.iter().enumerate() {
                if chosen.contains(&tx.customer_id) {
                    candidates.push((d, i));
                }
            }
        }
        let n = candidates.len();
        for pick in index::sample(&mut rng, n, n / 3) {
            let (d, i) = candidates[pick];
            let tx = &mut self.pending[d][i];
            tx.tx_amount = round_cents(tx.tx_amount * SCENARIO_3_AMOUNT_FACTOR);
            tx.tx_fraud = true;
            tx.tx_fraud_scenario = 3;
        }
    }
}

/// Rounds to cents, as the handbook does for every amount.
fn round_cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The ChaCha key for one (seed, purpose, day); SplitMix64 spreads the three numbers over 256 bits so
/// neighbouring seeds or days give unrelated streams.
fn stream_key(seed: u64, purpose: Purpose, day: u64) -> [u8; 32] {
    let mut state = seed
        ^ (purpose as u64).wrapping_mul(0xA076_1D64_78BD_642F)
        ^ day.wrapping_mul(0xE703_7ED1_A0B4_28DB);
    let mut key = [0u8; 32];
    for chunk in key.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    key
}

/// The generator for one (seed, purpose, day, stream number).
fn stream_rng(seed: u64, purpose: Purpose, day: u64, stream: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::from_seed(stream_key(seed, purpose, day));
    rng.set_stream(stream);
    rng
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> SimulatorConfig {
        SimulatorConfig {
            n_customers: 300,
            n_terminals: 600,
            n_days: 30,
            seed: 7,
            ..SimulatorConfig::default()
        }
    }

    #[test]
    fn extension_seed_changes_only_the_extension_columns() {
        let config = small();
        let a = generate_seeded(&config, 1, |_, _| {}).unwrap();
        let b = generate_seeded(&config, 2, |_, _| {}).unwrap();
        assert_eq!(a.len(), b.len());
        let strip = |t: &Transaction| Transaction {
            merchant_category: None,
            user_age: None,
            account_balance: None,
            ..t.clone()
        };
        assert!(
            a.iter().zip(&b).all(|(x, y)| strip(x) == strip(y)),
            "base columns must not move"
        );
        let differing = a
            .iter()
            .zip(&b)
            .filter(|(x, y)| x.user_age != y.user_age || x.merchant_category != y.merchant_category)
            .count();
        assert!(
            differing > a.len() / 2,
            "the extension seed must matter ({differing} of {})",
            a.len()
        );
    }

    #[test]
    fn mean_terminals_in_reach_matches_the_edge_corrected_disc_area() {
        // A disc of radius r around a uniform point of a square of side L covers on average
        // πr² − 8r³/(3L) + r⁴/(2L²) of the square (integrate (1−|dx|/L)(1−|dy|/L) over the disc).
        // With 2000 terminals in 100 × 100 (density 0.2) and r = 5: (78.54 − 3.33 + 0.03) · 0.2 = 15.05.
        // At the reference scale (density 1) it is 75.2: the SPEC's "~100" forgets the edges and rounds up.
        let config = SimulatorConfig {
            n_customers: 2000,
            n_terminals: 2000,
            ..small()
        };
        let profiles = Profiles::new(&config, 0).unwrap();
        let mean = profiles.terminals.len() as f64 / config.n_customers as f64;
        assert!(
            (14.0..16.1).contains(&mean),
            "mean terminals in reach {mean}"
        );
        for c in 0..config.n_customers {
            let ts = profiles.terminals_of(c);
            assert!(ts.windows(2).all(|w| w[0] < w[1]), "sorted, no duplicates");
        }
    }

    #[test]
    fn grid_search_finds_exactly_what_a_full_scan_finds() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let customers: Vec<_> = (0..200)
            .map(|_| (rng.gen_range(0.0..100.0), rng.gen_range(0.0..100.0)))
            .collect();
        let terminals: Vec<_> = (0..500)
            .map(|_| (rng.gen_range(0.0..100.0), rng.gen_range(0.0..100.0)))
            .collect();
        for radius in [0.01, 1.0, 5.0, 33.0, 150.0] {
            let (offsets, flat) = terminals_in_reach(&customers, &terminals, radius);
            for (c, &(x, y)) in customers.iter().enumerate() {
                let brute: Vec<u32> = terminals
                    .iter()
                    .enumerate()
                    .filter(|(_, (tx, ty))| (tx - x).powi(2) + (ty - y).powi(2) < radius * radius)
                    .map(|(i, _)| i as u32)
                    .collect();
                assert_eq!(
                    &flat[offsets[c]..offsets[c + 1]],
                    &brute[..],
                    "radius {radius}"
                );
            }
        }
    }

    #[test]
    fn invalid_configs_are_refused_with_a_reason() {
        let ok = small();
        assert_eq!(
            generate(&SimulatorConfig {
                n_customers: 0,
                ..ok.clone()
            }),
            Err(SimulatorError::NoCustomers)
        );
        assert_eq!(
            generate(&SimulatorConfig {
                n_terminals: 0,
                ..ok.clone()
            }),
            Err(SimulatorError::NoTerminals)
        );
        for radius in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = generate(&SimulatorConfig {
                radius,
                ..ok.clone()
            })
            .unwrap_err();
            assert!(err.to_string().contains("radius"));
        }
        for amount_scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = generate(&SimulatorConfig {
                amount_scale,
                ..ok.clone()
            })
            .unwrap_err();
            assert!(err.to_string().contains("amount scale"));
        }
        assert!(
            TransactionStream::new(&SimulatorConfig {
                n_customers: 0,
                ..ok.clone()
            })
            .is_err()
        );
        assert_eq!(
            generate(&SimulatorConfig { n_days: 0, ..ok }).map(|v| v.len()),
            Ok(0)
        );
    }

    #[test]
    fn amount_scale_multiplies_amounts_and_keeps_every_label() {
        let base = generate(&small()).unwrap();
        let scaled = generate(&SimulatorConfig {
            amount_scale: 1.5,
            ..small()
        })
        .unwrap();
        assert_eq!(base.len(), scaled.len());
        for (a, b) in base.iter().zip(&scaled) {
            assert_eq!(b.tx_amount, round_cents(a.tx_amount * 1.5));
            assert_eq!(
                (a.transaction_id, a.tx_fraud, a.tx_fraud_scenario),
                (b.transaction_id, b.tx_fraud, b.tx_fraud_scenario)
            );
        }
    }

    #[test]
    fn a_stream_where_nobody_can_pay_ends_instead_of_spinning() {
        let config = SimulatorConfig {
            n_customers: 1,
            n_terminals: 1,
            radius: 1e-9,
            ..small()
        };
        assert_eq!(TransactionStream::new(&config).unwrap().next(), None);
    }

    #[test]
    fn stream_keys_differ_by_every_input() {
        let base = stream_key(1, Purpose::Transactions, 1);
        assert_ne!(base, stream_key(2, Purpose::Transactions, 1));
        assert_ne!(base, stream_key(1, Purpose::CustomerCompromise, 1));
        assert_ne!(base, stream_key(1, Purpose::Transactions, 2));
    }
}
