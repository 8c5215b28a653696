//! Reading the lake back: a training window's transactions with the labels known at a cutoff, and row
//! counts for audits.
//!
//! The readers go through the same object store as the archive and read only the days asked for
//! (`<table>/dt=<day>/`), so a window of a long history costs the window, not the history.
//!
//! A training window leaves synthetic traffic out unless asked ([`Synthetic`]): an attack or a drill
//! sends made-up transactions and labels through the same topics, and a model retrained on a window that
//! spans one would learn the attack.

use std::collections::HashMap;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Float32Type, Float64Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use arrow_array::{Array, ArrayRef, BooleanArray, RecordBatch};
use chrono::NaiveDate;
use fraudops_data::{EpochSeconds, MerchantCategory, Transaction};

use crate::error::LakeError;
use crate::files::{day_dir, decode};
use crate::location::Lake;
use crate::table::{SYNTHETIC, Table};

const MICROS: i64 = 1_000_000;

/// The latest label of a transaction known at the cutoff.
#[derive(Debug, Clone, Copy)]
struct Known {
    /// `labelled_at`, seconds.
    at: EpochSeconds,
    /// Its Kafka offset (the tie-break: same partition, as labels are keyed by terminal).
    offset: i64,
    fraud: bool,
    /// Labels of the transaction known at the cutoff (more than one: a reversal).
    count: usize,
}

/// Which labels exist for a read: those known at or before `as_of` (event time, the transactions'
/// clock); `None`: every label archived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelCutoff {
    /// The cutoff, seconds since the epoch on the transactions' clock.
    pub as_of: Option<EpochSeconds>,
}

/// Whether a window keeps the traffic marked synthetic (the `synthetic` column of `transactions` and
/// `labels`: an attack's, a drill's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synthetic {
    /// Synthetic transactions and synthetic labels are left out (counted in the [`Window`]). The default:
    /// a model is trained on real traffic, and synthetic ids may even repeat real ones.
    #[default]
    Exclude,
    /// Kept as any other traffic: for a drill that trains on its own traffic.
    Include,
}

/// A window read from the lake, ready for the training pipeline.
#[derive(Debug, Clone, Default)]
pub struct Window {
    /// The transactions, in processing order (event time, then transaction id), each with its label as
    /// known at the cutoff (`tx_fraud: false` when no chargeback was known: a transaction is genuine
    /// until a fraud label says otherwise).
    pub transactions: Vec<Transaction>,
    /// Files read.
    pub files: usize,
    /// Transactions labelled (fraud or genuine) at the cutoff.
    pub labelled: usize,
    /// Transactions with no label known at the cutoff.
    pub unlabelled: usize,
    /// Labels that arrived after the cutoff (ignored).
    pub labels_after_cutoff: usize,
    /// Labels whose latest value reversed an earlier one.
    pub labels_reversed: usize,
    /// Second copies of a transaction id (a producer's retry), dropped as the CSV readers drop them.
    pub duplicates: usize,
    /// Synthetic transactions of the days read, left out ([`Synthetic::Exclude`]).
    pub synthetic_left_out: usize,
    /// Synthetic labels of the days read, left out ([`Synthetic::Exclude`]).
    pub synthetic_labels_left_out: usize,
    /// Synthetic transactions in [`Window::transactions`] ([`Synthetic::Include`]).
    pub synthetic_kept: usize,
}

