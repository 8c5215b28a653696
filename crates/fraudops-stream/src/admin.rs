//! Creates the topics a command needs when they are missing: a fresh local broker works without a
//! setup step, and on the cluster (where Strimzi already created them) this is a no-op.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaArgs;
use crate::error::StreamError;

/// How long the broker gets to create topics before we call it a failure.
const CREATE_TIMEOUT: Duration = Duration::from_secs(30);

/// Makes sure every `(topic, partitions)` exists; existing topics are left untouched whatever their
/// partition count.
pub async fn ensure_topics(kafka: &KafkaArgs, topics: &[(&str, i32)]) -> Result<(), StreamError> {
    if topics.iter().any(|&(_, p)| p < 1) {
        return Err(StreamError::Config(
            "topics need at least one partition".into(),
        ));
    }
    let admin: AdminClient<DefaultClientContext> =
        kafka.client_config("fraudops-admin").create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|&(name, partitions)| {
            NewTopic::new(
                name,
                partitions,
                TopicReplication::Fixed(kafka.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(CREATE_TIMEOUT));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(topic) => tracing::info!(event = "topic_created", topic),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(StreamError::TopicCreation {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}
