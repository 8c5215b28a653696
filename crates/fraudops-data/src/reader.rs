//! Tolerant readers for transaction files as they exist in the wild (SPEC §3.1).
//!
//! Why one file of ~700 lines: every accepted dialect goes through one header mapping and one row parser;
//! ~110 lines are the tests of dirty rows.
//!
//! Accepted:
//! - the handbook's CSV: columns `TRANSACTION_ID, TX_DATETIME, CUSTOMER_ID, TERMINAL_ID, TX_AMOUNT,
//!   TX_TIME_SECONDS, TX_TIME_DAYS, TX_FRAUD, TX_FRAUD_SCENARIO` in any case and any order, optionally the
//!   extension columns `MERCHANT_CATEGORY, USER_AGE, ACCOUNT_BALANCE`, optionally a leading unnamed index
//!   column as pandas' `to_csv` writes; unknown columns are ignored;
//! - the course's variant: a comment header `# tranaction_id | tx_datetime | ...` (with its typo), data rows
//!   separated by `,` or by `|` (detected from the first data row), fields trimmed;
//! - either one gzip-compressed (detected by its magic bytes, whatever the file is called).
//!
//! Required: transaction id, datetime, customer id, terminal id and amount. Without `TX_TIME_SECONDS` the
//! offset is counted from midnight of the first accepted row's date (and `TX_TIME_DAYS` from it); without the
//! label columns every row is genuine (scenario 0).
//!
//! A row that cannot be a valid [`Transaction`] is skipped and counted under a [`SkipReason`], never fatal:
//! course files really contain `Err`/`None` ids, impossible dates, negative and duplicate ids. Only a file
//! that cannot be read at all (I/O, no header, a missing required column) is a [`ReadError`].

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

use csv::ByteRecord;
use flate2::read::MultiGzDecoder;

use crate::writer::parse_datetime_bytes;
use crate::{EpochSeconds, MerchantCategory, Transaction};

/// The longest header or first data line looked at before giving up: a binary file without newlines must
/// not be read whole into memory just to find out it has no header.
const MAX_HEADER_LINE: u64 = 1 << 20;
/// Ids below this are tracked in a bitset (at most 16 MiB); larger ones in a hash set.
const DENSE_ID_LIMIT: u64 = 1 << 27;

/// Transactions read from a file, with the account of what was skipped.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadOutcome {
    /// Accepted rows, in file order.
    pub transactions: Vec<Transaction>,
    /// How many rows were seen, accepted and skipped (by reason), so data quality is visible in logs and
    /// training reports instead of silently lost.
    pub report: ReadReport,
}

/// Counts of what a read did with the file's rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Data rows in the file (the header not included).
    pub rows_seen: u64,
    /// Rows that became transactions.
    pub rows_accepted: u64,
    /// Rows skipped, by reason; reasons that never occurred are absent.
    pub skipped: BTreeMap<SkipReason, u64>,
}

impl ReadReport {
    /// All skipped rows; `rows_seen == rows_accepted + total_skipped()`.
    pub fn total_skipped(&self) -> u64 {
        self.skipped.values().sum()
    }

    /// Rows skipped for `reason` (0 if none), so callers need not handle the absent key.
    pub fn skipped_for(&self, reason: SkipReason) -> u64 {
        self.skipped.get(&reason).copied().unwrap_or(0)
    }

    fn skip(&mut self, reason: SkipReason) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }
}

impl fmt::Display for ReadReport {
    /// A small table for logs and CLI output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .skipped
            .keys()
            .map(|r| r.as_str().len())
            .max()
            .unwrap_or(0)
            .max(13);
        writeln!(f, "{:<width$}  {:>10}", "rows seen", self.rows_seen)?;
        writeln!(f, "{:<width$}  {:>10}", "rows accepted", self.rows_accepted)?;
        write!(
            f,
            "{:<width$}  {:>10}",
            "rows skipped",
            self.total_skipped()
        )?;
        for (reason, count) in &self.skipped {
            write!(
                f,
                "\n  {:<w$}  {:>10}",
                reason.as_str(),
                count,
                w = width - 2
            )?;
        }
        Ok(())
    }
}

