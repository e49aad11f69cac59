"""What one stage transaction costs the worker's process, apart from the records in it.

A stage commits each partition's batch in a transaction of its own (`send_in_transaction`: the
batch's output, its trend events and its changelog record). The client's share of that (the
AddPartitionsToTxn, Produce and EndTxn requests built, sent and parsed in Python, and the
sender's loop turns) is paid once a transaction, whatever the batch size, and at half load,
where batches are small, it is a large part of a worker's CPU. This measures it with the
worker's own producer settings and `send_in_transaction`, one transaction after another on an
otherwise idle event loop: CPU and wall time per transaction for batches of a few sizes, and
from them the fixed cost of a transaction and the cost of one more record (a straight line
through the smallest and the largest size). The first sends into the new topics may be refused
and retried while their partitions settle (aiokafka logs it): that falls in the warm-up.

    .venv/bin/python -m bench.txn_cost --sizes 5,50,500 --transactions 200
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import NewTopic

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.e2e import _delete, _topics_with  # noqa: E402
from pipeline import kafka_io  # noqa: E402
from pipeline.settings import Settings  # noqa: E402
from pipeline.stream.batch import OutRecord  # noqa: E402
from pipeline.stream.state import send_in_transaction  # noqa: E402

RECORD = orjson.dumps({"text": "a clean comment " * 40, "tags": [{"code": "medtop:11000000"}]})
TREND_EVENTS = 4  # a batch's trend events: one per top-level topic and minute
WARMUP = 20


def batch_records(prefix: str, n: int) -> list[OutRecord]:
    """A comments batch's transaction: `n` clean records to the input's partition number, the
    trend events (keyed: the producer's partitioner places them) and one changelog record."""
    out = [OutRecord(f"{prefix}clean", f"a-{i % 7}".encode(), RECORD, 0) for i in range(n)]
    out += [OutRecord(f"{prefix}trend", f"comments|t{i}".encode(), b'{"n":1}', None)
            for i in range(TREND_EVENTS)]  # fmt: skip
    entries = {f"c:{i}": [1, "h"] for i in range(n)}
    changelog = orjson.dumps({"mark": n, "maps": {"comments": entries}})
    out.append(OutRecord(f"{prefix}changelog", None, changelog, 0))
    return out


async def _per_transaction(
    producer: Any, records: list[OutRecord], transactions: int
) -> dict[str, float]:
    """CPU and wall milliseconds a transaction of `records`: the median of five runs of
    `transactions // 5` each, after a warm-up."""
    for _ in range(WARMUP):
        await send_in_transaction(producer, records)
    k = max(1, transactions // 5)
    runs = []
    for _ in range(5):
        c0, w0 = time.process_time(), time.perf_counter()
        for _ in range(k):
            await send_in_transaction(producer, records)
        runs.append(((time.process_time() - c0) / k, (time.perf_counter() - w0) / k))
    cpu = sorted(r[0] for r in runs)[2]
    wall = sorted(r[1] for r in runs)[2]
    return {"cpu_ms": cpu * 1000, "wall_ms": wall * 1000}


async def measure(settings: Settings, sizes: list[int], transactions: int) -> dict[str, Any]:
    """Per size: CPU and wall milliseconds per transaction (median of five runs of
    `transactions // 5`)."""
    prefix = f"txn{uuid.uuid4().hex[:6]}."
    topics = [f"{prefix}{name}" for name in ("clean", "trend", "changelog")]
    out: dict[str, Any] = {"topic_prefix": prefix, "sizes": {}}
    try:
        admin = kafka_io.admin_client(settings)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(t, 6, 1) for t in topics])
            await kafka_io._wait_for_leaders(admin, dict.fromkeys(topics, 6), 60.0)
        finally:
            await admin.close()
        producer = kafka_io.producer(settings, transactional_id=f"{prefix}stage-0")
        await producer.start()
        try:
            for n in sizes:
                out["sizes"][n] = await _per_transaction(producer, batch_records(prefix, n),
                                                         transactions)  # fmt: skip
        finally:
            await producer.stop()
    finally:  # whatever failed, no topic of this run stays behind
        await _delete(settings, await _topics_with(settings, (prefix,)))
    lo, hi = min(sizes), max(sizes)
    if hi > lo:
        slope = (out["sizes"][hi]["cpu_ms"] - out["sizes"][lo]["cpu_ms"]) / (hi - lo)
        out["per_record_cpu_us"] = slope * 1000
        out["fixed_cpu_ms"] = out["sizes"][lo]["cpu_ms"] - slope * lo
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="5,50,500", help="records a batch, comma-separated")
    ap.add_argument("--transactions", type=int, default=200, help="per size")
    args = ap.parse_args(argv)
    from bench.run import ensure_broker, exit_on_sigterm

    exit_on_sigterm()
    ensure_broker(print)  # as make bench does: its ports, never stopped here
    settings = Settings.from_env()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    res = asyncio.run(measure(settings, sizes, args.transactions))
    for n, r in res["sizes"].items():
        print(f"transaction of {n:4d} records (+{TREND_EVENTS} trend events, 1 changelog): "
              f"{r['cpu_ms']:.2f} ms CPU, {r['wall_ms']:.2f} ms wall")  # fmt: skip
    if "fixed_cpu_ms" in res:
        print(f"fixed CPU a transaction {res['fixed_cpu_ms']:.2f} ms; "
              f"one more record {res['per_record_cpu_us']:.1f} us")  # fmt: skip
    print(orjson.dumps(res, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
