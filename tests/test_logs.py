"""Structured logs: one JSON object per line with the fixed fields, and rate limits that suppress
and then report what they suppressed. A fake clock drives every time-dependent case."""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import orjson
import pytest

from pipeline.logs import (
    DlqBurstLog,
    JsonFormatter,
    RateLimitedLog,
    log_event,
    logging_config,
    partitions_summary,
    wire_app_logging,
)

SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger with its own JSON handler, so the test does not depend on the root config."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(f"newspipe.test.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.handlers.clear()


def lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n") or text == ""
    return [orjson.loads(line) for line in text.splitlines()]


def test_log_event_is_one_json_object_per_line_with_fixed_fields(capture):
    logger, stream = capture
    log_event(logger, logging.INFO, "record_emitted", article_id="a1", count=3)
    log_event(logger, "warning", "dlq_write_failed", code="not_json", offset=42)
    got = lines(stream)
    assert len(got) == 2
    first, second = got
    assert first["event"] == "record_emitted"
    assert first["level"] == "info"
    assert first["logger"] == logger.name
    assert first["article_id"] == "a1" and first["count"] == 3
    assert second["level"] == "warning" and second["code"] == "not_json"
    for line in got:
        assert SNAKE.match(line["event"])
        assert line["time"].endswith("Z")
        stamp = datetime.fromisoformat(line["time"].replace("Z", "+00:00"))
        assert stamp.utcoffset().total_seconds() == 0


def test_payload_text_stays_out_of_info_lines(capture):
    logger, stream = capture
    secret = "the full body of an article that must not be logged"
    log_event(logger, logging.INFO, "record_seen", article_id="a1", body=secret, text=b"x" * 10)
    log_event(logger, logging.INFO, "odd_field", note="y" * 5000)
    first, second = lines(stream)
    assert secret not in stream.getvalue()
    assert first["body_len"] == len(secret) and "body" not in first
    assert first["text_len"] == 10
    assert len(second["note"]) <= 257


def test_reserved_names_are_not_overwritten_and_newlines_stay_escaped(capture):
    logger, stream = capture
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        logger.exception("a library failed: %s", "multi\nline")
    log_event(logger, logging.INFO, "clash", level="x", time="y", event="z", logger="w")
    raw = stream.getvalue().splitlines()
    assert len(raw) == 2  # a traceback is one line, escaped
    lib, clash = (orjson.loads(line) for line in raw)
    assert lib["event"] == "log" and lib["level"] == "error"
    assert lib["message"] == "a library failed: multi\nline"
    assert lib["exc_type"] == "ValueError" and lib["exc"].endswith("ValueError: bad\nthing")
    assert clash["level"] == "info" and clash["event"] == "clash"
    assert clash["field_level"] == "x" and clash["field_logger"] == "w"


def test_disabled_level_writes_nothing(capture):
    logger, stream = capture
    logger.setLevel(logging.WARNING)
    log_event(logger, logging.INFO, "quiet")
    assert stream.getvalue() == ""


def test_logging_config_json_on_root_and_libraries_at_warning():
    config = logging_config("info")
    assert config["disable_existing_loggers"] is False
    assert config["root"]["level"] == "INFO"
    for name in ("faust", "aiokafka", "mode", "aiohttp.access"):
        assert config["loggers"][name]["level"] == "WARNING"
    assert logging_config("error")["loggers"]["faust"]["level"] == "ERROR"
    with pytest.raises(ValueError):
        logging_config("chatty")

    # applied for real (then undone): a Faust INFO line is dropped, its WARNING is one JSON line
    stream = io.StringIO()
    config["handlers"]["json"]["stream"] = stream
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    saved = {n: logging.getLogger(n).level for n in config["loggers"]}
    try:
        logging.config.dictConfig(config)
        logging.getLogger("faust.transport.consumer").info("Highwater table ...")
        logging.getLogger("aiokafka.consumer").warning("Topic %s is not available", "t1")
        log_event(logging.getLogger("newspipe.worker"), logging.INFO, "worker_ready", count=1)
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)
    got = lines(stream)
    assert [line["event"] for line in got] == ["log", "worker_ready"]
    assert got[0]["logger"] == "aiokafka.consumer" and got[0]["level"] == "warning"
    assert got[0]["message"] == "Topic t1 is not available"


