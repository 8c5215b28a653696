//! The lake's three tables: their Arrow schemas, one typed row per Kafka event, and the column builders
//! a file is encoded from.
//!
//! Columns use the handbook's names (`transaction_id`, `tx_datetime`, `tx_amount`, …) so the files read
//! like the data every fraud notebook starts from. Event times are naive timestamps (the data has no
//! time zone, as in the handbook), wall-clock instants (`prediction_time`, `kafka_timestamp`) are UTC;
//! ids are 64-bit signed integers, the type Spark, DuckDB and pandas all read without a cast (an id above
//! `i64::MAX` is refused, never wrapped). Every row keeps where it came from (`kafka_partition`,
//! `kafka_offset`), so a reader can audit that each event landed once.
//!
//! `transactions` and `labels` end with `synthetic`: the event's own flag (an attack's or a drill's traffic),
//! so a training window can leave that traffic out. It came after the first files were written; a file
//! without it is read as all real ([`SYNTHETIC`], `files::decode`).

use std::sync::{Arc, LazyLock};

use arrow_array::builder::{
    BooleanBuilder, Float32Builder, Float64Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use chrono::NaiveDate;
use fraudops_data::writer::parse_datetime;
use fraudops_data::{EpochSeconds, MerchantCategory};
use fraudops_wire::{LabelEvent, PredictionEvent, TransactionEvent, TransactionId};

use crate::error::LakeError;

/// Seconds per day: the partitioning unit.
const DAY: i64 = 86_400;
const MICROS: i64 = 1_000_000;

/// The column that marks synthetic traffic (an attack, a drill, a test) in `transactions` and `labels`.
/// Added after the lake's first files; it comes last, so an older file's columns are a prefix of the
/// table's. A file without it is read as real traffic: the flag was not recorded then, so there is
/// nothing to tell its rows apart by, and failing would make the whole history before it unreadable.
pub const SYNTHETIC: &str = "synthetic";

/// One of the lake's tables, each fed by one topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Everything scored: `transactions-input`.
    Transactions,
    /// Every answer: `fraud-predictions`.
    Predictions,
    /// Every confirmed outcome: `fraud-labels`.
    Labels,
}

impl Table {
    /// Whether the table's rows carry the [`SYNTHETIC`] flag (predictions do not: the prediction event
    /// does not say whether its transaction was synthetic).
    pub(crate) fn has_synthetic(self) -> bool {
        matches!(self, Self::Transactions | Self::Labels)
    }

    /// The value a column added to the table later has in a file written before it, `rows` times, or
    /// `None` when `name` is not such a column (then a file without it is not one of ours). Only
    /// [`SYNTHETIC`] so far, `false`: older files are taken as real traffic.
    pub(crate) fn default_column(self, name: &str, rows: usize) -> Option<ArrayRef> {
        (self.has_synthetic() && name == SYNTHETIC)
            .then(|| Arc::new(BooleanArray::from(vec![false; rows])) as ArrayRef)
    }

    /// All tables, in the order the docs list them.
    pub const ALL: [Table; 3] = [Table::Transactions, Table::Predictions, Table::Labels];