/// Why a row was skipped. Ordered as the checks run: a row is counted under the first problem found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The row has a different number of fields than the header.
    WrongFieldCount,
    /// The transaction id is not a number (`Err`, `None`, empty, ...).
    BadTransactionId,
    /// The transaction id is negative.
    NegativeId,
    /// `TX_DATETIME` is not a valid `YYYY-MM-DD HH:MM:SS` date and time.
    BadDatetime,
    /// The customer id is not a non-negative integer.
    BadCustomerId,
    /// The terminal id is not a non-negative integer.
    BadTerminalId,
    /// The amount is not a number, or is NaN, infinite or negative.
    BadAmount,
    /// `TX_TIME_SECONDS` or `TX_TIME_DAYS` is present but not an integer.
    BadTimeOffset,
    /// `TX_FRAUD` is not 0/1 (or true/false), or `TX_FRAUD_SCENARIO` is not 0–3.
    BadLabel,
    /// `MERCHANT_CATEGORY` is neither empty, a known name, nor a known code.
    BadMerchantCategory,
    /// `USER_AGE` is neither empty nor a number in 0–150.
    BadUserAge,
    /// `ACCOUNT_BALANCE` is neither empty nor a finite number.
    BadAccountBalance,
    /// An earlier row had the same transaction id; the first one is kept.
    DuplicateTransactionId,
}

impl SkipReason {
    /// The snake_case name used in reports, logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WrongFieldCount => "wrong_field_count",
            Self::BadTransactionId => "bad_transaction_id",
            Self::NegativeId => "negative_id",
            Self::BadDatetime => "bad_datetime",
            Self::BadCustomerId => "bad_customer_id",
            Self::BadTerminalId => "bad_terminal_id",
            Self::BadAmount => "bad_amount",
            Self::BadTimeOffset => "bad_time_offset",
            Self::BadLabel => "bad_label",
            Self::BadMerchantCategory => "bad_merchant_category",
            Self::BadUserAge => "bad_user_age",
            Self::BadAccountBalance => "bad_account_balance",
            Self::DuplicateTransactionId => "duplicate_transaction_id",
        }
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a file could not be read at all (as opposed to single rows, which are skipped and counted).
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Opening or reading failed (including a corrupt gzip stream).
    #[error("cannot read transactions: {0}")]
    Io(#[from] std::io::Error),
    /// The input has no header line.
    #[error("the file is empty: expected a header line")]
    Empty,
    /// The first line is too long to be a header (or the file is not text).
    #[error("the first line is longer than {MAX_HEADER_LINE} bytes: not a transactions file")]
    HeaderTooLong,
    /// Required columns are not in the header; names them and shows what was found.
    #[error("missing required column(s) {}: the header has {}", .missing.join(", "), .found.join(", "))]
    MissingColumns {
        /// The canonical (handbook) names of the missing columns.
        missing: Vec<&'static str>,
        /// The header's column names as written.
        found: Vec<String>,
    },
}

/// Reads a transactions file, plain or gzip-compressed (detected from its first bytes).
pub fn read_transactions(path: &Path) -> Result<ReadOutcome, ReadError> {
    let mut file = BufReader::with_capacity(1 << 16, File::open(path)?);
    let is_gzip = file.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    if is_gzip {
        read_from(MultiGzDecoder::new(file))
    } else {
        read_from(file)
    }
}

