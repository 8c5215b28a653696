//! The Lua scripts and their arguments. The window lengths, the delay and the retentions are passed from
//! `fraudops_features::definition` on every call, so the scripts hold no number of their own.

use std::sync::LazyLock;

use fraudops_features::definition::{
    CUSTOMER_RETENTION, CUSTOMER_WINDOW_DAYS, DAY, TERMINAL_DELAY_DAYS, TERMINAL_RETENTION,
    TERMINAL_WINDOW_DAYS,
};
use redis::Script;

/// Records transactions and returns their windows (see the file's header).
pub static OBSERVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("drain_v1.lua"),
        include_str!("observe.lua")
    ))
});

/// Applies labels to terminal risk (see the file's header).
pub static LABEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("drain_v1.lua"),
        include_str!("label.lua")
    ))
});

/// Integers `observe.lua` returns per card part: 9 window values and what it did.
pub const CARD_WIDTH: usize = 10;
/// Integers `observe.lua` returns per terminal part: 6 window values and what it did.
pub const TERMINAL_WIDTH: usize = 7;

/// How late an event may arrive and still see exact windows: history is kept this much longer than any
/// window reaches. Scorers do not move in lockstep (one worker lags another, a replay lane falls behind),
/// and without the slack one scorer's newer event would prune history an older one still needs.
pub const LATE_EVENT_SLACK: i64 = 7 * DAY;

/// Keys expire this long after their last write (wall clock): past the longest window plus the delay, no
/// event can be inside a window any more, so an idle card or terminal costs nothing after it.
pub const CUSTOMER_TTL_SECONDS: i64 = CUSTOMER_RETENTION + LATE_EVENT_SLACK + DAY;
/// See [`CUSTOMER_TTL_SECONDS`].
pub const TERMINAL_TTL_SECONDS: i64 = TERMINAL_RETENTION + LATE_EVENT_SLACK + DAY;

/// A day's scores expire this long after their last write (wall clock): the longest label delay (7 days,
/// the terminal delay every label must beat) and a day of slack, so every label finds its score.
pub const SCORE_TTL_SECONDS: i64 = TERMINAL_DELAY_DAYS * DAY + DAY;

/// The definition's numbers, in the order `observe.lua` reads them (`ARGV[4..15]`).
pub fn observe_header() -> [i64; 12] {
    [
        DAY,
        CUSTOMER_WINDOW_DAYS[0],
        CUSTOMER_WINDOW_DAYS[1],
        CUSTOMER_WINDOW_DAYS[2],
        TERMINAL_DELAY_DAYS,
        TERMINAL_WINDOW_DAYS[0],
        TERMINAL_WINDOW_DAYS[1],
        TERMINAL_WINDOW_DAYS[2],
        CUSTOMER_RETENTION + LATE_EVENT_SLACK,
        TERMINAL_RETENTION + LATE_EVENT_SLACK,
        CUSTOMER_TTL_SECONDS,
        TERMINAL_TTL_SECONDS,
    ]
}
