"""A bare confluent-kafka loop doing the peers' trivial job: consume a batch, decode, lower-case
+ strip, dedup by id, produce, flush (every ack in), commit. The librdkafka counterpart of the
aiokafka passthrough; runs in the peers' own virtual environment, which quixstreams brings it to.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from confluent_kafka import Consumer, Producer
from job import Clock, Job, emit, peer_arguments


def main(argv: list[str] | None = None) -> int:
    ap = peer_arguments(__doc__)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)

    job, clock = Job(), Clock(args.total)
    consumer = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })  # fmt: skip
    producer = Producer({
        "bootstrap.servers": args.bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        "linger.ms": 5,
    })  # fmt: skip
    consumer.subscribe([args.topic])
    done = 0
    deadline = time.monotonic() + args.timeout
    try:
        while done < args.total and time.monotonic() < deadline:
            messages = consumer.consume(num_messages=5000, timeout=0.5)
            if not messages:
                continue
            clock.first()
            for msg in messages:
                if msg.error():
                    continue
                out = job(msg.value())
                if out is not None:
                    value = job.encode(out)
                    while True:
                        try:
                            producer.produce(args.out, value, key=msg.key())
                            break
                        except BufferError:  # the local queue is full: serve delivery reports
                            producer.poll(0.05)
                done += 1
            producer.flush()
            consumer.commit(asynchronous=False)
        emit(clock.report(done, duplicates=job.duplicates))
    finally:
        consumer.close()
    return 0 if done >= args.total else 1


if __name__ == "__main__":
    sys.exit(main())
