"""What a replay source yields: one raw event with where it came from, or a bad line with why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipeline.topics import ARTICLES, COMMENTS

# Event-time fields in the raw contracts (schemas/README.md), best first.
TIME_FIELDS = ("published_at", "posted_at", "captured_at")


@dataclass(slots=True)
class Event:
    """One raw event to replay; `origin`/`position` (file and line, or topic:partition and offset)
    are what the checkpoint records, so a resumed run knows exactly what was acknowledged."""

    stream: str
    value: bytes
    key: bytes | None
    timestamp_ms: int | None
    origin: str
    position: int
    record: dict[str, Any] | None = None
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    topic: str | None = None

    @property
    def where(self) -> str:
        return f"{self.origin}:{self.position}"

    def event_time_ms(self) -> int | None:
        """The record's own time when it has one, else the archived Kafka timestamp."""
        if self.record is not None:
            found = record_time_ms(self.record)
            if found is not None:
                return found
        return self.timestamp_ms

    def source(self) -> str | None:
        if self.record is None:
            return None
        src = self.record.get("source")
        return src if isinstance(src, str) else None


@dataclass(slots=True, frozen=True)
class BadLine:
    """A line that cannot become an event: reported as file:line with the reason, then skipped."""

    origin: str
    position: int
    reason: str

    @property
    def where(self) -> str:
        return f"{self.origin}:{self.position}"

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]


def parse_time_ms(value: Any) -> int | None:
    """ISO-8601 (a trailing Z allowed; naive means UTC) to epoch ms; None when unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def record_time_ms(record: dict[str, Any]) -> int | None:
    for name in TIME_FIELDS:
        found = parse_time_ms(record.get(name))
        if found is not None:
            return found
    return None


def guess_stream(record: dict[str, Any]) -> str:
    """A comment has text and no title; anything else is treated as an article."""
    return COMMENTS if "text" in record and "title" not in record else ARTICLES


def stream_of_topic(topic: str) -> str | None:
    if topic.endswith("raw.comments"):
        return COMMENTS
    if topic.endswith("raw.articles"):
        return ARTICLES
    return None


def key_for(stream: str, record: dict[str, Any] | None) -> bytes | None:
    """The article id, as `newspipe ingest` keys it, so copies meet their dedup state."""
    if record is None:
        return None
    from pipeline.ingest import page_article_id

    try:
        if stream == ARTICLES:
            return page_article_id(record).encode()
        if isinstance(record.get("article_id"), str) and record["article_id"]:
            return record["article_id"].encode()
        return page_article_id(
            {"url": record.get("article_url"), "source": record.get("source"),
             "title": record.get("article_title")}
        ).encode()  # fmt: skip
    except (ValueError, TypeError, AttributeError):
        return None  # the worker will dead-letter it with the real reason