    /// The table's folder under the lake root (and its metric label).
    pub fn name(self) -> &'static str {
        match self {
            Self::Transactions => "transactions",
            Self::Predictions => "predictions",
            Self::Labels => "labels",
        }
    }

    /// The columns every file of the table has, in order.
    pub fn schema(self) -> SchemaRef {
        static TRANSACTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
            schema(vec![
                Field::new("transaction_id", DataType::Int64, false),
                Field::new("tx_datetime", naive_time(), false),
                Field::new("customer_id", DataType::Int64, false),
                Field::new("terminal_id", DataType::Int64, false),
                Field::new("tx_amount", DataType::Float64, false),
                Field::new("merchant_category", DataType::Utf8, true),
                Field::new("user_age", DataType::Float32, true),
                Field::new("account_balance", DataType::Float64, true),
            ])
            .with_synthetic()
        });
        static PREDICTIONS: LazyLock<SchemaRef> = LazyLock::new(|| {
            schema(vec![
                Field::new("transaction_id", DataType::Int64, false),
                Field::new("customer_id", DataType::Int64, false),
                Field::new("tx_datetime", naive_time(), true),
                Field::new("fraud_probability", DataType::Float64, false),
                Field::new("is_fraud", DataType::Boolean, false),
                Field::new("confidence", DataType::Float64, false),
                Field::new("model_version", DataType::Utf8, false),
                Field::new("prediction_time", utc_time(), false),
                Field::new("processing_time_ms", DataType::Float64, false),
                Field::new("replica_id", DataType::Utf8, false),
                Field::new("scored_by", DataType::Utf8, false),
                Field::new("source_partition", DataType::Int32, false),
                Field::new("source_offset", DataType::Int64, false),
            ])
            .finish()
        });
        static LABELS: LazyLock<SchemaRef> = LazyLock::new(|| {
            schema(vec![
                Field::new("transaction_id", DataType::Int64, false),
                Field::new("customer_id", DataType::Int64, false),
                Field::new("terminal_id", DataType::Int64, false),
                Field::new("tx_datetime", naive_time(), false),
                Field::new("tx_fraud", DataType::Boolean, false),
                Field::new("labelled_at", naive_time(), false),
            ])
            .with_synthetic()
        });
        match self {
            Self::Transactions => TRANSACTIONS.clone(),
            Self::Predictions => PREDICTIONS.clone(),
            Self::Labels => LABELS.clone(),
        }
    }
}

impl std::fmt::Display for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn naive_time() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, None)
}

fn utc_time() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A table's own columns plus the provenance every table shares.
fn schema(mut fields: Vec<Field>) -> Columnar {
    fields.extend([
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
        Field::new("kafka_timestamp", utc_time(), true),
    ]);
    Columnar(fields)
}

/// A table's columns being listed: provenance included, the columns added later still to come.
struct Columnar(Vec<Field>);

impl Columnar {
    /// Adds [`SYNTHETIC`] last (after the provenance: files written before it keep a prefix of the
    /// columns) and makes the schema.
    fn with_synthetic(mut self) -> SchemaRef {
        self.0.push(Field::new(SYNTHETIC, DataType::Boolean, false));
        self.finish()
    }

    fn finish(self) -> SchemaRef {
        Arc::new(Schema::new(self.0))
    }
}

/// Where a Kafka record came from: kept with its row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    /// Partition of the topic.
    pub partition: i32,
    /// Offset in the partition.
    pub offset: i64,
    /// The record's timestamp (milliseconds since the epoch), when the broker gave one.
    pub timestamp_ms: Option<i64>,
}

/// One row of `transactions`.
#[derive(Debug, Clone, PartialEq)]
pub struct TransactionRow {
    /// The transaction.
    pub transaction_id: i64,
    /// Event time.
    pub tx_datetime: EpochSeconds,
    /// The card.
    pub customer_id: i64,
    /// The terminal.
    pub terminal_id: i64,
    /// The amount.
    pub tx_amount: f64,
    /// Extension: the merchant category, canonical spelling.
    pub merchant_category: Option<&'static str>,
    /// Extension: the card holder's age.
    pub user_age: Option<f32>,
    /// Extension: the account balance.
    pub account_balance: Option<f64>,
    /// The event was marked synthetic (an attack, a drill): kept, but left out of training windows
    /// unless asked for.
    pub synthetic: bool,
}

/// One row of `labels`.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelRow {
    /// The labelled transaction.
    pub transaction_id: i64,
    /// Its card.
    pub customer_id: i64,
    /// Its terminal.
    pub terminal_id: i64,
    /// Its event time (the row's partition day).
    pub tx_datetime: EpochSeconds,
    /// The outcome.
    pub tx_fraud: bool,
    /// When the outcome became known, on the transactions' clock: training as of a time ignores labels
    /// known later.
    pub labelled_at: EpochSeconds,
    /// The label of a synthetic transaction (the label event's own flag): left out of training windows
    /// with its transaction.
    pub synthetic: bool,
}

