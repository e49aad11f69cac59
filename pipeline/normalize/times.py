"""Timestamps in, one form out: UTC "YYYY-MM-DDTHH:MM:SSZ". Missing stays None (never invented).

Two rules: a time the producer put in its event must be ISO-8601, RFC 2822 or epoch (`parse_time`,
junk is the producer's bug and dead-letters); a time that extraction *found* on a page comes in
every shape sites print, so `parse_found_time` also asks dateutil and drops what it cannot read.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

from dateutil import parser as dateutil_parser
from newspipe_native import epoch_of_iso, iso_utc

from pipeline.errors import Rejected

MIN_YEAR = 1990


def iso_of_epoch(seconds: int) -> str:
    """Whole epoch seconds in the pipeline's one time format. Formatted by compiled code
    (native/src/records.rs `iso_utc`) from 1970 to the year 9999, which costs less than a
    cache lookup would; `_py_iso_of_epoch` (the reference) formats the others."""
    out = iso_utc(seconds)
    return _py_iso_of_epoch(seconds) if out is None else out


def epoch_of(text: str) -> float:
    """Epoch seconds of an ISO-8601 time (naive means UTC); ValueError when it is not one.
    The pipeline's own format ("YYYY-MM-DDTHH:MM:SSZ", every clean record's `event_time`) is
    read by compiled code (`epoch_of_iso`): dedup, moderation and the trend counts each read
    a record's time, and `datetime.fromisoformat` was most of what that cost."""
    fast = epoch_of_iso(text)
    if fast is not None:
        return fast
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def _py_iso_of_epoch(seconds: int) -> str:
    """`iso_of_epoch` in Python: the reference."""
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


# Zone abbreviations that pages print and dateutil does not know by itself (it knows UTC/GMT/Z).
_ZONES = {
    "EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
    "MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
    "BST": 3600, "IST": 19800, "CET": 3600, "CEST": 7200, "EET": 7200, "EEST": 10800,
    "AEST": 36000, "AEDT": 39600, "JST": 32400,
}  # fmt: skip
_YEAR = re.compile(r"(?<!\d)(?:19|20)\d\d(?!\d)")
_DIGITS = re.compile(r"\d{9,13}(?:\.\d+)?")
# page furniture around a printed date: "Updated:", "Published on", "Posted at"
_LEAD_IN = re.compile(
    r"^\s*(?:(?:last\s+)?updated|published|posted|first published|modified|date)"
    r"(?:\s+(?:on|at))?\s*[:\-]?\s*",
    re.IGNORECASE,
)


def _parse_loose(text: str) -> datetime | None:
    """What dateutil reads, but only with a year in it: dateutil fills a missing year (or day)
    from today, and a page date of "18 November" would silently become this year's."""
    if _DIGITS.fullmatch(text):
        return _parse(float(text))
    text = _LEAD_IN.sub("", text)
    if not _YEAR.search(text):
        return None
    try:
        return dateutil_parser.parse(text, tzinfos=_ZONES)
    except (ValueError, OverflowError, TypeError):
        return None


def parse_found_time(
    value: object, field: str, now: str | None = None
) -> tuple[str | None, str | None]:
    """A time found by extraction -> (UTC ISO string or None, a note when it had to be dropped).

    Never raises: an unreadable or absurd date found on a page is not a reason to lose the page.
    """
    if value is None or value == "":
        return None, None
    try:
        return parse_time(value, field, now), None
    except Rejected as strict:
        if strict.code != "time.invalid":
            return None, f"{field} dropped: {strict.message}"
    parsed = _parse_loose(str(value).strip()) if isinstance(value, str) else None
    if parsed is not None:
        try:
            return parse_time(parsed.isoformat(), field, now), None
        except Rejected as exc:
            return None, f"{field} dropped: {exc.message}"
    return None, f"{field} dropped: cannot parse {str(value)[:80]!r}"


def parse_time(value: object, field: str, now: str | None = None) -> str | None:
    """ISO-8601 / RFC 2822 / epoch -> UTC ISO string; raises Rejected for junk or absurd years.

    Naive times are taken as UTC (the sources we know publish UTC or say their offset).
    A short string is parsed once per (string, field, year of `now`): a batch's records repeat
    their times (a page's capture time, comments posted in the same second), and the answer
    depends on nothing else. Rejections are not cached (lru_cache does not keep exceptions)."""
    if value is None or value == "":
        return None
    if type(value) is str and len(value) <= 64:
        return _parse_time_str(value, field, (now or utc_now())[:4])
    return _py_parse_time(value, field, now)


@lru_cache(maxsize=4096)
def _parse_time_str(value: str, field: str, year: str) -> str | None:
    return _py_parse_time(value, field, year)


def _py_parse_time(value: object, field: str, now: str | None = None) -> str | None:
    """`parse_time` without the cache: the reference."""
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
