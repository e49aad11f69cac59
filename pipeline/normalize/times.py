"""Timestamps in, one form out: UTC "YYYY-MM-DDTHH:MM:SSZ". Missing stays None (never invented)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from pipeline.errors import Rejected

MIN_YEAR = 1990


@lru_cache(maxsize=4096)
def iso_of_epoch(seconds: int) -> str:
    """Whole epoch seconds in the pipeline's one time format, cached: a batch's records share
    a handful of seconds, and strftime was 5% of a comment's processing time."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def utc_now() -> str:
    """The current time in the pipeline's one time format."""
    return iso_of_epoch(int(time.time()))


def _parse(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = value / 1000 if value > 1e11 else value  # epoch milliseconds or seconds
        return datetime.fromtimestamp(seconds, tz=UTC)
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        return datetime.fromisoformat(text)  # 3.11: "Z", offsets, date-only, space separator
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(text)  # RFC 2822 ("Thu, 04 Jul 2013 10:15:00 +0100")
    except (TypeError, ValueError, IndexError):
        return None


def parse_time(value: object, field: str, now: str | None = None) -> str | None:
    """ISO-8601 / RFC 2822 / epoch -> UTC ISO string; raises Rejected for junk or absurd years.

    Naive times are taken as UTC (the sources we know publish UTC or say their offset).
    """
    if value is None or value == "":
        return None
    try:
        parsed = _parse(value)
    except (OverflowError, OSError, ValueError):
        parsed = None
    if parsed is None:
        raise Rejected("time.invalid", f"cannot parse {field}: {str(value)[:80]!r}", field=field,
                       stage="normalize")  # fmt: skip
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        parsed = parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        raise Rejected("time.out_of_range", f"{field} out of range: {value!r}", field=field,
                       stage="normalize") from None  # fmt: skip
    max_year = int((now or utc_now())[:4]) + 1
    if not MIN_YEAR <= parsed.year <= max_year:
        raise Rejected("time.out_of_range", f"{field} year {parsed.year} outside {MIN_YEAR}.."
                       f"{max_year}", field=field, stage="normalize")  # fmt: skip
    return parsed.strftime("%Y-%m-%dT%H:%M:%SZ")