/// One row of `predictions`.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictionRow {
    /// The scored transaction.
    pub transaction_id: i64,
    /// Its card.
    pub customer_id: i64,
    /// Its event time, when the prediction carries it.
    pub tx_datetime: Option<EpochSeconds>,
    /// The score.
    pub fraud_probability: f64,
    /// The decision.
    pub is_fraud: bool,
    /// The decision's confidence.
    pub confidence: f64,
    /// The model that answered.
    pub model_version: String,
    /// When it answered (UTC, microseconds since the epoch).
    pub prediction_time_us: i64,
    /// Time spent in the API.
    pub processing_time_ms: f64,
    /// The replica that answered.
    pub replica_id: String,
    /// `api` or `in-process`.
    pub scored_by: &'static str,
    /// The input event's partition.
    pub source_partition: i32,
    /// The input event's offset.
    pub source_offset: i64,
}

/// A parsed event: its table's row.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    /// A transaction.
    Transaction(TransactionRow),
    /// A prediction.
    Prediction(PredictionRow),
    /// A label.
    Label(LabelRow),
}

impl Row {
    /// The table the row belongs to.
    pub fn table(&self) -> Table {
        match self {
            Self::Transaction(_) => Table::Transactions,
            Self::Prediction(_) => Table::Predictions,
            Self::Label(_) => Table::Labels,
        }
    }

    /// The event day the row is partitioned by: the transaction's day (for a label, the labelled
    /// transaction's, so a window's labels sit in the window's folders); for a prediction without its
    /// transaction's time, the UTC day it was made.
    pub fn day(&self) -> NaiveDate {
        let seconds = match self {
            Self::Transaction(r) => r.tx_datetime,
            Self::Label(r) => r.tx_datetime,
            Self::Prediction(r) => r
                .tx_datetime
                .unwrap_or(r.prediction_time_us.div_euclid(MICROS)),
        };
        day_of(seconds)
    }

    /// A rough size in memory and on the wire, for the flush-by-bytes rule.
    pub fn approx_bytes(&self) -> usize {
        match self {
            Self::Transaction(_) => 72,
            Self::Label(_) => 56,
            Self::Prediction(r) => 96 + r.model_version.len() + r.replica_id.len(),
        }
    }
}

/// The calendar day of an event time.
pub fn day_of(seconds: EpochSeconds) -> NaiveDate {
    let days = seconds.div_euclid(DAY);
    NaiveDate::from_ymd_opt(1970, 1, 1)
        .and_then(|epoch| epoch.checked_add_signed(chrono::TimeDelta::days(days)))
        .unwrap_or(NaiveDate::MIN)
}

/// An id the lake can store as a signed 64-bit integer.
fn integer_id(field: &str, id: &TransactionId) -> Result<i64, String> {
    match id {
        TransactionId::Number(n) => signed(field, *n),
        TransactionId::Text(text) => Err(format!(
            "{field} {text:?}: the lake keys transactions by integer id"
        )),
    }
}

fn signed(field: &str, value: u64) -> Result<i64, String> {
    i64::try_from(value)
        .map_err(|_| format!("{field} {value} is above the largest 64-bit signed id"))
}

fn event_time(field: &str, text: &str) -> Result<EpochSeconds, String> {
    parse_datetime(text).ok_or_else(|| format!("{field} {text:?} is not YYYY-MM-DD HH:MM:SS"))
}

/// Parses one record of `table`'s topic into its row, or says why it cannot be archived (the reason a
/// dead letter carries).
pub fn parse(table: Table, payload: &[u8], timestamp_ms: Option<i64>) -> Result<Row, String> {
    match table {
        Table::Transactions => parse_transaction(payload).map(Row::Transaction),
        Table::Predictions => parse_prediction(payload).map(Row::Prediction),
        Table::Labels => parse_label(payload, timestamp_ms).map(Row::Label),
    }
}

