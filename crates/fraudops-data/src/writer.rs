//! The CSV writer and the datetime text format shared by files and the API.
//!
//! The writer emits the handbook's columns plus the extension columns, so a file we write is read back by
//! [`crate::reader`] and by the handbook's own pandas code alike. Fields are formatted by hand into one
//! reused buffer: simulated datasets have millions of rows and `format!` per field would dominate.

use std::io::Write;

use crate::{EpochSeconds, Transaction};

/// The header [`write_csv`] writes: the handbook's nine columns, then the §4 extension columns.
pub const CSV_HEADER: &str = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,\
TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO,MERCHANT_CATEGORY,USER_AGE,ACCOUNT_BALANCE";

/// Bytes buffered before each `write_all`, so an unbuffered `File` is not hit once per row.
const FLUSH_AT: usize = 1 << 16;

/// Appends each `push_x(value)` to the buffer as `push_x(&mut buf, value)`, each followed by a comma.
macro_rules! push_fields {
    ($buf:ident; $($push:ident($value:expr)),* $(,)?) => {
        $(
            $push(&mut $buf, $value);
            $buf.push(b',');
        )*
    };
}

/// Writes `txs` as CSV with [`CSV_HEADER`]: datetimes as `YYYY-MM-DD HH:MM:SS`, amounts with 2 decimals,
/// absent extension fields as empty fields.
///
/// Returns `csv::Error` (wrapping the I/O error) so callers can treat it like any other CSV failure.
pub fn write_csv<W: Write>(mut w: W, txs: &[Transaction]) -> Result<(), csv::Error> {
    let mut buf = Vec::with_capacity(FLUSH_AT + 256);
    buf.extend_from_slice(CSV_HEADER.as_bytes());
    buf.push(b'\n');
    for tx in txs {
        // The handbook's columns: each field, then its comma.
        push_fields!(buf;
            push_u64(tx.transaction_id),
            push_datetime(tx.tx_datetime),
            push_u64(tx.customer_id),
            push_u64(tx.terminal_id),
            push_cents(tx.tx_amount),
            push_i64(tx.tx_time_seconds),
            push_i64(tx.tx_time_days),
            push_u64(u64::from(tx.tx_fraud)),
            push_u64(u64::from(tx.tx_fraud_scenario)),
        );
        if let Some(category) = tx.merchant_category {
            buf.extend_from_slice(category.as_str().as_bytes());
        }
        buf.push(b',');
        match tx.user_age {
            Some(age) if age.fract() == 0.0 && (0.0..1e9).contains(&age) => {
                push_u64(&mut buf, age as u64)
            }
            // Shortest text that parses back to the same f32; writing to a Vec cannot fail.
            Some(age) => {
                let _ = write!(buf, "{age}");
            }
            None => {}
        }
        buf.push(b',');
        if let Some(balance) = tx.account_balance {
            push_cents(&mut buf, balance);
        }
        buf.push(b'\n');
        if buf.len() >= FLUSH_AT {
            w.write_all(&buf)?;
            buf.clear();
        }
    }
    w.write_all(&buf)?;
    w.flush()?;
    Ok(())
}

/// Formats epoch seconds as `YYYY-MM-DD HH:MM:SS`, the handbook's `TX_DATETIME` text; the API uses it for
/// `tx_datetime` so files and responses agree.
pub fn format_datetime(t: EpochSeconds) -> String {
    let mut buf = Vec::with_capacity(19);
    push_datetime(&mut buf, t);
    String::from_utf8(buf).unwrap_or_default()
}

/// Parses `YYYY-MM-DD HH:MM:SS` (also with `T` instead of the space, fractional seconds, which are
/// truncated, and a trailing `Z`) into epoch seconds; `None` for anything else, including impossible dates
/// such as `2019-02-30` or `24:00:00`, so a caller can reject the value rather than guess.
pub fn parse_datetime(s: &str) -> Option<EpochSeconds> {
    parse_datetime_bytes(s.as_bytes())
}

/// [`parse_datetime`] on bytes, so the reader needs no UTF-8 check or allocation per field.
pub(crate) fn parse_datetime_bytes(b: &[u8]) -> Option<EpochSeconds> {
    let b = b.trim_ascii();
    if b.len() < 19 {
        return None;
    }
    let (main, rest) = b.split_at(19);
    let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
    if let Some(fraction) = rest.strip_prefix(b".") {
        if fraction.is_empty() || !fraction.iter().all(u8::is_ascii_digit) {
            return None;
        }
    } else if !rest.is_empty() {
        return None;
    }
    let separators_ok = main[4] == b'-'
        && main[7] == b'-'
        && (main[10] == b' ' || main[10] == b'T')
        && main[13] == b':'
        && main[16] == b':';
    if !separators_ok {
        return None;
    }
    let year = digits(&main[0..4])?;
    let month = digits(&main[5..7])?;
    let day = digits(&main[8..10])?;
    let hour = digits(&main[11..13])?;
    let minute = digits(&main[14..16])?;
    let second = digits(&main[17..19])?;
    let valid = (1..=12).contains(&month)
        && day >= 1
        && day <= days_in_month(year, month)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second)
}

