"""A Quix Streams app doing the peers' trivial job: decode, lower-case + strip, dedup by id,
produce. Runs in the peers' own virtual environment (bench/peers/venv.py), never in .venv.

Stops itself after `--total` records; Application.run returns once the last checkpoint (producer
flush and offset commit) is done, and the report line is printed then.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import Clock, Job, emit, peer_arguments
from quixstreams import Application


def main(argv: list[str] | None = None) -> int:
    ap = peer_arguments(__doc__)
    args = ap.parse_args(argv)

    job, clock = Job(), Clock(args.total)
    done = [0]

    def counted(_topic: str, _partition: int, _offset: int) -> None:
        done[0] += 1
        if done[0] == args.total:
            app.stop()

    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.group,
        auto_offset_reset="earliest",
        loglevel="WARNING",
        use_changelog_topics=False,
        on_message_processed=counted,
    )
    source = app.topic(args.topic, key_deserializer="bytes", value_deserializer="bytes")
    sink = app.topic(args.out, key_serializer="bytes", value_serializer="bytes")

    def process(value: bytes) -> bytes | None:
        clock.first()
        out = job(value)
        return None if out is None else job.encode(out)

    sdf = app.dataframe(source).apply(process).filter(lambda v: v is not None)
    sdf.to_topic(sink)
    app.run()
    emit(clock.report(done[0], duplicates=job.duplicates))
    return 0


if __name__ == "__main__":
    sys.exit(main())