/// Reads transactions from any byte stream (not decompressed: use [`read_transactions`] for files).
pub fn read_from<R: Read>(reader: R) -> Result<ReadOutcome, ReadError> {
    let mut input = BufReader::with_capacity(1 << 16, reader);
    let mut first = Vec::new();
    loop {
        first.clear();
        if read_line(&mut input, &mut first)? == 0 {
            return Err(ReadError::Empty);
        }
        if !first.trim_ascii().is_empty() {
            break;
        }
    }
    let header_text =
        String::from_utf8_lossy(first.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&first)).into_owned();
    let header_text = header_text.trim();

    if let Some(comment) = header_text.strip_prefix('#') {
        // Course format: `# a | b | c`, data rows separated by `,` or `|`.
        let separator = if comment.contains('|') { '|' } else { ',' };
        let names: Vec<String> = comment.split(separator).map(str::to_owned).collect();
        let layout = Layout::from_header(&names)?;
        // The first non-blank data line decides the delimiter (blank lines before it are kept: the CSV
        // parser ignores them).
        let mut second = Vec::new();
        while read_line(&mut input, &mut second)? > 0 && second.trim_ascii().is_empty() {}
        let delimiter = if second.contains(&b'|') { b'|' } else { b',' };
        read_rows(layout, delimiter, Cursor::new(second).chain(input))
    } else {
        let delimiter = detect_delimiter(header_text.as_bytes());
        let mut header_reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(header_text.as_bytes());
        let mut header = csv::StringRecord::new();
        header_reader.read_record(&mut header).map_err(csv_to_io)?;
        let names: Vec<String> = header.iter().map(str::to_owned).collect();
        let layout = Layout::from_header(&names)?;
        read_rows(layout, delimiter, input)
    }
}

/// Reads one line (up to [`MAX_HEADER_LINE`] bytes) including its newline; 0 at end of input.
fn read_line(input: &mut impl BufRead, line: &mut Vec<u8>) -> Result<usize, ReadError> {
    let n = (&mut *input)
        .take(MAX_HEADER_LINE)
        .read_until(b'\n', line)?;
    if n as u64 == MAX_HEADER_LINE && line.last() != Some(&b'\n') {
        return Err(ReadError::HeaderTooLong);
    }
    Ok(n)
}

/// The most frequent of `,`, `;`, `|` and tab in the header line; `,` on a tie or when none occurs.
fn detect_delimiter(header: &[u8]) -> u8 {
    let count = |d: u8| header.iter().filter(|&&c| c == d).count();
    [b',', b';', b'|', b'\t'].into_iter().fold(
        b',',
        |best, d| if count(d) > count(best) { d } else { best },
    )
}

fn csv_to_io(e: csv::Error) -> ReadError {
    match e.into_kind() {
        csv::ErrorKind::Io(e) => ReadError::Io(e),
        other => ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{other:?}"),
        )),
    }
}

/// Where each known column is in a row.
#[derive(Debug)]
struct Layout {
    width: usize,
    id: usize,
    datetime: usize,
    customer: usize,
    terminal: usize,
    amount: usize,
    time_seconds: Option<usize>,
    time_days: Option<usize>,
    fraud: Option<usize>,
    scenario: Option<usize>,
    category: Option<usize>,
    age: Option<usize>,
    balance: Option<usize>,
}

impl Layout {
    fn from_header(names: &[String]) -> Result<Self, ReadError> {
        let normalized: Vec<String> = names
            .iter()
            .map(|n| n.trim().trim_matches('"').trim().to_ascii_lowercase())
            .collect();
        let find = |aliases: &[&str]| {
            normalized
                .iter()
                .position(|n| aliases.contains(&n.as_str()))
        };
        let required = [
            ("TRANSACTION_ID", find(&["transaction_id", "tranaction_id"])),
            ("TX_DATETIME", find(&["tx_datetime"])),
            ("CUSTOMER_ID", find(&["customer_id"])),
            ("TERMINAL_ID", find(&["terminal_id"])),
            ("TX_AMOUNT", find(&["tx_amount"])),
        ];
        let missing: Vec<&'static str> = required
            .iter()
            .filter(|(_, at)| at.is_none())
            .map(|(n, _)| *n)
            .collect();
        let [
            Some(id),
            Some(datetime),
            Some(customer),
            Some(terminal),
            Some(amount),
        ] = required.map(|(_, at)| at)
        else {
            return Err(ReadError::MissingColumns {
                missing,
                found: names.iter().map(|n| n.trim().to_owned()).collect(),
            });
        };
        Ok(Self {
            width: names.len(),
            id,
            datetime,
            customer,
            terminal,
            amount,
            time_seconds: find(&["tx_time_seconds"]),
            time_days: find(&["tx_time_days"]),
            fraud: find(&["tx_fraud"]),
            scenario: find(&["tx_fraud_scenario"]),
            category: find(&["merchant_category"]),
            age: find(&["user_age"]),
            balance: find(&["account_balance"]),
        })
    }
}