/// The value of a run of ASCII digits (at most 4 here, so no overflow).
fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn push_datetime(buf: &mut Vec<u8>, t: EpochSeconds) {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        push_2(buf, year / 100);
        push_2(buf, year % 100);
    } else {
        // Outside four-digit years (never in real data); still valid text, just not fixed-width.
        let _ = write!(buf, "{year:04}");
    }
    buf.push(b'-');
    push_2(buf, month);
    buf.push(b'-');
    push_2(buf, day);
    buf.push(b' ');
    push_2(buf, secs / 3_600);
    buf.push(b':');
    push_2(buf, secs / 60 % 60);
    buf.push(b':');
    push_2(buf, secs % 60);
}

/// Two digits of `v` in `0..100`.
fn push_2(buf: &mut Vec<u8>, v: i64) {
    buf.push(b'0' + (v / 10) as u8);
    buf.push(b'0' + (v % 10) as u8);
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

fn push_i64(buf: &mut Vec<u8>, v: i64) {
    if v < 0 {
        buf.push(b'-');
    }
    push_u64(buf, v.unsigned_abs());
}

/// An amount with exactly two decimals; non-finite or huge values (not produced by the simulator) fall back
/// to Rust's float formatting rather than printing a wrong number.
fn push_cents(buf: &mut Vec<u8>, amount: f64) {
    let cents = (amount * 100.0).round();
    if !cents.is_finite() || cents.abs() >= 9.0e15 {
        let _ = write!(buf, "{amount:.2}");
        return;
    }
    let cents = cents as i64;
    if cents < 0 {
        buf.push(b'-');
    }
    let cents = cents.unsigned_abs();
    push_u64(buf, cents / 100);
    buf.push(b'.');
    let frac = cents % 100;
    buf.push(b'0' + (frac / 10) as u8);
    buf.push(b'0' + (frac % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, NaiveDateTime};
    use rand::{Rng, SeedableRng};

    #[test]
    fn datetime_text_matches_chrono_over_a_wide_range() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20_000 {
            let t: i64 = rng.gen_range(-5_000_000_000..200_000_000_000);
            let expected = DateTime::from_timestamp(t, 0)
                .unwrap()
                .naive_utc()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string();
            assert_eq!(format_datetime(t), expected);
            assert_eq!(parse_datetime(&expected), Some(t), "{expected}");
        }
    }

    #[test]
    fn handbook_dates_parse_to_the_expected_epoch() {
        let t = parse_datetime("2018-04-01 00:00:31").unwrap();
        let chrono =
            NaiveDateTime::parse_from_str("2018-04-01 00:00:31", "%Y-%m-%d %H:%M:%S").unwrap();
        assert_eq!(t, chrono.and_utc().timestamp());
        assert_eq!(parse_datetime("2018-04-01T00:00:31"), Some(t));
        assert_eq!(parse_datetime("2018-04-01 00:00:31.999"), Some(t));
        assert_eq!(parse_datetime(" 2018-04-01 00:00:31Z "), Some(t));
        assert_eq!(
            parse_datetime("2020-02-29 12:00:00")
                .map(format_datetime)
                .as_deref(),
            Some("2020-02-29 12:00:00")
        );
    }

    #[test]
    fn impossible_or_malformed_dates_are_rejected() {
        for bad in [
            "2019-08-22 24:00:00",
            "2019-08-22 23:60:00",
            "2019-08-22 23:59:60",
            "2019-02-29 00:00:00",
            "1900-02-29 00:00:00",
            "2019-13-01 00:00:00",
            "2019-00-01 00:00:00",
            "2019-04-31 00:00:00",
            "2019-08-22",
            "2019-08-22 6:51:03",
            "2019/08/22 06:51:03",
            "2019-08-22 06:51:03.",
            "2019-08-22 06:51:03 extra",
            "2019-08-2a 06:51:03",
            "None",
            "",
        ] {
            assert_eq!(parse_datetime(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn amounts_are_written_with_two_decimals() {
        let cases = [
            (0.0, "0.00"),
            (57.16, "57.16"),
            (0.1 + 0.2, "0.30"),
            (-3.5, "-3.50"),
            (1234567.891, "1234567.89"),
        ];
        for (amount, text) in cases {
            let mut buf = Vec::new();
            push_cents(&mut buf, amount);
            assert_eq!(String::from_utf8(buf).unwrap(), text);
        }
        let mut buf = Vec::new();
        push_cents(&mut buf, f64::NAN);
        assert_eq!(buf, b"NaN");
    }

    #[test]
    fn integers_are_written_in_full() {
        for v in [0, 7, 10, 99, 12_345, u64::MAX] {
            let mut buf = Vec::new();
            push_u64(&mut buf, v);
            assert_eq!(String::from_utf8(buf).unwrap(), v.to_string());
        }
        let mut buf = Vec::new();
        push_i64(&mut buf, i64::MIN);
        assert_eq!(String::from_utf8(buf).unwrap(), i64::MIN.to_string());
    }
}
