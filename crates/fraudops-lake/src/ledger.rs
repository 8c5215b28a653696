//! Exactly once on top of at-least-once delivery: each topic partition's ledger in the lake.
//!
//! A Kafka offset commit and an object store write cannot be one transaction, so the lake keeps its own
//! record of what it holds, one small JSON object per topic partition (`_archive/<topic>/<partition>.json`),
//! and every change to the partition's files is a ledger transaction:
//!
//! 1. the ledger is rewritten with the change as `pending` (the files it will write and delete, and the
//!    offset it will have reached);
//! 2. the new files are written (each atomically, and durably);
//! 3. the ledger is rewritten with `next_offset` moved and the superseded files as `garbage`: **this is
//!    the commit**;
//! 4. the garbage is deleted and the ledger rewritten without it.
//!
//! Only then is the Kafka offset committed, and it is only a hint: on (re)assignment the archive
//! [`recover`]s the partition (a `pending` change is rolled back by deleting the files it may have
//! written, left-over garbage is deleted) and resumes at the ledger's `next_offset`. A crash at any step
//! therefore leaves each record in exactly one committed file: before step 3 the change never happened,
//! after it the change is complete. The file names are deterministic in the records' offsets, so a
//! rolled-back file and its rewrite can only replace each other.
//!
//! One writer per partition is what the Kafka consumer group guarantees; the archive drops a partition's
//! buffered rows when the partition is revoked, before the next owner recovers it.

use serde::{Deserialize, Serialize};

use crate::error::LakeError;
use crate::files::ledger_file;
use crate::location::Lake;

/// What the lake holds of one topic partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionState {
    /// The first offset not yet in the lake (`None`: nothing archived yet; start where the consumer
    /// group's committed offset, or the topic's beginning, says).
    pub next_offset: Option<i64>,
    /// A change being applied; rolled back by [`recover`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Change>,
    /// Files a committed change superseded, to delete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub garbage: Vec<String>,
}

/// One atomic change to a partition's files.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Files written by the change (relative to the lake).
    pub writes: Vec<String>,
    /// Files the change supersedes (a compaction's inputs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletes: Vec<String>,
    /// The partition's `next_offset` once committed.
    pub next_offset: Option<i64>,
}

/// Reads a partition's ledger (an empty state when the partition was never archived).
pub async fn load(lake: &Lake, topic: &str, partition: i32) -> Result<PartitionState, LakeError> {
    let path = ledger_file(topic, partition);
    match lake.get(&path).await? {
        None => Ok(PartitionState::default()),
        Some(bytes) => {
            serde_json::from_slice(&bytes).map_err(|source| LakeError::Ledger { path, source })
        }
    }
}

async fn save(
    lake: &Lake,
    topic: &str,
    partition: i32,
    state: &PartitionState,
) -> Result<(), LakeError> {
    let path = ledger_file(topic, partition);
    let json = serde_json::to_vec_pretty(state).map_err(|source| LakeError::Ledger {
        path: path.clone(),
        source,
    })?;
    lake.put(&path, json.into()).await
}

/// Brings a partition back to its last committed state (rolls back a pending change, deletes garbage)
/// and returns it: where the archive resumes.
pub async fn recover(
    lake: &Lake,
    topic: &str,
    partition: i32,
) -> Result<PartitionState, LakeError> {
    let mut state = load(lake, topic, partition).await?;
    if state.pending.is_none() && state.garbage.is_empty() {
        return Ok(state);
    }
    if let Some(change) = &state.pending {
        tracing::warn!(
            event = "lake_rollback",
            topic,
            partition,
            files = change.writes.len(),
            "a change that never committed is rolled back; its records are read again"
        );
        for file in &change.writes {
            lake.delete(file).await?;
        }
    }
    for file in &state.garbage {
        lake.delete(file).await?;
    }
    state.pending = None;
    state.garbage.clear();
    save(lake, topic, partition, &state).await?;
    Ok(state)
}

/// Applies one change to a partition whose ledger is `state` (as [`recover`] or the previous `apply`
/// left it): writes `files` (`(path, bytes)`), supersedes `deletes`, and moves the partition's offset to
/// `next_offset` when given; `state` is the committed state afterwards. On error nothing is committed: the
/// caller retries (the same files, which replace any written before the failure) or leaves it to
/// [`recover`].
pub async fn apply(
    lake: &Lake,
    topic: &str,
    partition: i32,
    state: &mut PartitionState,
    files: Vec<(String, bytes::Bytes)>,
    deletes: Vec<String>,
    next_offset: Option<i64>,
) -> Result<(), LakeError> {
    let change = Change {
        writes: files.iter().map(|(path, _)| path.clone()).collect(),
        deletes,
        next_offset,
    };
    let mut next = state.clone();
    next.pending = Some(change.clone());
    save(lake, topic, partition, &next).await?;
    for (path, bytes) in files {
        lake.put(&path, bytes).await?;
    }
    next.pending = None;
    if change.next_offset.is_some() {
        next.next_offset = change.next_offset;
    }
    next.garbage.extend(change.deletes);
    save(lake, topic, partition, &next).await?;
    // Committed: what follows only tidies up. A failure here is not the change's: the garbage stays in
    // the ledger and is deleted by the next change or by `recover`.
    *state = next;
    if !state.garbage.is_empty()
        && let Err(e) = collect_garbage(lake, topic, partition, state).await
    {
        tracing::warn!(event = "lake_garbage_left", topic, partition, error = %e,
            "superseded files stay until the next change or recovery deletes them");
    }
    Ok(())
}

async fn collect_garbage(
    lake: &Lake,
    topic: &str,
    partition: i32,
    state: &mut PartitionState,
) -> Result<(), LakeError> {
    for file in &state.garbage {
        lake.delete(file).await?;
    }
    state.garbage.clear();
    save(lake, topic, partition, state).await
}