/// Remembers which ids were accepted, cheaply for the usual dense ids.
#[derive(Default)]
struct SeenIds {
    dense: Vec<u64>,
    sparse: HashSet<u64>,
}

impl SeenIds {
    /// True if `id` was not seen before (and records it).
    fn insert(&mut self, id: u64) -> bool {
        if id < DENSE_ID_LIMIT {
            let (word, bit) = ((id / 64) as usize, 1u64 << (id % 64));
            if word >= self.dense.len() {
                self.dense.resize((word + 1).next_power_of_two(), 0);
            }
            let fresh = self.dense[word] & bit == 0;
            self.dense[word] |= bit;
            fresh
        } else {
            self.sparse.insert(id)
        }
    }
}

/// The rows of the file as the CSV parser splits them, checked one by one.
fn read_rows(layout: Layout, delimiter: u8, input: impl Read) -> Result<ReadOutcome, ReadError> {
    let mut rows = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .buffer_capacity(1 << 16)
        .from_reader(input);
    let mut record = ByteRecord::new();
    let mut report = ReadReport::default();
    let mut transactions = Vec::new();
    let mut seen = SeenIds::default();
    let mut origin: Option<EpochSeconds> = None;
    while rows.read_byte_record(&mut record).map_err(csv_to_io)? {
        report.rows_seen += 1;
        match parse_row(&layout, &record, &mut origin) {
            Ok(tx) if seen.insert(tx.transaction_id) => {
                report.rows_accepted += 1;
                transactions.push(tx);
            }
            Ok(_) => report.skip(SkipReason::DuplicateTransactionId),
            Err(reason) => report.skip(reason),
        }
    }
    Ok(ReadOutcome {
        transactions,
        report,
    })
}

/// One row as a transaction, or the first reason it cannot be one. `origin` is midnight of the first
/// accepted row's date, the zero of derived time offsets.
fn parse_row(
    layout: &Layout,
    record: &ByteRecord,
    origin: &mut Option<EpochSeconds>,
) -> Result<Transaction, SkipReason> {
    if record.len() != layout.width {
        return Err(SkipReason::WrongFieldCount);
    }
    let field = |i: usize| record.get(i).unwrap_or_default().trim_ascii();
    let optional = |i: Option<usize>| i.map(field).filter(|f| !f.is_empty());

    let transaction_id = match parse_id(field(layout.id)) {
        Id::Ok(id) => id,
        Id::Negative => return Err(SkipReason::NegativeId),
        Id::Bad => return Err(SkipReason::BadTransactionId),
    };
    let tx_datetime =
        parse_datetime_bytes(field(layout.datetime)).ok_or(SkipReason::BadDatetime)?;
    let Id::Ok(customer_id) = parse_id(field(layout.customer)) else {
        return Err(SkipReason::BadCustomerId);
    };
    let Id::Ok(terminal_id) = parse_id(field(layout.terminal)) else {
        return Err(SkipReason::BadTerminalId);
    };
    let tx_amount = parse_f64(field(layout.amount))
        .filter(|a| a.is_finite() && *a >= 0.0)
        .ok_or(SkipReason::BadAmount)?;
    let seconds = layout
        .time_seconds
        .map(|i| parse_i64(field(i)).ok_or(SkipReason::BadTimeOffset))
        .transpose()?;
    let days = layout
        .time_days
        .map(|i| parse_i64(field(i)).ok_or(SkipReason::BadTimeOffset))
        .transpose()?;
    let tx_fraud = match layout.fraud {
        Some(i) => parse_label(field(i)).ok_or(SkipReason::BadLabel)?,
        None => false,
    };
    let tx_fraud_scenario = match layout.scenario {
        Some(i) => match parse_i64(field(i)) {
            Some(s @ 0..=3) => s as u8,
            _ => return Err(SkipReason::BadLabel),
        },
        None => 0,
    };
    let merchant_category = optional(layout.category)
        .map(|f| parse_category(f).ok_or(SkipReason::BadMerchantCategory))
        .transpose()?;
    let user_age = optional(layout.age)
        .map(|f| {
            parse_f64(f)
                .filter(|a| (0.0..=150.0).contains(a))
                .map(|a| a as f32)
                .ok_or(SkipReason::BadUserAge)
        })
        .transpose()?;
    let account_balance = optional(layout.balance)
        .map(|f| {
            parse_f64(f)
                .filter(|b| b.is_finite())
                .ok_or(SkipReason::BadAccountBalance)
        })
        .transpose()?;

    let origin = *origin.get_or_insert(tx_datetime.div_euclid(86_400) * 86_400);
    let tx_time_seconds = seconds.unwrap_or(tx_datetime - origin);
    let tx_time_days = days.unwrap_or(tx_time_seconds.div_euclid(86_400));
    Ok(Transaction {
        transaction_id,
        tx_datetime,
        customer_id,
        terminal_id,
        tx_amount,
        tx_time_seconds,
        tx_time_days,
        tx_fraud,
        tx_fraud_scenario,
        merchant_category,
        user_age,
        account_balance,
    })
}

