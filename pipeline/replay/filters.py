"""Which events a replay keeps: event-time window, source name, stream."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.replay.events import Event, parse_time_ms


@dataclass(frozen=True)
class EventFilter:
    """`since` inclusive, `until` exclusive (epoch ms), so adjacent windows never overlap."""

    since_ms: int | None = None
    until_ms: int | None = None
    source: str | None = None
    stream: str | None = None

    @classmethod
    def from_text(cls, since: str | None = None, until: str | None = None,
                  source: str | None = None, stream: str | None = None) -> EventFilter:  # fmt: skip
        return cls(_time_arg(since), _time_arg(until), source, stream)

    @property
    def active(self) -> bool:
        return any(v is not None for v in (self.since_ms, self.until_ms, self.source, self.stream))

    def keeps(self, event: Event) -> bool:
        if self.stream is not None and event.stream != self.stream:
            return False
        if self.source is not None and event.source() != self.source:
            return False
        if self.since_ms is None and self.until_ms is None:
            return True
        t = event.event_time_ms()
        if t is None:
            return False  # a window was asked for and this event cannot show it is inside
        if self.since_ms is not None and t < self.since_ms:
            return False
        return self.until_ms is None or t < self.until_ms


def _time_arg(text: str | None) -> int | None:
    if text is None:
        return None
    found = parse_time_ms(text)
    if found is None:
        raise ValueError(f"not an ISO-8601 time: {text!r} (e.g. 2026-11-01T00:00:00Z)")
    return found
