"""Topic trends: counts of clean records per top-level IPTC topic in tumbling event-time windows.

Pure helpers. The stages (`pipeline.stream`) write each clean record's top-level topics to an
internal topic (`trend.events`, key `<stream>|<code>`) so each topic is counted by one worker;
the Faust agent in `pipeline.app` keeps the windowed counts and emits a window's running count to
`topic.trends` whenever it changes. The latest record per key
(`<window>|<stream>|<code>|<window start>`) is the window's count.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.contracts import SCHEMA_VERSION
from pipeline.normalize.times import epoch_of

WINDOWS: dict[str, int] = {"1m": 60, "1h": 3600}
# how long a closed window stays queryable (and in the table's changelog)
WINDOW_EXPIRES: dict[str, int] = {"1m": 2 * 3600, "1h": 3 * 24 * 3600}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_epoch(record: dict[str, Any]) -> float:
    """The record's event time as epoch seconds (the clean schema guarantees `event_time`)."""
    return epoch_of(record["event_time"])


class BatchCounts:
    """Counts a batch's clean records per (stream, topic, event minute) before they are sent.

    One trend event per topic and minute per batch instead of one per record: the counting
    stage adds `n`, and a minute lies wholly inside every window (1 m, 1 h), so nothing changes.
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, float], list[Any]] = {}

    def add(self, stream: str, record: dict[str, Any]) -> None:
        """Count a clean record once for each of its top-level topics (inherited ones count
        for comments). One pass over its tags: this runs for every clean record."""
        counts = self._counts
        minute = -1.0
        seen: list[str] | None = None
        for tag in record.get("tags") or ():
            if tag.get("level") != 1:
                continue
            code = tag["code"]
            if seen is None:
                seen = [code]
                minute = window_start(event_epoch(record), 60)
            elif code in seen:
                continue
            else:
                seen.append(code)
            slot = counts.get((stream, code, minute))
            if slot is None:
                counts[(stream, code, minute)] = [tag["label"], 1]
            else:
                slot[1] += 1

    def drain(self) -> list[tuple[str, float, str, int]]:
        out = [
            (f"{stream}|{code}", minute, label, n)
            for (stream, code, minute), (label, n) in self._counts.items()
        ]
        self._counts.clear()
        return out


def window_start(ts: float, size: int) -> float:
    return ts - ts % size


def trend_record(window: str, key: str, label: str, ts: float, count: int) -> dict[str, Any]:
    """The record for `topic.trends` (schemas/trend.schema.json)."""
    size = WINDOWS[window]
    stream, code = key.split("|", 1)
    start = window_start(ts, size)
    return {
        "schema_version": SCHEMA_VERSION,
        "window": window,
        "window_start": _iso(start),
        "window_end": _iso(start + size),
        "topic_code": code,
        "topic_label": label,
        "stream": stream,
        "count": count,
        "emitted_at": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def trend_key(record: dict[str, Any]) -> str:
    """Kafka key of a trend record: one key per window, stream, topic and window start."""
    return "|".join(
        (record["window"], record["stream"], record["topic_code"], record["window_start"])
    )
