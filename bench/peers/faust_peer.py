"""A Faust agent doing the peers' trivial job: decode, lower-case + strip, dedup by id, produce.

Run as its own process by bench/peers/compare.py; prints one report line when it has processed
`--total` records, flushed its producer and committed, then waits to be stopped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faust
from faust.worker import Worker
from job import Clock, Job, emit, peer_arguments


def build(args: argparse.Namespace, datadir: str) -> faust.App:
    """The app: defaults as a Faust user gets them, the web server and leader topic off."""
    app = faust.App(
        args.group,
        broker=f"kafka://{args.bootstrap}",
        value_serializer="raw",
        key_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        store="memory://",
        datadir=datadir,
        consumer_auto_offset_reset="earliest",
    )
    source = app.topic(args.topic, value_serializer="raw", key_serializer="raw")
    sink = app.topic(args.out, value_serializer="raw", key_serializer="raw")
    job, clock = Job(), Clock(args.total)
    state: dict[str, Any] = {"done": 0, "reported": False}

    @app.agent(source)
    async def trivial(stream: faust.StreamT) -> None:
        async for event in stream.events():
            clock.first()
            out = job(event.value)
            if out is not None:
                await sink.send(key=event.key, value=job.encode(out))
            state["done"] += 1
            if state["done"] >= args.total and not state["reported"]:
                state["reported"] = True
                await app.producer.flush()
                await app.consumer.commit()
                emit(clock.report(state["done"], duplicates=job.duplicates))

    return app


def main(argv: list[str] | None = None) -> int:
    ap = peer_arguments(__doc__)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="peer-faust-") as datadir:
        app = build(args, datadir)
        Worker(app, loglevel="WARNING", quiet=True).execute_from_commandline()
    return 0


if __name__ == "__main__":
    sys.exit(main())
