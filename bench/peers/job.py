"""The trivial job every peer runs, and the report every peer process prints.

Standard library only: the Quix Streams and confluent-kafka peers import this file from their
own virtual environment, which has neither newspipe nor orjson, and the job must be the same
code in every row of the table.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from typing import Any

REPORT_PREFIX = "PEER-REPORT "


def peer_arguments(doc: str | None) -> argparse.ArgumentParser:
    """The command line every peer process takes from `bench.peers` (one topic, one group)."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--group", required=True)
    ap.add_argument("--total", type=int, required=True)
    return ap


class Job:
    """Decode a raw comment, lower-case and strip its text, drop ids already seen (in memory)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.duplicates = 0

    def __call__(self, value: bytes | dict[str, Any]) -> dict[str, Any] | None:
        event = json.loads(value) if isinstance(value, bytes | str) else dict(value)
        cid = str(event.get("source_comment_id", ""))
        if cid in self.seen:
            self.duplicates += 1
            return None
        self.seen.add(cid)
        event["text"] = str(event.get("text", "")).lower().strip()
        return event

    def encode(self, event: dict[str, Any]) -> bytes:
        return json.dumps(event, ensure_ascii=False).encode()


def cpu_seconds() -> float:
    """User + system CPU of this process, every thread (librdkafka's and Faust's included)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Clock:
    """First-record-to-last-ack timing and CPU of one peer process, in one shape for all."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.seen = 0
        self.t_start = time.monotonic()
        self.t_first: float | None = None
        self.cpu_first = 0.0

    def first(self) -> None:
        if self.t_first is None:
            self.t_first = time.monotonic()
            self.cpu_first = cpu_seconds()

    def report(self, done: int, **extra: Any) -> dict[str, Any]:
        t_done = time.monotonic()
        busy = t_done - (self.t_first or self.t_start)
        cpu = cpu_seconds() - self.cpu_first
        return {
            "events": done,
            "first_to_last_s": busy,
            "start_to_last_s": t_done - self.t_start,
            "events_per_s": done / busy if busy > 0 else float("nan"),
            "cpu_s": cpu,
            "cpu_us_per_event": cpu / done * 1e6 if done else float("nan"),
            "pid": os.getpid(),
            **extra,
        }


def emit(report: dict[str, Any]) -> None:
    """One line on stdout that the orchestrator (bench/peers/__main__.py) picks out."""
    sys.stdout.write(REPORT_PREFIX + json.dumps(report) + "\n")
    sys.stdout.flush()
