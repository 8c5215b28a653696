//! The transaction lake (SPEC §6): everything the system saw — `transactions-input`, `fraud-predictions`,
//! `fraud-labels` — as Parquet files partitioned by event day on object storage, written exactly once,
//! and read back as a training window with the labels known at a cutoff.
//!
//! * [`table`] — the three tables' Arrow schemas, one typed row per event, the column builders;
//! * [`files`] — file names (`<table>/dt=<day>/<topic>+<partition>+<first>+<last>.parquet`) and the
//!   Parquet encoding;
//! * [`ledger`] — the per-partition ledger that makes a crash, a rebalance or a redelivery add no copy
//!   and lose no row;
//! * [`sink`] — one partition's buffer: flush by rows, bytes and age; small files merged per day;
//! * [`reader`] — a training window (transactions + labels known at a cutoff, synthetic traffic left out
//!   unless asked) and row counts;
//! * [`Lake`] — where it lives: a local directory or an S3-compatible bucket.
//!
//! Why plain Parquet and not a table format (Delta Lake, Iceberg): every reader the users have — pyarrow,
//! DuckDB, Spark, pandas — reads hive-partitioned Parquet with no extension, and the one guarantee a table
//! format would add here, atomic multi-file commits, the append-only archive gets from deterministic file
//! names and its own ledger. See docs/lake.md.
//!
//! Architecture invariant: no Kafka here (the consumer loop is `fraudops-stream`'s `archive`); the
//! crate knows records only as (topic, partition, offset, payload).

mod error;
pub mod files;
pub mod ledger;
mod location;
pub mod reader;
pub mod sink;
pub mod table;

pub use error::LakeError;
pub use location::Lake;
pub use reader::{LabelCutoff, Synthetic, Window, count_rows, read_window};
pub use sink::{Committed, CompactionPolicy, FlushPolicy, PartitionSink, WrittenFile};
pub use table::{Provenance, Row, Table};