fn parse_transaction(payload: &[u8]) -> Result<TransactionRow, String> {
    let event: TransactionEvent = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let r = event.request;
    let transaction_id = integer_id("transaction_id", &r.transaction_id)?;
    let customer_id = signed(
        "customer_id",
        r.customer_id
            .ok_or("customer_id is missing: the lake keys history by card")?,
    )?;
    let terminal_id = signed(
        "terminal_id",
        r.terminal_id
            .ok_or("terminal_id is missing: the lake keys history by terminal")?,
    )?;
    let tx_datetime = event_time(
        "tx_datetime",
        r.tx_datetime
            .as_deref()
            .ok_or("tx_datetime is missing: the lake partitions by event day")?,
    )?;
    if !(r.amount.is_finite() && r.amount >= 0.0) {
        return Err(format!("amount {} must be a non-negative number", r.amount));
    }
    let merchant_category = match r.merchant_category.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<MerchantCategory>()
                .map_err(|e| format!("merchant_category: {e}"))?
                .as_str(),
        ),
    };
    Ok(TransactionRow {
        transaction_id,
        tx_datetime,
        customer_id,
        terminal_id,
        tx_amount: r.amount,
        merchant_category,
        user_age: r.user_age,
        account_balance: r.account_balance,
        synthetic: r.synthetic,
    })
}

fn parse_label(payload: &[u8], timestamp_ms: Option<i64>) -> Result<LabelRow, String> {
    let event: LabelEvent = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let tx_datetime = event_time("tx_datetime", &event.tx_datetime)?;
    let labelled_at = match (&event.labelled_at, timestamp_ms) {
        (Some(text), _) => event_time("labelled_at", text)?,
        // No event-time stamp: the outcome became known when it was written to the topic.
        (None, Some(ms)) => ms.div_euclid(1000),
        (None, None) => {
            return Err("labelled_at is missing and the record has no timestamp".into());
        }
    };
    Ok(LabelRow {
        transaction_id: integer_id("transaction_id", &event.transaction_id)?,
        customer_id: signed("customer_id", event.customer_id)?,
        terminal_id: signed("terminal_id", event.terminal_id)?,
        tx_datetime,
        tx_fraud: event.tx_fraud,
        labelled_at,
        synthetic: event.synthetic,
    })
}

fn parse_prediction(payload: &[u8]) -> Result<PredictionRow, String> {
    let event: PredictionEvent = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let p = event.prediction;
    let prediction_time = chrono::DateTime::parse_from_rfc3339(&p.prediction_time)
        .map_err(|e| format!("prediction_time {:?}: {e}", p.prediction_time))?;
    let tx_datetime = match event.tx_datetime.as_deref() {
        Some(text) => Some(event_time("tx_datetime", text)?),
        None => None,
    };
    Ok(PredictionRow {
        transaction_id: integer_id("transaction_id", &p.transaction_id)?,
        customer_id: signed("customer_id", event.customer_id)?,
        tx_datetime,
        fraud_probability: p.fraud_probability,
        is_fraud: p.is_fraud,
        confidence: p.confidence,
        model_version: p.model_version,
        prediction_time_us: prediction_time.timestamp_micros(),
        processing_time_ms: p.processing_time_ms,
        replica_id: p.replica_id,
        scored_by: event.scored_by.as_str(),
        source_partition: event.source_partition,
        source_offset: event.source_offset,
    })
}

/// The columns of one file being filled, one builder per column.
pub struct Columns {
    table: Table,
    builders: Builders,
    partition: Int32Builder,
    offset: Int64Builder,
    timestamp: TimestampMicrosecondBuilder,
    rows: usize,
    bytes: usize,
}

