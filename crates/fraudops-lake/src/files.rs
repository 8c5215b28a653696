//! File names and Parquet encoding: the only place that decides what a lake file is called and how it is
//! written.
//!
//! A data file is `<table>/dt=<YYYY-MM-DD>/<topic>+<partition>+<first offset>+<last offset>.parquet`
//! (offsets zero-padded to 20 digits, so names sort by offset): the Kafka Connect S3 sink's scheme, with
//! the range's end added. The same records always give the same name, so writing a file again after a
//! crash replaces it rather than adding a copy.

use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};

use crate::error::LakeError;
use crate::table::Table;

/// The folder of one table's day.
pub fn day_dir(table: Table, day: NaiveDate) -> String {
    format!("{}/dt={}", table.name(), day.format("%Y-%m-%d"))
}

/// The data file holding `table`'s rows of `day` from `topic`'s `partition`, offsets `first..=last`.
pub fn data_file(
    table: Table,
    day: NaiveDate,
    topic: &str,
    partition: i32,
    first: i64,
    last: i64,
) -> String {
    format!(
        "{}/{topic}+{partition}+{first:020}+{last:020}.parquet",
        day_dir(table, day)
    )
}

/// The ledger of one topic partition: where the archive records what it committed. Under `_archive/`,
/// which Spark, pyarrow and DuckDB's hive discovery skip (a leading underscore), outside every table.
pub fn ledger_file(topic: &str, partition: i32) -> String {
    format!("_archive/{topic}/{partition}.json")
}

/// Rows per Parquet row group: large enough for good compression and scans, small enough that a reader
/// can skip by statistics.
const ROW_GROUP_ROWS: usize = 256 * 1024;

/// One record batch as a whole Parquet file (snappy, column statistics).
pub fn encode(batch: &RecordBatch) -> Result<Bytes, LakeError> {
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_created_by(format!("fraudops {}", env!("CARGO_PKG_VERSION")))
        .build();
    let mut buffer = Vec::with_capacity(batch.num_rows() * 16 + 4096);
    let mut writer = ArrowWriter::try_new(&mut buffer, batch.schema(), Some(properties))?;
    writer.write(batch)?;
    writer.close()?;
    Ok(Bytes::from(buffer))
}

/// The record batches of a Parquet file, checked against the table's schema. A file written before a
/// column was added (one [`Table::default_column`] knows, such as `synthetic`) comes back with that column
/// filled with the value it means there, so every reader sees one schema whatever the file's age.
pub fn decode(table: Table, path: &str, bytes: Bytes) -> Result<Vec<RecordBatch>, LakeError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)?
        .with_batch_size(64 * 1024)
        .build()?;
    let expected = table.schema();
    let mut batches = Vec::new();
    for batch in reader {
        let batch = batch?;
        if batch.schema().fields() == expected.fields() {
            batches.push(batch);
        } else {
            batches.push(upgrade(table, path, &expected, &batch)?);
        }
    }
    Ok(batches)
}

/// `batch` (from a file written before some of `expected`'s columns existed) as `expected`: its columns
/// taken by name, each missing one filled with its default. Refused when a column it has differs from the
/// table's, or one it lacks has no default: then the file is not one of ours.
fn upgrade(
    table: Table,
    path: &str,
    expected: &SchemaRef,
    batch: &RecordBatch,
) -> Result<RecordBatch, LakeError> {
    let mismatch = || LakeError::Schema {
        path: path.to_owned(),
        reason: format!(
            "columns {:?}, expected {:?}",
            names(&batch.schema()),
            names(expected)
        ),
    };
    let mut columns = Vec::with_capacity(expected.fields().len());
    let mut found = 0;
    for field in expected.fields() {
        match batch.schema().column_with_name(field.name()) {
            Some((i, own)) if own == field.as_ref() => {
                columns.push(batch.column(i).clone());
                found += 1;
            }
            Some(_) => return Err(mismatch()),
            None => columns.push(
                table
                    .default_column(field.name(), batch.num_rows())
                    .ok_or_else(mismatch)?,
            ),
        }
    }
    if found != batch.num_columns() {
        return Err(mismatch());
    }
    Ok(RecordBatch::try_new(expected.clone(), columns)?)
}

fn names(schema: &Schema) -> Vec<&str> {
    schema.fields().iter().map(|f| f.name().as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_data_file_name_says_topic_partition_and_offsets_and_sorts_by_offset() {
        let day = NaiveDate::from_ymd_opt(2018, 8, 15).unwrap();
        let name = data_file(Table::Transactions, day, "transactions-input", 3, 7, 1200);
        assert_eq!(
            name,
            "transactions/dt=2018-08-15/transactions-input+3+00000000000000000007+00000000000000001200.parquet"
        );
        assert!(
            data_file(Table::Labels, day, "t", 0, 9, 10)
                < data_file(Table::Labels, day, "t", 0, 10, 11)
        );
    }
}