def test_rate_limited_log_suppresses_and_reports_the_count(capture):
    logger, stream = capture
    clock = FakeClock()
    limited = RateLimitedLog(logger, burst=2, interval=10.0, clock=clock)
    results = [limited.log("rebalance", logging.INFO, "partitions_assigned", n=i) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert limited.suppressed("rebalance") == 3
    # another key has its own bucket
    assert limited.log("table_recovered:articles", logging.INFO, "table_recovered")
    # half the interval refills one token (2 per 10 s)
    clock.advance(5.0)
    assert limited.log("rebalance", logging.INFO, "partitions_assigned", n=5)
    assert not limited.log("rebalance", logging.INFO, "partitions_assigned", n=6)
    got = lines(stream)
    assert [line.get("n") for line in got] == [0, 1, None, 5]
    assert "suppressed" not in got[0] and "suppressed" not in got[1]
    assert got[3]["suppressed"] == 3
    # after a long quiet time the bucket is full again, never more than `burst`
    clock.advance(1000.0)
    assert [limited.log("rebalance", logging.INFO, "x") for _ in range(3)] == [True, True, False]
    assert lines(stream)[4]["suppressed"] == 1


def test_rate_limited_log_bounds_its_keys(capture):
    logger, _ = capture
    limited = RateLimitedLog(logger, burst=1, interval=60.0, max_keys=3, clock=FakeClock())
    for i in range(10):
        limited.log(f"k{i}", logging.INFO, "e")
    assert len(limited._buckets) == 3


def test_dlq_burst_logs_first_at_once_then_one_summary_per_interval(capture):
    logger, stream = capture
    clock = FakeClock()
    dlq = DlqBurstLog(logger, interval=10.0, clock=clock)
    dlq.note("not_json", "articles")  # first after quiet: logged at once
    for i in range(1000):  # a poison stream: no line per record
        dlq.note("not_json" if i % 3 else "schema.missing_field", "comments")
        clock.advance(0.001)
    assert len(lines(stream)) == 1
    assert dlq.pending == 1000
    assert not dlq.flush()  # the interval is not over
    clock.advance(10.0)
    assert dlq.flush()
    assert not dlq.flush()  # nothing pending
    first, burst = lines(stream)
    assert first["event"] == "dlq_burst" and first["level"] == "warning"
    assert first["total"] == 1 and first["codes"] == {"not_json": 1}
    assert burst["total"] == 1000
    assert burst["codes"] == {"not_json": 666, "schema.missing_field": 334}
    assert burst["streams"] == {"comments": 1000}
    assert burst["window_s"] == pytest.approx(11.0, abs=0.01)
    # the next burst is reported by note() itself once the interval is over
    dlq.note("empty")
    assert len(lines(stream)) == 2
    clock.advance(10.0)
    dlq.note("empty")
    assert lines(stream)[-1]["codes"] == {"empty": 2}
    dlq.note("too_large")
    assert dlq.flush(force=True)
    assert lines(stream)[-1]["codes"] == {"too_large": 1}


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class FakeSignal:
    def __init__(self) -> None:
        self.receivers: list = []

    def connect(self, fun):
        self.receivers.append(fun)
        return fun

    async def send(self, *args, **kwargs):
        for fun in self.receivers:
            await fun(self, *args, signal=self, **kwargs)


class FakeTable:
    def __init__(self) -> None:
        self.callbacks: list = []

    def on_recover(self, fun):
        self.callbacks.append(fun)
        return fun


class FakeApp:
    consumer_generation_id = 7

    def __init__(self) -> None:
        self.on_partitions_assigned = FakeSignal()
        self.on_partitions_revoked = FakeSignal()
        self.timers: list = []

    def timer(self, interval, name=None):
        def register(fun):
            self.timers.append((interval, name, fun))
            return fun

        return register


async def test_wire_app_logging_logs_rebalances_recoveries_and_dlq_bursts(capture):
    logger, stream = capture
    clock = FakeClock()
    app = FakeApp()
    articles, wrapped = FakeTable(), FakeTable()

    class Wrapper:  # a windowed table or the app's TableState: the table is `.table`
        table = wrapped

    dlq = wire_app_logging(
        app,
        {"articles": articles, "trends": Wrapper()},
        logger=logger,
        dlq_interval=5.0,
        clock=clock,
    )
    assigned = {TP("raw.articles", 0), TP("raw.articles", 1), TP("app-articles-changelog", 0)}
    for _ in range(8):  # a rebalance storm
        await app.on_partitions_assigned.send(assigned)
    await app.on_partitions_revoked.send({TP("raw.articles", 1)})
    await articles.callbacks[0]()
    await wrapped.callbacks[0]()
    dlq.note("not_json", "articles")
    dlq.note("not_json", "articles")
    timers = {name: (interval, fun) for interval, name, fun in app.timers}
    interval, flush = timers["newspipe-dlq-burst-log"]
    assert interval == 5.0
    await flush()  # interval not over: nothing yet
    clock.advance(5.0)
    await flush()  # the timer reports what a burst that stopped left pending

    got = lines(stream)
    events = [line["event"] for line in got]
    assert events.count("partitions_assigned") == 5  # burst of 5, the rest suppressed
    assigned_line = got[0]
    assert assigned_line["count"] == 3 and assigned_line["generation"] == 7
    assert assigned_line["topics"] == {"app-articles-changelog": 1, "raw.articles": 2}
    revoked = next(line for line in got if line["event"] == "partitions_revoked")
    assert revoked["count"] == 1
    recovered = [line for line in got if line["event"] == "table_recovered"]
    assert [line["table"] for line in recovered] == ["articles", "trends"]
    bursts = [line for line in got if line["event"] == "dlq_burst"]
    assert [b["total"] for b in bursts] == [1, 1]
    assert partitions_summary([]) == {}


@contextlib.contextmanager
def restored_root_logger() -> Iterator[logging.Logger]:
    """The root logger, its handlers and level put back afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        yield root
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@contextlib.contextmanager
def worker_logging(level: str = "info") -> Iterator[io.StringIO]:
    """The worker's logging config (`logging_config`) writing into a string, for the block."""
    stream = io.StringIO()
    config = logging_config(level)
    config["handlers"]["json"]["stream"] = stream
    with restored_root_logger():
        logging.config.dictConfig(config)
        yield stream


def test_kafka_connection_errors_are_counted_not_printed():
    """While a broker is away its clients log a line per failed connection; the broker watch
    reports them as one count (tests/test_stream_outage.py shows it through a real outage)."""
    from pipeline.logs import CONNECTION_NOISE

    CONNECTION_NOISE.take()
    with worker_logging() as stream:
        for _ in range(50):
            logging.getLogger("aiokafka.conn").error("Unable connect to node with id 1: %s", "x")
            logging.getLogger("aiokafka.cluster").error("Unable to update metadata from [1]")
        logging.getLogger("aiokafka.consumer").warning("Topic %s is not available", "t1")
        logging.getLogger("pipeline.stream.runner").error("Unable connect to node: but ours")
    got = lines(stream)
    assert [line["message"] for line in got] == ["Topic t1 is not available"]
    assert CONNECTION_NOISE.take() == 101 and CONNECTION_NOISE.take() == 0


async def test_faust_backpressure_warnings_are_counted_then_summarised_once_a_minute(capture):
    """Under load Faust warns at every step its table-write buffer is over 100 and mode whenever
    the commit timer outlasts its second: dropped, counted, and one line a minute says so; other
    warnings of the same loggers still print."""
    from pipeline.logs import LOAD_NOISE, LOAD_SUMMARY_S

    LOAD_NOISE.take()
    with worker_logging() as stream:
        producer = logging.getLogger("faust.transport.producer")
        for size in (640, 538, 101, 122):
            producer.warning(f"producer buffer full size {size}")
        logging.getLogger("mode.timers").warning(
            "Timer commit is overlapping (interval=1.0 runtime=2.6192033410006843)"
        )
        producer.warning("something else about the producer")
        logging.getLogger("pipeline.trends").warning("producer buffer full size 999")  # ours
    assert [line["message"] for line in lines(stream)] == [
        "something else about the producer", "producer buffer full size 999"]  # fmt: skip

    logger, out = capture
    app = FakeApp()
    wire_app_logging(app, {}, logger=logger)
    interval, summarise = {name: (i, fun) for i, name, fun in app.timers}["newspipe-load-noise-log"]
    assert interval == LOAD_SUMMARY_S == 60.0
    await summarise()
    await summarise()  # nothing dropped since: no line
    (line,) = lines(out)
    assert line["event"] == "trend_windows_behind" and line["level"] == "warning"
    assert line["suppressed"] == {"producer_buffer_full": 4, "timer_overlapping:commit": 1}
    assert line["largest_buffer"] == 640 and line["in_last_s"] == 60.0


def test_the_worker_writes_no_terminal_codes_into_its_log_at_any_level(tmp_path):
    """Faust's start-up spinner hides and shows the cursor with escape codes even when its
    output is not a terminal (a file, a container's log): they landed in front of the first
    JSON line when the worker logged at warning or above, and a log shipper then drops it."""
    from pipeline.app import Worker, create_app
    from pipeline.settings import Settings

    out = io.StringIO()
    app = create_app(Settings(app_id="spinner-test", state_dir=str(tmp_path)))
    worker = Worker(app, loglevel="warning", quiet=True, stdout=out, stderr=out,
                    shutdown_timeout_s=1.0)  # fmt: skip
    with restored_root_logger() as root:
        level = root.level
        worker.on_setup_root_logger(root, logging.WARNING)
        assert root.level == level  # nothing turned the root logger to DEBUG either
        logging.getLogger("faust.test").warning("a warning while starting")
        worker._on_startup_end_spinner()
    assert "\x1b" not in out.getvalue() and "\b" not in out.getvalue()