// One value per open file, never moved in a hot loop: boxing the larger variant would only add an indirection.
#[allow(clippy::large_enum_variant)]
enum Builders {
    Transactions {
        id: Int64Builder,
        time: TimestampMicrosecondBuilder,
        customer: Int64Builder,
        terminal: Int64Builder,
        amount: Float64Builder,
        category: StringBuilder,
        age: Float32Builder,
        balance: Float64Builder,
        synthetic: BooleanBuilder,
    },
    Predictions {
        id: Int64Builder,
        customer: Int64Builder,
        time: TimestampMicrosecondBuilder,
        probability: Float64Builder,
        is_fraud: BooleanBuilder,
        confidence: Float64Builder,
        model_version: StringBuilder,
        prediction_time: TimestampMicrosecondBuilder,
        processing_ms: Float64Builder,
        replica: StringBuilder,
        scored_by: StringBuilder,
        source_partition: Int32Builder,
        source_offset: Int64Builder,
    },
    Labels {
        id: Int64Builder,
        customer: Int64Builder,
        terminal: Int64Builder,
        time: TimestampMicrosecondBuilder,
        fraud: BooleanBuilder,
        labelled_at: TimestampMicrosecondBuilder,
        synthetic: BooleanBuilder,
    },
}

impl Columns {
    /// Empty columns for `table`.
    pub fn new(table: Table) -> Self {
        let builders = match table {
            Table::Transactions => Builders::Transactions {
                id: Int64Builder::new(),
                time: TimestampMicrosecondBuilder::new(),
                customer: Int64Builder::new(),
                terminal: Int64Builder::new(),
                amount: Float64Builder::new(),
                category: StringBuilder::new(),
                age: Float32Builder::new(),
                balance: Float64Builder::new(),
                synthetic: BooleanBuilder::new(),
            },
            Table::Predictions => Builders::Predictions {
                id: Int64Builder::new(),
                customer: Int64Builder::new(),
                time: TimestampMicrosecondBuilder::new(),
                probability: Float64Builder::new(),
                is_fraud: BooleanBuilder::new(),
                confidence: Float64Builder::new(),
                model_version: StringBuilder::new(),
                prediction_time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
                processing_ms: Float64Builder::new(),
                replica: StringBuilder::new(),
                scored_by: StringBuilder::new(),
                source_partition: Int32Builder::new(),
                source_offset: Int64Builder::new(),
            },
            Table::Labels => Builders::Labels {
                id: Int64Builder::new(),
                customer: Int64Builder::new(),
                terminal: Int64Builder::new(),
                time: TimestampMicrosecondBuilder::new(),
                fraud: BooleanBuilder::new(),
                labelled_at: TimestampMicrosecondBuilder::new(),
                synthetic: BooleanBuilder::new(),
            },
        };
        Self {
            table,
            builders,
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            timestamp: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            rows: 0,
            bytes: 0,
        }
    }

