//! The key layout, versioned so a new layout can live beside an old one during a rollout.

/// Prefix of every key: the project, the layout version.
const PREFIX: &str = "fraudops:v1";

/// A customer's transactions (sorted set scored by time).
pub fn customer(id: u64) -> String {
    format!("{PREFIX}:c:{id}")
}

/// Every transaction seen at a terminal (sorted set of ids scored by time).
pub fn terminal(id: u64) -> String {
    format!("{PREFIX}:t:{id}")
}

/// A terminal's transactions labelled fraud (sorted set of ids scored by time).
pub fn terminal_fraud(id: u64) -> String {
    format!("{PREFIX}:f:{id}")
}

/// The scores recorded for the transactions of one event-time day (hash tx id → score), read back by the
/// label consumer when the transaction's label arrives.
pub fn scores(day: i64) -> String {
    format!("{PREFIX}:s:{day}")
}

/// The online evaluation's joined samples of one event-time day (hash tx id → sample), kept so the label
/// consumer's window survives a restart (`evaluation.rs`).
pub fn evaluation_day(day: i64) -> String {
    format!("{PREFIX}:e:{day}")
}

/// The days that have evaluation samples (sorted set, member and score the day number).
pub fn evaluation_days() -> String {
    format!("{PREFIX}:e:days")
}
