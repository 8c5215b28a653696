//! One topic partition's way into the lake: rows buffered per event day, flushed as one ledger change
//! when the buffer is big or old enough, and the small files it left merged per day.
//!
//! The archive owns one [`PartitionSink`] per assigned partition; everything that makes a partition's
//! files exactly-once (the offsets range in each name, the ledger change, the rollback) happens here and
//! in `ledger`, so the Kafka loop only routes records and decides when to call.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::NaiveDate;
use parquet::arrow::ArrowWriter;

use crate::error::LakeError;
use crate::files::{data_file, decode, encode};
use crate::ledger::{self, PartitionState};
use crate::location::Lake;
use crate::table::{Columns, Provenance, Row, Table};

/// When a partition's buffer becomes files: whichever limit is reached first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPolicy {
    /// Rows buffered.
    pub max_rows: usize,
    /// Approximate bytes buffered.
    pub max_bytes: usize,
    /// Age of the oldest buffered record.
    pub max_age: Duration,
}

impl Default for FlushPolicy {
    fn default() -> Self {
        Self {
            max_rows: 1_000_000,
            max_bytes: 64 << 20,
            max_age: Duration::from_secs(60),
        }
    }
}

/// When a day's small files are merged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactionPolicy {
    /// Merge once a day of a partition has this many small files (0 or 1: never).
    pub min_files: usize,
    /// A file smaller than this is small.
    pub small_file_bytes: u64,
}

impl Default for CompactionPolicy {
    fn default() -> Self {
        Self {
            min_files: 8,
            small_file_bytes: 32 << 20,
        }
    }
}

/// One file a change wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The table.
    pub table: Table,
    /// The event day (its `dt=` folder).
    pub day: NaiveDate,
    /// Path relative to the lake.
    pub path: String,
    /// Rows in it.
    pub rows: usize,
    /// Its size.
    pub bytes: u64,
}

/// What a flush or a compaction committed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Committed {
    /// New files.
    pub written: Vec<WrittenFile>,
    /// Files superseded (a compaction's inputs).
    pub replaced: usize,
    /// The partition's next offset after the change.
    pub next_offset: Option<i64>,
}

/// A flush encoded and waiting to be committed (kept across failed attempts, so a retry writes the very
/// same files): offsets `first..=last`, one file per event day.
struct Staged {
    first: i64,
    last: i64,
    files: Vec<(String, Bytes)>,
    written: Vec<WrittenFile>,
}

/// A small committed file of one day, a compaction candidate.
#[derive(Debug, Clone)]
struct SmallFile {
    path: String,
    first: i64,
    last: i64,
    bytes: u64,
}

/// The buffer and ledger of one topic partition.
pub struct PartitionSink {
    lake: Lake,
    topic: String,
    partition: i32,
    table: Table,
    state: PartitionState,
    days: BTreeMap<NaiveDate, Columns>,
    /// Offsets range of the buffer (records that became no row, dead letters, included).
    first: Option<i64>,
    last: i64,
    rows: usize,
    bytes: usize,
    opened: Option<Instant>,
    staged: Option<Staged>,
    small: BTreeMap<NaiveDate, Vec<SmallFile>>,
}

impl PartitionSink {
    /// Recovers the partition's ledger (rolling back what never committed) and opens its buffer.
    pub async fn open(
        lake: &Lake,
        topic: &str,
        partition: i32,
        table: Table,
    ) -> Result<Self, LakeError> {
        let state = ledger::recover(lake, topic, partition).await?;
        Ok(Self {
            lake: lake.clone(),
            topic: topic.to_owned(),
            partition,
            table,
            state,
            days: BTreeMap::new(),
            first: None,
            last: -1,
            rows: 0,
            bytes: 0,
            opened: None,
            staged: None,
            small: BTreeMap::new(),
        })
    }

    /// Where reading must resume: the first offset the lake does not hold (`None`: nothing archived).
    pub fn resume_offset(&self) -> Option<i64> {
        self.state.next_offset
    }

    /// The table this partition feeds.
    pub fn table(&self) -> Table {
        self.table
    }

    /// The topic the partition belongs to.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Takes the record at `offset`: its row, or `None` for a record that becomes no row (a dead letter
    /// already acknowledged), which still moves the range. A record the lake already holds (below the
    /// resume offset: a redelivery) is ignored; returns whether the record was taken.
    pub fn push(&mut self, offset: i64, row: Option<(&Row, Provenance)>) -> bool {
        let next = self.staged_end().or(self.state.next_offset);
        if next.is_some_and(|n| offset < n) || offset <= self.last {
            return false;
        }
        self.first.get_or_insert(offset);
        self.opened.get_or_insert_with(Instant::now);
        self.last = offset;
        if let Some((row, from)) = row {
            self.bytes += row.approx_bytes();
            self.rows += 1;
            self.days
                .entry(row.day())
                .or_insert_with(|| Columns::new(self.table))
                .push(row, from);
        }
        true
    }

    /// The offset after a staged (not yet committed) flush.
    fn staged_end(&self) -> Option<i64> {
        self.staged.as_ref().map(|s| s.last + 1)
    }

