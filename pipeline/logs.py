"""Structured logs: one JSON object per line, and rate limits so a bad stream cannot flood them.

Every line has `time` (UTC, ISO-8601), `level`, `event` (a short snake_case name), `logger`, and
the event's own fields (ids, counts, codes). Payload text never goes into a line below WARNING:
fields named like payloads are replaced by their length, and long strings are cut.

Lines from other libraries (Faust, mode, aiokafka, aiohttp) keep their text under `message`,
with `event` = "log". Their chattiest loggers are set to WARNING.

The worker installs this through Faust (`faust.App(logging_config=logging_config(level))`),
because Faust's worker replaces the root logger's handlers when it starts.
"""

from __future__ import annotations

import logging
import re
import time
import traceback
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

#: Loggers that log per message, per fetch or per request at INFO; kept at WARNING.
CHATTY_LOGGERS = (
    "faust",
    "mode",
    "aiokafka",
    "kafka",
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "asyncio",
    "venusian",
)

#: Field names that may carry record content; below WARNING only their length is logged.
PAYLOAD_FIELDS = frozenset(
    {"payload", "value", "body", "text", "title", "raw", "record", "content", "message_text"}
)
MAX_FIELD_CHARS = 256
RESERVED = ("time", "level", "event", "logger")
_FIELDS_ATTR = "newspipe_fields"
_EVENT_ATTR = "newspipe_event"


