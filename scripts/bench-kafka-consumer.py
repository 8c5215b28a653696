"""The baseline stream consumer for scripts/bench-kafka.sh: the seeds' design in Python.

One event, one POST: poll a message from Kafka (confluent-kafka, auto-commit), POST it to the API's
/predict with a keep-alive requests.Session, produce the answer to the output topic. No online features
(the seeds' consumer sends the raw event). Prints one line the benchmark script parses:

    python summary: events=N seconds=S events_per_s=R cpu_s=C events_per_cpu_s=E

usage: bench-kafka-consumer.py BOOTSTRAP TOPIC GROUP OUTPUT_TOPIC API_URL N
"""

import json
import resource
import sys
import time

import requests
from confluent_kafka import Consumer, Producer


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    bootstrap, topic, group, output, api_url, n = sys.argv[1:7]
    n = int(n)
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    session = requests.Session()
    url = api_url.rstrip("/") + "/predict"
    consumer.subscribe([topic])
    done = 0
    started = None
    cpu0 = cpu_seconds()
    while done < n:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        if started is None:
            started = time.monotonic()
        event = json.loads(message.value())
        response = session.post(url, json=event, timeout=10)
        producer.produce(output, key=message.key(), value=response.content)
        producer.poll(0)
        done += 1
    producer.flush(30)
    elapsed = time.monotonic() - (started or time.monotonic())
    cpu = cpu_seconds() - cpu0
    consumer.close()
    print(
        f"python summary: events={done} seconds={elapsed:.3f} events_per_s={done / elapsed:.0f} "
        f"cpu_s={cpu:.3f} events_per_cpu_s={done / cpu:.0f}"
    )


if __name__ == "__main__":
    main()
