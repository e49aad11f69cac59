"""`--dry-run` as a plan: what the real run would send, broken down, without sending or sleeping.

The plan counts the events that pass the same admission as the real run (resume, filters,
validation), so its totals are the real run's totals; it only adds where they would go.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HOUR_MS = 3600 * 1000
# Up to two days of events the plan breaks down per hour; beyond that per day.
HOURLY_UP_TO = 48


@dataclass
class Plan:
    """Counts per stream, per target topic and per hour of event time (days when long)."""

    targets: list[str] = field(default_factory=list)
    rate: float | None = None
    by_stream: Counter[str] = field(default_factory=Counter)
    by_target: Counter[str] = field(default_factory=Counter)
    by_hour: Counter[int] = field(default_factory=Counter)  # epoch hour -> events
    undated: int = 0
    checked: str = ""  # what was verified about the targets (or why not)

    def add(self, stream: str, target: str, event_ms: int | None) -> None:
        self.by_stream[stream] += 1
        self.by_target[target] += 1
        if event_ms is None:
            self.undated += 1
        else:
            self.by_hour[event_ms // HOUR_MS] += 1

    @property
    def total(self) -> int:
        return sum(self.by_stream.values())

    def estimated_seconds(self) -> float | None:
        """At `--rate` the run cannot be faster than total/rate; unthrottled it is unknown."""
        return self.total / self.rate if self.rate else None

    def by_time(self) -> tuple[str, dict[str, int]]:
        """("hour"|"day", label -> events), hours when the events span at most two days."""
        if not self.by_hour:
            return "day", {}
        hours = sorted(self.by_hour)
        if hours[-1] - hours[0] < HOURLY_UP_TO:
            return "hour", {_label(h, "%Y-%m-%dT%H:00Z"): self.by_hour[h] for h in hours}
        days: Counter[str] = Counter()
        for h in hours:
            days[_label(h, "%Y-%m-%d")] += self.by_hour[h]
        return "day", dict(sorted(days.items()))

    def as_dict(self) -> dict[str, Any]:
        unit, counts = self.by_time()
        seconds = self.estimated_seconds()
        return {
            "would_produce": self.total,
            "targets": self.targets,
            "by_stream": dict(sorted(self.by_stream.items())),
            "by_target": dict(sorted(self.by_target.items())),
            f"by_{unit}": counts,
            "undated": self.undated,
            "rate": self.rate,
            "estimated_seconds": round(seconds, 1) if seconds is not None else None,
            "targets_checked": self.checked,
        }

    def lines(self) -> list[str]:
        """The plan as text lines, for the operator before a long backfill."""
        out = [f"target topics: {', '.join(self.targets) or '(none)'}"]
        if self.checked:
            out.append(f"  {self.checked}")
        out.append(f"would produce {self.total:,} events")
        for name, n in sorted(self.by_stream.items()):
            out.append(f"  stream {name}: {n:,}")
        for name, n in sorted(self.by_target.items()):
            out.append(f"  into {name}: {n:,}")
        unit, counts = self.by_time()
        if counts:
            out.append(f"by {unit} of event time (UTC):")
            out.extend(f"  {label}: {n:,}" for label, n in counts.items())
        if self.undated:
            out.append(f"  no event time: {self.undated:,}")
        seconds = self.estimated_seconds()
        if seconds is not None:
            out.append(f"estimated duration at --rate {self.rate:,.0f}/s: {duration_text(seconds)}")
        else:
            out.append("estimated duration: no --rate, as fast as the broker acknowledges")
        return out


def _label(hour: int, fmt: str) -> str:
    return datetime.fromtimestamp(hour * 3600, tz=UTC).strftime(fmt)


def duration_text(seconds: float) -> str:
    """h:mm:ss, or m:ss under an hour."""
    s = round(seconds)
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
