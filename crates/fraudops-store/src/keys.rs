//! The key layout, versioned so a new layout can live beside an old one during a rollout.
//!
//! Layout v2 (issue 31) puts every key a script touches into one Redis Cluster slot with a hash tag (the
//! part in braces is what the slot is computed from): a card's key is tagged by the card, a terminal's two
//! sets by the terminal, each day's hashes by the day. A card's call and its terminal's call may then go to
//! different shards, in parallel. v1 (`fraudops:v1:c:<id>`, no tags) is read only to drain it into v2 on
//! first touch (a single Redis; a cluster never held v1 keys): see `observe.lua`.
//!
//! Layout v3 changes the card key only (its members carry prefix sums, so a window is two lookups instead
//! of a walk over the card's history): `fraudops:v3:{c<id>}`, in the same slot as v2's card key, which it
//! drains on first touch (one Redis and a cluster alike). Terminals, scores and evaluation samples keep
//! their v2 names.

/// Prefix of the keys whose layout has not changed since v2: terminals, scores, evaluation samples.
const PREFIX: &str = "fraudops:v2";

/// Prefix of the card keys (layout v3: members with prefix sums).
const CARD_PREFIX: &str = "fraudops:v3";

/// The previous layout's prefix, drained into v2 (`observe.lua`, `label.lua`).
const PREFIX_V1: &str = "fraudops:v1";

/// The namespace of synthetic traffic (the attack, the drills): its cards and terminals never share a key
/// with real ones.
const SYNTHETIC: &str = "syn";

/// Whose history a key holds: real traffic, or the synthetic traffic of an attack or a drill.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Namespace {
    /// Real cards and terminals.
    #[default]
    Real,
    /// The attack's and the drills' events: kept apart, so they never change a real card's windows.
    Synthetic,
}

impl Namespace {
    fn tag(self) -> &'static str {
        match self {
            Self::Real => "",
            Self::Synthetic => SYNTHETIC,
        }
    }
}

/// A customer's transactions (sorted set scored by time; members carry the card's running totals,
/// `observe.lua`).
pub fn customer(ns: Namespace, id: u64) -> String {
    format!("{CARD_PREFIX}:{{{}c{id}}}", ns.tag())
}

/// Every transaction seen at a terminal (sorted set of ids scored by time).
pub fn terminal(ns: Namespace, id: u64) -> String {
    format!("{PREFIX}:{{{}t{id}}}:t", ns.tag())
}

/// A terminal's transactions labelled fraud (sorted set of ids scored by time); same slot as
/// [`terminal`].
pub fn terminal_fraud(ns: Namespace, id: u64) -> String {
    format!("{PREFIX}:{{{}t{id}}}:f", ns.tag())
}

/// The scores recorded for the transactions of one event-time day (hash tx id → score), read back by the
/// label consumer when the transaction's label arrives.
pub fn scores(day: i64) -> String {
    format!("{PREFIX}:{{s{day}}}")
}

/// The online evaluation's joined samples of one event-time day (hash tx id → sample), kept so the label
/// consumer's window survives a restart (`evaluation.rs`).
pub fn evaluation_day(day: i64) -> String {
    format!("{PREFIX}:{{e{day}}}")
}

/// The days that have evaluation samples (sorted set, member and score the day number).
pub fn evaluation_days() -> String {
    format!("{PREFIX}:{{e}}:days")
}

/// Layout v2's card key (members without running totals), drained into v3 by `observe.lua` on first
/// touch: the same slot as v3's, so a cluster drains it too.
pub fn v2_customer_of(ns: Namespace, id: u64) -> String {
    format!("{PREFIX}:{{{}c{id}}}", ns.tag())
}

/// Layout v1's names, drained into v2 by the scripts on first touch (a single Redis only).
pub mod v1 {
    use super::PREFIX_V1;

    /// v1's card key.
    pub fn customer(id: u64) -> String {
        format!("{PREFIX_V1}:c:{id}")
    }

    /// v1's terminal key.
    pub fn terminal(id: u64) -> String {
        format!("{PREFIX_V1}:t:{id}")
    }

    /// v1's terminal fraud key.
    pub fn terminal_fraud(id: u64) -> String {
        format!("{PREFIX_V1}:f:{id}")
    }

    /// v1's scores of a day.
    pub fn scores(day: i64) -> String {
        format!("{PREFIX_V1}:s:{day}")
    }
}

/// The v1 card key a v2 card key of `ns` drains: real cards have one; synthetic keys never had a v1, so
/// they name a key that never exists and drain nothing (a synthetic call must never take a real card's
/// v1 history into the synthetic namespace).
pub fn v1_customer_of(ns: Namespace, id: u64) -> String {
    match ns {
        Namespace::Real => v1::customer(id),
        Namespace::Synthetic => format!("{}:no-v1", customer(ns, id)),
    }
}

/// The v1 terminal and terminal-fraud keys the v2 keys of `ns` drain (as [`v1_customer_of`]).
pub fn v1_terminal_of(ns: Namespace, id: u64) -> [String; 2] {
    match ns {
        Namespace::Real => [v1::terminal(id), v1::terminal_fraud(id)],
        Namespace::Synthetic => {
            let none = format!("{}:no-v1", terminal(ns, id));
            [none.clone(), none]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::cluster_routing::Slot;

    fn id_of_busy_card() -> u64 {
        4_242
    }

    #[test]
    fn a_terminal_s_two_sets_share_a_slot_and_namespaces_never_share_a_key() {
        for id in [0, 7, 123_456_789] {
            assert_eq!(
                Slot::for_key(terminal(Namespace::Real, id)),
                Slot::for_key(terminal_fraud(Namespace::Real, id))
            );
            assert_ne!(
                customer(Namespace::Real, id),
                customer(Namespace::Synthetic, id)
            );
            assert_ne!(
                terminal(Namespace::Real, id),
                terminal(Namespace::Synthetic, id)
            );
        }
        assert_eq!(customer(Namespace::Real, 42), "fraudops:v3:{c42}");
        assert_eq!(
            Slot::for_key(customer(Namespace::Real, id_of_busy_card())),
            Slot::for_key(v2_customer_of(Namespace::Real, id_of_busy_card()))
        );
        assert_eq!(terminal(Namespace::Synthetic, 7), "fraudops:v2:{synt7}:t");
    }
}
