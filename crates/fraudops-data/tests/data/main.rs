//! Integration tests of `fraudops-data`, one binary with a module per part (faster to link).

mod reader;
mod roundtrip;
mod simulator;

use fraudops_data::simulator::SimulatorConfig;

/// A simulated population of `customers` and `terminals` over `days`, from `seed`; the rest as default.
fn population(customers: usize, terminals: usize, days: u32, seed: u64) -> SimulatorConfig {
    SimulatorConfig {
        n_customers: customers,
        n_terminals: terminals,
        n_days: days,
        seed,
        ..SimulatorConfig::default()
    }
}