/// An id field's verdict; negative ids are told apart because the course data has them as a known defect.
enum Id {
    Ok(u64),
    Negative,
    Bad,
}

/// A non-negative integer id; integral floats (`12.0`, as pandas writes ids of a column that had NaNs) are
/// accepted.
fn parse_id(b: &[u8]) -> Id {
    if let Some(v) = parse_u64(b) {
        return Id::Ok(v);
    }
    if b.first() == Some(&b'-') && b.len() > 1 && parse_u64(&b[1..]).is_some() {
        return Id::Negative;
    }
    match parse_f64(b) {
        Some(v) if v.fract() == 0.0 && v < 0.0 => Id::Negative,
        Some(v) if v.fract() == 0.0 && (0.0..9.0e15).contains(&v) => Id::Ok(v as u64),
        _ => Id::Bad,
    }
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 {
        return None;
    }
    b.iter().try_fold(0u64, |acc, &c| {
        if c.is_ascii_digit() {
            acc.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        } else {
            None
        }
    })
}

/// An integer, also written as an integral float (`24663.0`).
fn parse_i64(b: &[u8]) -> Option<i64> {
    let (negative, digits) = match b.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    if let Some(v) = parse_u64(digits).and_then(|v| i64::try_from(v).ok()) {
        return Some(if negative { -v } else { v });
    }
    parse_f64(b)
        .filter(|v| v.fract() == 0.0 && v.abs() < 9.0e15)
        .map(|v| v as i64)
}

/// A float; plain decimals with at most 2 fraction digits (every amount in practice) take a fast path.
///
/// The fast path is exact: `k / 100` of an integer `k < 2^53` is a correctly rounded division, the same
/// nearest double the full parser finds for the text.
fn parse_f64(b: &[u8]) -> Option<f64> {
    let (negative, unsigned) = match b.strip_prefix(b"-") {
        Some(rest) => (true, rest),
        None => (false, b),
    };
    let (int, frac) = match unsigned.iter().position(|&c| c == b'.') {
        Some(dot) => (&unsigned[..dot], Some(&unsigned[dot + 1..])),
        None => (unsigned, None),
    };
    let simple = !int.is_empty()
        && int.len() <= 15
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| (1..=2).contains(&f.len()) && f.iter().all(u8::is_ascii_digit));
    if !simple {
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    let mut scaled = int
        .iter()
        .fold(0u64, |acc, &c| acc * 10 + u64::from(c - b'0'));
    let frac = frac.unwrap_or_default();
    for &c in frac {
        scaled = scaled * 10 + u64::from(c - b'0');
    }
    let value = match frac.len() {
        0 => scaled as f64,
        1 => scaled as f64 / 10.0,
        _ => scaled as f64 / 100.0,
    };
    Some(if negative { -value } else { value })
}