    /// Rows buffered and not yet flushed.
    pub fn buffered_rows(&self) -> usize {
        self.rows
    }

    /// Approximate bytes buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.bytes
    }

    /// True when a flush attempt failed and waits to be retried.
    pub fn has_staged(&self) -> bool {
        self.staged.is_some()
    }

    /// Whether `policy` says the buffer should be written now.
    pub fn due(&self, policy: &FlushPolicy, now: Instant) -> bool {
        self.staged.is_some()
            || self.rows >= policy.max_rows
            || self.bytes >= policy.max_bytes
            || self
                .opened
                .is_some_and(|t| now.saturating_duration_since(t) >= policy.max_age)
    }

    /// Writes the buffer as one file per event day and commits it in the ledger (with a staged flush
    /// that failed before, first). On error nothing new is committed and the staged flush is kept for
    /// the next attempt.
    pub async fn flush(&mut self) -> Result<Committed, LakeError> {
        let mut committed = Committed::default();
        if self.staged.is_none() {
            self.stage()?;
        }
        if let Some(staged) = &self.staged {
            ledger::apply(
                &self.lake,
                &self.topic,
                self.partition,
                &mut self.state,
                staged.files.clone(),
                Vec::new(),
                Some(staged.last + 1),
            )
            .await?;
            let staged = self.staged.take().expect("checked above");
            for file in &staged.written {
                self.small.entry(file.day).or_default().push(SmallFile {
                    path: file.path.clone(),
                    first: staged.first,
                    last: staged.last,
                    bytes: file.bytes,
                });
            }
            committed.written = staged.written;
            committed.next_offset = self.state.next_offset;
        }
        Ok(committed)
    }

    /// Encodes the buffer into a staged change and empties it.
    fn stage(&mut self) -> Result<(), LakeError> {
        let Some(first) = self.first else {
            return Ok(());
        };
        let last = self.last;
        let mut files = Vec::new();
        let mut written = Vec::new();
        for (day, columns) in &mut self.days {
            if columns.is_empty() {
                continue;
            }
            let batch = columns.finish()?;
            let path = data_file(self.table, *day, &self.topic, self.partition, first, last);
            let bytes = encode(&batch)?;
            written.push(WrittenFile {
                table: self.table,
                day: *day,
                path: path.clone(),
                rows: batch.num_rows(),
                bytes: bytes.len() as u64,
            });
            files.push((path, bytes));
        }
        self.staged = Some(Staged {
            first,
            last,
            files,
            written,
        });
        self.days.clear();
        self.first = None;
        self.rows = 0;
        self.bytes = 0;
        self.opened = None;
        Ok(())
    }

    /// Merges each day whose small files (committed by this sink) reached `policy.min_files` into one
    /// file named by the union of their ranges, as one ledger change (the inputs deleted only once the
    /// merged file is committed). Returns what was committed.
    pub async fn compact(&mut self, policy: &CompactionPolicy) -> Result<Committed, LakeError> {
        let mut committed = Committed::default();
        if policy.min_files < 2 {
            return Ok(committed);
        }
        for files in self.small.values_mut() {
            files.retain(|f| f.bytes < policy.small_file_bytes);
        }
        let ready: Vec<NaiveDate> = self
            .small
            .iter()
            .filter(|(_, files)| files.len() >= policy.min_files)
            .map(|(day, _)| *day)
            .collect();
        for day in ready {
            let inputs = self.small.remove(&day).unwrap_or_default();
            let first = inputs.iter().map(|f| f.first).min().unwrap_or(0);
            let last = inputs.iter().map(|f| f.last).max().unwrap_or(0);
            let path = data_file(self.table, day, &self.topic, self.partition, first, last);
            let mut buffer = Vec::new();
            let mut rows = 0;
            {
                let mut writer = ArrowWriter::try_new(&mut buffer, self.table.schema(), None)?;
                for input in &inputs {
                    let bytes =
                        self.lake
                            .get(&input.path)
                            .await?
                            .ok_or_else(|| LakeError::Schema {
                                path: input.path.clone(),
                                reason: "committed file is missing".into(),
                            })?;
                    for batch in decode(self.table, &input.path, bytes)? {
                        rows += batch.num_rows();
                        writer.write(&batch)?;
                    }
                }
                writer.close()?;
            }
            let bytes = Bytes::from(buffer);
            let size = bytes.len() as u64;
            if let Err(e) = ledger::apply(
                &self.lake,
                &self.topic,
                self.partition,
                &mut self.state,
                vec![(path.clone(), bytes)],
                inputs.iter().map(|f| f.path.clone()).collect(),
                None,
            )
            .await
            {
                // Not merged: the inputs stay committed and are tried again later.
                self.small.insert(day, inputs);
                return Err(e);
            }
            if size < policy.small_file_bytes {
                self.small.entry(day).or_default().push(SmallFile {
                    path: path.clone(),
                    first,
                    last,
                    bytes: size,
                });
            }
            committed.replaced += inputs.len();
            committed.written.push(WrittenFile {
                table: self.table,
                day,
                path,
                rows,
                bytes: size,
            });
        }
        if committed.replaced > 0 {
            committed.next_offset = self.state.next_offset;
        }
        Ok(committed)
    }
}
