//! What the drill's tests share: a skip that cannot go unnoticed.

use std::io::Write as _;

/// Set to `1` (scripts/test.sh does, after installing promtool, as root) to make a test that lacks its
/// tool or a writable cgroup fail instead of skipping.
pub const REQUIRE_ENV: &str = "FRAUDOPS_REQUIRE_DRILL_TOOLS";

/// Skips `test` for `reason`, on the terminal itself (libtest captures only the print macros, and a skip
/// nobody sees is how such tests rot), or fails it when [`REQUIRE_ENV`] is `1`.
pub fn skip(test: &str, reason: &str) {
    if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
        panic!("{test}: {REQUIRE_ENV}=1 but {reason}");
    }
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: {reason} (set {REQUIRE_ENV}=1 to make this a failure)"
    );
}
