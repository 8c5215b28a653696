//! How a consumer reports librdkafka's commits (the worker's and the label consumer's): one line per
//! commit at debug, a warning when one fails (the next commit carries the same offsets).

use rdkafka::TopicPartitionList;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};

/// Logs the outcome of one commit.
pub fn log_commit(result: KafkaResult<()>, offsets: &TopicPartitionList) {
    match result {
        Ok(()) => tracing::debug!(event = "offsets_committed", offsets = ?offsets.to_topic_map()),
        // Nothing stored since the last commit: not a failure.
        Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::NoOffset)) => {}
        Err(e) => {
            tracing::warn!(event = "commit_failed", error = %e, offsets = ?offsets.to_topic_map())
        }
    }
}