def _utc_iso(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


def _clean_value(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_FIELD_CHARS:
        return value[:MAX_FIELD_CHARS] + "…"
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    return value


def _clean_fields(fields: Mapping[str, Any], levelno: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in fields.items():
        if levelno < logging.WARNING and key in PAYLOAD_FIELDS:
            out[f"{key}_len"] = len(value) if hasattr(value, "__len__") else None
            continue
        out[f"field_{key}" if key in RESERVED else key] = _clean_value(value)
    return out


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object (no newlines inside: tracebacks are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _utc_iso(record.created),
            "level": record.levelname.lower(),
        }
        event = getattr(record, _EVENT_ATTR, None)
        fields = getattr(record, _FIELDS_ATTR, None)
        if event is not None:
            line["event"] = event
            line["logger"] = record.name
            line.update(fields or {})
        else:
            line["event"] = "log"
            line["logger"] = record.name
            try:
                message = record.getMessage()
            except Exception:  # a broken %-format in someone else's log call
                message = str(record.msg)
            line["message"] = message
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"] = record.exc_info[0].__name__
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


# What Kafka clients log, line after line, while a broker is away: it says nothing the broker
# watch (pipeline.stream.runner) does not say once, with a count.
_CONNECTION_NOISE = re.compile(
    r"Unable connect to node|Unable to update metadata|Unable to request metadata|"
    r"Failed fetch messages|Unable to connect|Connection at .* closed|connection.*(?:lost|reset)|"
    r"[Cc]oordinator .*(?:dead|unavailable|not available)|NodeNotReadyError|"
    r"KafkaConnectionError|RequestTimedOutError|Error sending .* to node|Heartbeat failed|"
    r"Got error produce response|Failed to send|Marking the coordinator dead|"
    r"Error fetching offsets|Unable to fetch|Error in .*:.*ConnectionError",
)


class ConnectionNoise(logging.Filter):
    """Drops Kafka clients' connection errors (warnings and up) and counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING and record.name.startswith(_KAFKA_LOGGERS):
            if _CONNECTION_NOISE.search(record.getMessage()):
                self.suppressed += 1
                return False
        return True

    def take(self) -> int:
        """How many lines were dropped since the last call."""
        count, self.suppressed = self.suppressed, 0
        return count


_KAFKA_LOGGERS = ("aiokafka", "faust", "mode", "pipeline.stream")
CONNECTION_NOISE = ConnectionNoise()


def connection_noise() -> ConnectionNoise:
    """The process's one filter (a dictConfig factory)."""
    return CONNECTION_NOISE


# What Faust and mode log, line after line, while a busy worker's trend windows run behind:
# Faust holds the tables' changelog writes in a buffer and warns at every step over 100 waiting,
# and mode warns whenever a timer (Faust's offset commit, which first drains that buffer) outlasts
# its interval. Tens of lines a minute under load, each saying the same thing.
_LOAD_NOISE = re.compile(r"^producer buffer full size (\d+)|^Timer (\S+) is overlapping")


class LoadNoise(logging.Filter):
    """Drops those warnings and keeps their count and the largest buffer seen; the worker logs
    them as one `trend_windows_behind` line a minute (`wire_app_logging`)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self.largest = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING or not record.name.startswith(("faust", "mode")):
            return True
        found = _LOAD_NOISE.match(record.getMessage())
        if found is None:
            return True
        size, timer = found.groups()
        if size is not None:
            self.counts["producer_buffer_full"] += 1
            self.largest = max(self.largest, int(size))
        else:
            self.counts[f"timer_overlapping:{timer}"] += 1
        return False

    def take(self) -> dict[str, Any]:
        """What was dropped since the last call: counts by kind and the largest buffer; empty
        when nothing was."""
        if not self.counts:
            return {}
        out: dict[str, Any] = {"suppressed": dict(sorted(self.counts.items()))}
        if self.largest:
            out["largest_buffer"] = self.largest
        self.counts.clear()
        self.largest = 0
        return out


LOAD_NOISE = LoadNoise()
LOAD_SUMMARY_S = 60.0  # how often the worker reports what LoadNoise dropped


def load_noise() -> LoadNoise:
    """The process's one load-noise filter (a dictConfig factory)."""
    return LOAD_NOISE


def logging_config(level: str = "info") -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: JSON lines on stderr, chatty libraries at WARNING."""
    root_level = logging.getLevelName(level.upper())
    if not isinstance(root_level, int):
        raise ValueError(f"unknown log level: {level!r}")
    quiet_level = max(logging.WARNING, root_level)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {
            "kafka_noise": {"()": connection_noise},
            "load_noise": {"()": load_noise},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["kafka_noise", "load_noise"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            name: {"level": logging.getLevelName(quiet_level), "propagate": True}
            for name in CHATTY_LOGGERS
        },
        "root": {"level": logging.getLevelName(root_level), "handlers": ["json"]},
    }


def log_event(logger: logging.Logger, level: int | str, event: str, /, **fields: Any) -> None:
    """Log `event` with `fields` as one JSON line (cheap when the level is disabled)."""
    levelno = level if isinstance(level, int) else logging.getLevelName(level.upper())
    if not logger.isEnabledFor(levelno):
        return
    logger.log(
        levelno,
        event,
        extra={_EVENT_ATTR: event, _FIELDS_ATTR: _clean_fields(fields, levelno)},
    )


class RateLimitedLog:
    """A token bucket per key: at most `burst` lines at once, refilled at `burst` per `interval`.

    Suppressed lines are counted per key; the next line emitted for that key carries
    `suppressed=K`. Keys are bounded (`max_keys`, least recently used dropped).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        burst: int = 5,
        interval: float = 60.0,
        max_keys: int = 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("burst must be >= 1 and interval > 0")
        self.logger = logger
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self.clock = clock
        # key -> [tokens, last refill time, suppressed count]
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def allow(self, key: str) -> tuple[bool, int]:
        """Take a token for `key`: (allowed, lines suppressed since the last allowed one)."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = [float(self.burst), now, 0]
            self._buckets[key] = bucket
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            elapsed = max(0.0, now - bucket[1])
            bucket[0] = min(float(self.burst), bucket[0] + elapsed * self.burst / self.interval)
            bucket[1] = now
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            suppressed = int(bucket[2])
            bucket[2] = 0
            return True, suppressed
        bucket[2] += 1
        return False, 0

    def log(self, key: str, level: int | str, event: str, /, **fields: Any) -> bool:
        """Log like `log_event` unless `key` is over its rate; True when a line was written."""
        allowed, suppressed = self.allow(key)
        if not allowed:
            return False
        if suppressed:
            fields["suppressed"] = suppressed
        log_event(self.logger, level, event, **fields)
        return True

    def suppressed(self, key: str) -> int:
        bucket = self._buckets.get(key)
        return int(bucket[2]) if bucket else 0


class DlqBurstLog:
    """Aggregates dead letters into at most one `dlq_burst` line per `interval`.

    `note(code)` is cheap (a counter increment). The first dead letter after a quiet interval is
    logged at once; later ones are summed and logged, with counts per code, when the interval is
    over: on the next `note` or on `flush()` (call it from a periodic timer so a burst that
    stops is still reported).
    """

    def __init__(
        self,
        logger: logging.Logger,
        *,
        interval: float = 10.0,
        level: int = logging.WARNING,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.logger = logger
        self.interval = interval
        self.level = level
        self.clock = clock
        self._codes: Counter[str] = Counter()
        self._streams: Counter[str] = Counter()
        self._window_start: float | None = None
        self._next_at = float("-inf")

    def note(self, code: str, stream: str | None = None) -> None:
        if self._window_start is None:
            self._window_start = self.clock()
        self._codes[code] += 1
        if stream:
            self._streams[stream] += 1
        self.flush()

    def flush(self, force: bool = False) -> bool:
        """Write the pending counts once the interval is over (or `force`); True if written."""
        if not self._codes:
            return False
        now = self.clock()
        if now < self._next_at and not force:
            return False
        start = self._window_start if self._window_start is not None else now
        log_event(
            self.logger,
            self.level,
            "dlq_burst",
            total=sum(self._codes.values()),
            codes=dict(self._codes.most_common()),
            streams=dict(self._streams),
            window_s=round(now - start, 3),
        )
        self._codes.clear()
        self._streams.clear()
        self._window_start = None
        self._next_at = now + self.interval
        return True

    @property
    def pending(self) -> int:
        return sum(self._codes.values())


def partitions_summary(tps: Any) -> dict[str, int]:
    """{topic: number of partitions} for a set of Faust TPs (for rebalance lines)."""
    counts: Counter[str] = Counter()
    for tp in tps:
        counts[tp.topic] += 1
    return dict(sorted(counts.items()))


def wire_app_logging(
    app: Any,
    tables: Mapping[str, Any],
    *,
    logger: logging.Logger | None = None,
    dlq_interval: float = 10.0,
    clock: Callable[[], float] = time.monotonic,
) -> DlqBurstLog:
    """Connect rebalance and recovery log lines to a Faust app; returns the app's DLQ burst log.

    Call in `create_app` before the app starts. Lines (all rate limited per key):
    `partitions_assigned` / `partitions_revoked` (counts per topic), `table_recovered` per table,
    `dlq_burst` (feed it with `.note(code, stream)`; a timer flushes what is pending), and
    `trend_windows_behind` once a minute while `LoadNoise` dropped Faust's backpressure lines.
    """
    log = logger or logging.getLogger("newspipe.worker")
    limited = RateLimitedLog(log, burst=5, interval=60.0, clock=clock)
    dlq = DlqBurstLog(log, interval=dlq_interval, clock=clock)

    def generation() -> Any:
        return getattr(app, "consumer_generation_id", None)

    async def on_assigned(sender: Any, assigned: Any, **_: Any) -> None:
        limited.log(
            "partitions_assigned",
            logging.INFO,
            "partitions_assigned",
            count=len(assigned),
            topics=partitions_summary(assigned),
            generation=generation(),
        )

    async def on_revoked(sender: Any, revoked: Any, **_: Any) -> None:
        limited.log(
            "partitions_revoked",
            logging.INFO,
            "partitions_revoked",
            count=len(revoked),
            topics=partitions_summary(revoked),
            generation=generation(),
        )

    app.on_partitions_assigned.connect(on_assigned)
    app.on_partitions_revoked.connect(on_revoked)

    def recovered(name: str, table: Any) -> Callable[[], Any]:
        async def on_recover() -> None:
            fields: dict[str, Any] = {"table": name, "generation": generation()}
            try:
                recovery = app.tables.recovery
                fields["active_partitions"] = len(recovery.actives_for_table.get(table, ()))
                fields["standby_partitions"] = len(recovery.standbys_for_table.get(table, ()))
                started = recovery._recovery_started_at
                if started is not None:
                    fields["seconds"] = round(max(0.0, time.monotonic() - started), 3)
            except Exception:  # diagnostics only: never fail recovery for a log line
                pass
            limited.log(f"table_recovered:{name}", logging.INFO, "table_recovered", **fields)

        return on_recover

    for name, table in tables.items():
        # accepts a Faust table, a windowed wrapper or an adapter holding one (both `.table`)
        target = table if hasattr(table, "on_recover") else table.table
        target.on_recover(recovered(name, target))

    @app.timer(dlq_interval, name="newspipe-dlq-burst-log")
    async def flush_dlq_log() -> None:
        dlq.flush()

    @app.timer(LOAD_SUMMARY_S, name="newspipe-load-noise-log")
    async def flush_load_noise() -> None:
        noise = LOAD_NOISE.take()
        if noise:
            log_event(log, logging.WARNING, "trend_windows_behind", in_last_s=LOAD_SUMMARY_S,
                      **noise)  # fmt: skip

    return dlq