    /// The table these columns belong to.
    pub fn table(&self) -> Table {
        self.table
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Approximate bytes so far.
    pub fn approx_bytes(&self) -> usize {
        self.bytes
    }

    /// Appends a row of this table.
    ///
    /// # Panics
    /// If `row` belongs to another table (a caller bug: rows are routed by their table).
    pub fn push(&mut self, row: &Row, from: Provenance) {
        self.bytes += row.approx_bytes();
        match (&mut self.builders, row) {
            (
                Builders::Transactions {
                    id,
                    time,
                    customer,
                    terminal,
                    amount,
                    category,
                    age,
                    balance,
                    synthetic,
                },
                Row::Transaction(r),
            ) => {
                id.append_value(r.transaction_id);
                time.append_value(r.tx_datetime * MICROS);
                customer.append_value(r.customer_id);
                terminal.append_value(r.terminal_id);
                amount.append_value(r.tx_amount);
                category.append_option(r.merchant_category);
                age.append_option(r.user_age);
                balance.append_option(r.account_balance);
                synthetic.append_value(r.synthetic);
            }
            (
                Builders::Predictions {
                    id,
                    customer,
                    time,
                    probability,
                    is_fraud,
                    confidence,
                    model_version,
                    prediction_time,
                    processing_ms,
                    replica,
                    scored_by,
                    source_partition,
                    source_offset,
                },
                Row::Prediction(r),
            ) => {
                id.append_value(r.transaction_id);
                customer.append_value(r.customer_id);
                time.append_option(r.tx_datetime.map(|t| t * MICROS));
                probability.append_value(r.fraud_probability);
                is_fraud.append_value(r.is_fraud);
                confidence.append_value(r.confidence);
                model_version.append_value(&r.model_version);
                prediction_time.append_value(r.prediction_time_us);
                processing_ms.append_value(r.processing_time_ms);
                replica.append_value(&r.replica_id);
                scored_by.append_value(r.scored_by);
                source_partition.append_value(r.source_partition);
                source_offset.append_value(r.source_offset);
            }
            (
                Builders::Labels {
                    id,
                    customer,
                    terminal,
                    time,
                    fraud,
                    labelled_at,
                    synthetic,
                },
                Row::Label(r),
            ) => {
                id.append_value(r.transaction_id);
                customer.append_value(r.customer_id);
                terminal.append_value(r.terminal_id);
                time.append_value(r.tx_datetime * MICROS);
                fraud.append_value(r.tx_fraud);
                labelled_at.append_value(r.labelled_at * MICROS);
                synthetic.append_value(r.synthetic);
            }
            (_, row) => panic!("a {} row pushed to {} columns", row.table(), self.table),
        }
        self.partition.append_value(from.partition);
        self.offset.append_value(from.offset);
        self.timestamp
            .append_option(from.timestamp_ms.map(|ms| ms * 1000));
        self.rows += 1;
    }

    /// The rows as one record batch; the columns start empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, LakeError> {
        // The table's own columns, then (after the provenance) those added later.
        let (mut columns, later): (Vec<ArrayRef>, Vec<ArrayRef>) = match &mut self.builders {
            Builders::Transactions {
                id,
                time,
                customer,
                terminal,
                amount,
                category,
                age,
                balance,
                synthetic,
            } => (
                vec![
                    Arc::new(id.finish()),
                    Arc::new(time.finish()),
                    Arc::new(customer.finish()),
                    Arc::new(terminal.finish()),
                    Arc::new(amount.finish()),
                    Arc::new(category.finish()),
                    Arc::new(age.finish()),
                    Arc::new(balance.finish()),
                ],
                vec![Arc::new(synthetic.finish())],
            ),
            Builders::Predictions {
                id,
                customer,
                time,
                probability,
                is_fraud,
                confidence,
                model_version,
                prediction_time,
                processing_ms,
                replica,
                scored_by,
                source_partition,
                source_offset,
            } => (
                vec![
                    Arc::new(id.finish()),
                    Arc::new(customer.finish()),
                    Arc::new(time.finish()),
                    Arc::new(probability.finish()),
                    Arc::new(is_fraud.finish()),
                    Arc::new(confidence.finish()),
                    Arc::new(model_version.finish()),
                    Arc::new(prediction_time.finish()),
                    Arc::new(processing_ms.finish()),
                    Arc::new(replica.finish()),
                    Arc::new(scored_by.finish()),
                    Arc::new(source_partition.finish()),
                    Arc::new(source_offset.finish()),
                ],
                Vec::new(),
            ),
            Builders::Labels {
                id,
                customer,
                terminal,
                time,
                fraud,
                labelled_at,
                synthetic,
            } => (
                vec![
                    Arc::new(id.finish()),
                    Arc::new(customer.finish()),
                    Arc::new(terminal.finish()),
                    Arc::new(time.finish()),
                    Arc::new(fraud.finish()),
                    Arc::new(labelled_at.finish()),
                ],
                vec![Arc::new(synthetic.finish())],
            ),
        };
        columns.push(Arc::new(self.partition.finish()));
        columns.push(Arc::new(self.offset.finish()));
        columns.push(Arc::new(self.timestamp.finish()));
        columns.extend(later);
        self.rows = 0;
        self.bytes = 0;
        Ok(RecordBatch::try_new(self.table.schema(), columns)?)
    }
}
