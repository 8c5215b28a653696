"""Counts the messages a topic holds, with an independent client (confluent-kafka, the seeds' own; run with
the Kafka benchmark's venv, scripts/ensure/kafka-bench-venv.sh). Used by scripts/test-airflow.sh to check
what the kafka_attack_simulation DAG wrote.

    python count_messages.py BOOTSTRAP_SERVERS TOPIC      prints the count on stdout

Reads every partition from the beginning without a consumer group commit. tansu 0.6 reports a high
watermark short of a batch's last records, so reading goes on past the end-of-partition events until the
topic has been quiet for a moment (as fraudops_stream::topic::read_to_end does).
"""

from __future__ import annotations

import sys
import time

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

QUIET_S = 1.0
TIMEOUT_S = 60.0

servers, topic = sys.argv[1], sys.argv[2]
consumer = Consumer({
    "bootstrap.servers": servers,
    "group.id": "fraudops-airflow-test-counter",
    "enable.auto.commit": False,
    "enable.partition.eof": True,
})
metadata = consumer.list_topics(topic, timeout=10)
partitions = sorted(metadata.topics[topic].partitions) if topic in metadata.topics else []
if not partitions or metadata.topics[topic].error is not None:
    sys.exit(f"topic {topic} not found at {servers}")
consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])

count, at_end = 0, set()
deadline = time.monotonic() + TIMEOUT_S
last = time.monotonic()
while len(at_end) < len(partitions) or time.monotonic() - last < QUIET_S:
    if time.monotonic() > deadline:
        sys.exit(f"{topic}: not read to its end within {TIMEOUT_S:.0f} s ({count} so far)")
    message = consumer.poll(0.2)
    if message is None:
        continue
    if message.error():
        if message.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(message.partition())
            continue
        sys.exit(f"{topic}: {message.error()}")
    count += 1
    last = time.monotonic()
consumer.close()
print(count)