fn parse_label(b: &[u8]) -> Option<bool> {
    match b {
        b"0" | b"0.0" => Some(false),
        b"1" | b"1.0" => Some(true),
        _ if b.eq_ignore_ascii_case(b"false") => Some(false),
        _ if b.eq_ignore_ascii_case(b"true") => Some(true),
        _ => None,
    }
}

/// A category by name (any case) or by numeric code.
fn parse_category(b: &[u8]) -> Option<MerchantCategory> {
    let text = std::str::from_utf8(b).ok()?;
    text.parse().ok().or_else(|| {
        text.parse::<u8>()
            .ok()
            .and_then(MerchantCategory::from_code)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_classified() {
        assert!(matches!(parse_id(b"42"), Id::Ok(42)));
        assert!(matches!(parse_id(b"42.0"), Id::Ok(42)));
        assert!(matches!(parse_id(b"-3"), Id::Negative));
        assert!(matches!(parse_id(b"-3.0"), Id::Negative));
        for bad in [
            &b"Err"[..],
            b"None",
            b"",
            b"nan",
            b"1.5",
            b"-",
            b"99999999999999999999999",
            b"inf",
        ] {
            assert!(
                matches!(parse_id(bad), Id::Bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn fast_float_path_agrees_with_the_standard_parser() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut texts: Vec<String> = (0..50_000)
            .map(|_| {
                let cents: u64 = rng.gen_range(0..10_000_000_000);
                match rng.gen_range(0..4) {
                    0 => format!("{}.{:02}", cents / 100, cents % 100),
                    1 => format!("-{}.{}", cents / 100, cents % 10),
                    2 => format!("{cents}"),
                    _ => format!("{}.{:02}", cents / 100_000, cents % 100),
                }
            })
            .collect();
        texts.extend(
            [
                "0.1",
                "0.01",
                "999999999999999.99",
                "1e3",
                ".5",
                "5.",
                "1.234",
                "-",
                "",
                "+1",
                "NaN",
                "--1",
            ]
            .map(String::from),
        );
        for text in texts {
            assert_eq!(
                parse_f64(text.as_bytes()).map(f64::to_bits),
                text.parse::<f64>().ok().map(f64::to_bits),
                "{text:?}"
            );
        }
    }

    #[test]
    fn delimiter_is_the_most_frequent_separator() {
        assert_eq!(detect_delimiter(b"a,b,c"), b',');
        assert_eq!(detect_delimiter(b"a;b;c"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"abc"), b',');
    }

    #[test]
    fn seen_ids_handle_dense_and_sparse_ids() {
        let mut seen = SeenIds::default();
        assert!(seen.insert(0));
        assert!(seen.insert(1_000_000));
        assert!(seen.insert(u64::MAX));
        assert!(!seen.insert(0));
        assert!(!seen.insert(1_000_000));
        assert!(!seen.insert(u64::MAX));
    }

    #[test]
    fn report_table_lists_every_reason() {
        let mut report = ReadReport {
            rows_seen: 10,
            rows_accepted: 7,
            ..ReadReport::default()
        };
        report.skip(SkipReason::BadDatetime);
        report.skip(SkipReason::DuplicateTransactionId);
        report.skip(SkipReason::DuplicateTransactionId);
        let text = report.to_string();
        assert!(text.contains("rows seen"), "{text}");
        assert!(text.contains("bad_datetime"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("duplicate_transaction_id") && l.trim_end().ends_with('2'))
        );
        assert_eq!(report.total_skipped(), 3);
    }
}