/// Reads the transactions of days `first..end` (end exclusive) and joins each with its latest label
/// known at `cutoff` (a reversed label counts as its latest value; ties by offset). Synthetic
/// transactions and labels are left out before anything else (so a synthetic copy of a real id never
/// hides the real one) unless `synthetic` keeps them.
pub async fn read_window(
    lake: &Lake,
    first: NaiveDate,
    end: NaiveDate,
    cutoff: LabelCutoff,
    synthetic: Synthetic,
) -> Result<Window, LakeError> {
    let keep_synthetic = synthetic == Synthetic::Include;
    let mut window = Window::default();
    // Labels first: per transaction id, the latest label known at the cutoff and how many there were.
    let mut labels: HashMap<i64, Known> = HashMap::new();
    for batch in read_days(lake, Table::Labels, first, end, &mut window.files).await? {
        let id = column(&batch, "transaction_id")?.as_primitive::<Int64Type>();
        let fraud = column(&batch, "tx_fraud")?.as_boolean();
        let labelled_at = column(&batch, "labelled_at")?.as_primitive::<TimestampMicrosecondType>();
        let offset = column(&batch, "kafka_offset")?.as_primitive::<Int64Type>();
        let marked = column(&batch, SYNTHETIC)?.as_boolean();
        for i in 0..batch.num_rows() {
            if !keep_synthetic && is_true(marked, i) {
                window.synthetic_labels_left_out += 1;
                continue;
            }
            let at = labelled_at.value(i).div_euclid(MICROS);
            if cutoff.as_of.is_some_and(|cut| at > cut) {
                window.labels_after_cutoff += 1;
                continue;
            }
            let label = Known {
                at,
                offset: offset.value(i),
                fraud: fraud.value(i),
                count: 1,
            };
            labels
                .entry(id.value(i))
                .and_modify(|best| {
                    let count = best.count + 1;
                    if (label.at, label.offset) > (best.at, best.offset) {
                        *best = label;
                    }
                    best.count = count;
                })
                .or_insert(label);
        }
    }
    window.labels_reversed = labels.values().filter(|l| l.count > 1).count();

    let mut rows: Vec<(Transaction, bool, i32, i64)> = Vec::new();
    for batch in read_days(lake, Table::Transactions, first, end, &mut window.files).await? {
        let get = |name: &str| column(&batch, name);
        let id = get("transaction_id")?.as_primitive::<Int64Type>();
        let time = get("tx_datetime")?.as_primitive::<TimestampMicrosecondType>();
        let customer = get("customer_id")?.as_primitive::<Int64Type>();
        let terminal = get("terminal_id")?.as_primitive::<Int64Type>();
        let amount = get("tx_amount")?.as_primitive::<Float64Type>();
        let category = get("merchant_category")?.as_string::<i32>();
        let age = get("user_age")?.as_primitive::<Float32Type>();
        let balance = get("account_balance")?.as_primitive::<Float64Type>();
        let partition = get("kafka_partition")?.as_primitive::<Int32Type>();
        let offset = get("kafka_offset")?.as_primitive::<Int64Type>();
        let marked = get(SYNTHETIC)?.as_boolean();
        for i in 0..batch.num_rows() {
            let is_synthetic = is_true(marked, i);
            if is_synthetic && !keep_synthetic {
                window.synthetic_left_out += 1;
                continue;
            }
            let tx_datetime = time.value(i).div_euclid(MICROS);
            rows.push((
                Transaction {
                    transaction_id: id.value(i) as u64,
                    tx_datetime,
                    customer_id: customer.value(i) as u64,
                    terminal_id: terminal.value(i) as u64,
                    tx_amount: amount.value(i),
                    tx_time_seconds: 0,
                    tx_time_days: 0,
                    tx_fraud: false,
                    tx_fraud_scenario: 0,
                    merchant_category: (!category.is_null(i))
                        .then(|| category.value(i).parse::<MerchantCategory>().ok())
                        .flatten(),
                    user_age: (!age.is_null(i)).then(|| age.value(i)),
                    account_balance: (!balance.is_null(i)).then(|| balance.value(i)),
                },
                is_synthetic,
                partition.value(i),
                offset.value(i),
            ));
        }
    }
    // Processing order (event time, then id); the first copy of an id (by partition and offset) wins.
    rows.sort_by_key(|(tx, _, partition, offset)| {
        (tx.tx_datetime, tx.transaction_id, *partition, *offset)
    });
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    let start = first
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp())
        .unwrap_or(0);
    window.transactions.reserve(rows.len());
    for (mut tx, is_synthetic, _, _) in rows {
        if !seen.insert(tx.transaction_id) {
            window.duplicates += 1;
            continue;
        }
        window.synthetic_kept += usize::from(is_synthetic);
        match labels.get(&(tx.transaction_id as i64)) {
            Some(known) => {
                tx.tx_fraud = known.fraud;
                window.labelled += 1;
            }
            None => window.unlabelled += 1,
        }
        tx.tx_time_seconds = tx.tx_datetime - start;
        tx.tx_time_days = tx.tx_time_seconds.div_euclid(86_400);
        window.transactions.push(tx);
    }
    Ok(window)
}

/// Rows of `table` in the whole lake (every day), with the files they are in: what an audit compares
/// with what went in.
pub async fn count_rows(lake: &Lake, table: Table) -> Result<(u64, usize), LakeError> {
    use parquet::file::reader::FileReader;
    let files = read_folder(lake, table.name()).await?;
    let mut rows = 0u64;
    for (_, bytes) in &files {
        let reader = parquet::file::serialized_reader::SerializedFileReader::new(bytes.clone())?;
        rows += reader.metadata().file_metadata().num_rows() as u64;
    }
    Ok((rows, files.len()))
}

/// The record batches of `table` for days `first..end`.
async fn read_days(
    lake: &Lake,
    table: Table,
    first: NaiveDate,
    end: NaiveDate,
    files: &mut usize,
) -> Result<Vec<RecordBatch>, LakeError> {
    let mut batches = Vec::new();
    let mut day = first;
    while day < end {
        for (path, bytes) in read_folder(lake, &day_dir(table, day)).await? {
            batches.extend(decode(table, &path, bytes)?);
            *files += 1;
        }
        day = day.succ_opt().unwrap_or(end);
    }
    Ok(batches)
}

/// How often a folder is listed again when a listed file vanished before it was read.
const LISTINGS: usize = 5;

/// Every Parquet file under `prefix` with its bytes. A compaction can delete a listed file (merged into
/// one the listing predates) before it is read; the folder is then listed and read again, so a read never
/// fails, nor misses the merged rows, because of a compaction running beside it.
async fn read_folder(lake: &Lake, prefix: &str) -> Result<Vec<(String, bytes::Bytes)>, LakeError> {
    'listing: for _ in 0..LISTINGS {
        let mut files = Vec::new();
        for object in lake.list(prefix).await? {
            let path = object.location.to_string();
            if !path.ends_with(".parquet") {
                continue;
            }
            match lake.get_path(&object.location).await? {
                Some(bytes) => files.push((path, bytes)),
                None => continue 'listing,
            }
        }
        return Ok(files);
    }
    Err(LakeError::Unsettled {
        prefix: prefix.to_owned(),
        attempts: LISTINGS,
    })
}

/// The flag at row `i` (a null, which our files never hold, counts as real, as a file without the column).
fn is_true(flags: &BooleanArray, i: usize) -> bool {
    flags.is_valid(i) && flags.value(i)
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, LakeError> {
    batch.column_by_name(name).ok_or_else(|| missing(name))
}

fn missing(name: &str) -> LakeError {
    LakeError::Schema {
        path: "(batch)".into(),
        reason: format!("column {name} missing"),
    }
}
