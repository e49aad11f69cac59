"""A real Prometheus scrapes a real worker: the counters it stores add up for a known mix of
events sent through the real broker, the gauges and the histogram are there, and the project's
alert rules load.

Prometheus is Debian's `prometheus` package (`bash scripts/install_tools.sh` installs it). A
missing binary skips with the reason, except with CI=true, where it fails. Everything listens on
127.0.0.1 only; the test stops its Prometheus itself.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from pipeline.topics import TopicNames
from tests.conftest import ROOT, free_port
from tests.test_stream_bad_input import GOOD_ARTICLE, GOOD_COMMENT, fill, produce

ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
IN_CI = os.environ.get("CI", "").lower() == "true"
N_ARTICLES, N_COMMENTS, N_REDELIVERED = 20, 50, 5
INVALID = [
    ("articles", b"k", b"this is not json", "not_json"),
    ("articles", b"k", b"[1, 2, 3]", "not_object"),
    ("articles", b"k", b"", "empty"),
    (
        "comments",
        b"k",
        orjson.dumps({k: v for k, v in fill(GOOD_COMMENT, 900).items() if k != "text"}),
        "schema.missing_field",
    ),
]


def prometheus_binary() -> str:
    exe = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None
    )
    if exe is None:
        message = "prometheus is not installed (run `bash scripts/install_tools.sh`)"
        if IN_CI:
            pytest.fail(f"CI=true: {message}", pytrace=False)
        pytest.skip(message)
    return exe


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read())


class Prometheus:
    """One Prometheus process on 127.0.0.1:<port> with its own config and storage."""

    def __init__(self, exe: str, workdir: Path, target_port: int) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        self.log = workdir / "prometheus.log"
        config = {  # JSON is YAML: no YAML library needed to write it
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [
                {
                    "job_name": "newspipe",
                    "metrics_path": "/metrics",
                    "scrape_timeout": "1s",
                    "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}],
                }
            ],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(json.dumps(config, indent=2))
        self.args = [
            exe,
            f"--config.file={self.config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=1h",
            "--log.level=warn",
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Prometheus:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            self.args, stdout=out, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.base}/-/ready", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.3)
        raise AssertionError(f"prometheus not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"{self.base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = http_json(url)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        """The single value of `expr`, None when it has no series (yet)."""
        result = self.query(expr)
        if not result:
            return None
        assert len(result) == 1, result
        return float(result[0]["value"][1])

    def by_label(self, expr: str, label: str) -> dict[str, float]:
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(expr)}


@pytest.fixture
def prometheus_exe() -> str:
    return prometheus_binary()


@pytest.fixture
def prometheus_for(tmp_path: Path, prometheus_exe: str) -> Iterator:
    started: list[Prometheus] = []

    def make(target_port: int) -> Prometheus:
        workdir = tmp_path / f"prometheus-{len(started)}"
        workdir.mkdir()
        prom = Prometheus(prometheus_exe, workdir, target_port)
        started.append(prom)
        return prom.start()

    yield make
    for prom in started:
        prom.stop()


def known_mix() -> list[tuple[str, bytes | None, bytes | None]]:
    """20 articles, 50 comments, 5 exact redeliveries of articles, 4 invalid events."""
    articles = [
        (f"a{n}".encode(), orjson.dumps(fill({**GOOD_ARTICLE, "body": body(n)}, n)))
        for n in range(N_ARTICLES)
    ]
    events: list[tuple[str, bytes | None, bytes | None]] = [("articles", k, v) for k, v in articles]
    for n in range(N_COMMENTS):
        comment = fill(GOOD_COMMENT, n)
        comment["article_url"] = f"https://example.com/news/{n % N_ARTICLES}"
        comment["text"] = f"Reader {n} writes: " + body(1000 + n)
        events.append(("comments", f"a{n % N_ARTICLES}".encode(), orjson.dumps(comment)))
    # the same bytes and key again: Kafka redelivery as the deduper sees it
    events += [("articles", k, v) for k, v in articles[:N_REDELIVERED]]
    for i, bad in enumerate(INVALID):  # spread the invalid ones through the stream
        events.insert(10 + 15 * i, bad[:3])
    return events


WORDS = (
    "council budget river harbour election school museum rail festival court weather market "
    "bridge library hospital airport stadium farm energy forest ferry tram theatre orchestra "
    "vaccine satellite glacier volcano drought harvest tariff pension strike merger"
).split()


def body(n: int) -> str:
    """Distinct, deterministic text, so no record is a near duplicate of another."""
    picked = [WORDS[(n * 7 + i * i * 3 + i) % len(WORDS)] for i in range(14)]
    return f"Report {n}: " + " ".join(picked) + f". Item {n * 37 % 101} of the day."


def wait_for(check, timeout: float, what: str, prom: Prometheus) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(
        f"{what} not seen in {timeout}s; last: {last}\n{prom.log.read_text()[-2000:]}"
    )


@pytest.mark.kafka
def test_prometheus_scrapes_counters_that_add_up(topics, worker_factory, prometheus_for):
    settings = topics
    worker = worker_factory(settings).start()
    worker.wait_ready()
    prom = prometheus_for(settings.web_port)

    events = known_mix()
    sent = len(events)
    assert sent == N_ARTICLES + N_COMMENTS + N_REDELIVERED + len(INVALID)
    asyncio.run(produce(settings, events))

    totals = {
        "in": "sum(newspipe_records_in_total)",
        "out": "sum(newspipe_records_out_total)",
        "dup": "sum(newspipe_duplicates_total)",
        "dlq": "sum(newspipe_dead_letters_total)",
    }

    def final_values() -> dict[str, float] | None:
        got = {name: prom.scalar(expr) for name, expr in totals.items()}
        if got["in"] != sent or got["out"] is None or got["dup"] is None or got["dlq"] is None:
            return None
        if got["out"] + got["dup"] + got["dlq"] != got["in"]:
            return None  # scraped in the middle of a batch; the next scrape settles it
        return got

    got = wait_for(final_values, 120, "the final counters in Prometheus", prom)
    assert got["in"] == sent
    assert got["out"] + got["dup"] + got["dlq"] == got["in"]
    assert got["out"] == N_ARTICLES + N_COMMENTS
    assert got["dup"] == N_REDELIVERED
    assert prom.by_label("sum by (kind) (newspipe_duplicates_total)", "kind") == {
        "duplicate.exact": float(N_REDELIVERED)
    }
    assert prom.by_label("sum by (code) (newspipe_dead_letters_total)", "code") == {
        code: 1.0 for *_, code in INVALID
    }
    assert prom.by_label("sum by (stream) (newspipe_records_in_total)", "stream") == {
        "articles": float(N_ARTICLES + N_REDELIVERED + 3),
        "comments": float(N_COMMENTS + 1),
    }
    assert prom.by_label('sum by (mode) (newspipe_records_in_total{job="newspipe"})', "mode") == {
        "live": float(sent)
    }

    assert prom.scalar("newspipe_ready") == 1.0
    info = prom.query("newspipe_worker_info")
    assert len(info) == 1 and float(info[0]["value"][1]) == 1.0
    assert info[0]["metric"]["version"] and "kafka_version" not in info[0]["metric"]
    stage_count = prom.scalar("sum(newspipe_stage_seconds_count)")
    assert stage_count is not None and stage_count > 0
    assert prom.scalar('up{job="newspipe"}') == 1.0

    # lag per raw partition: present for every partition, and back to 0 once committed
    seen_lags: list[dict[str, float]] = [{}]

    def lag_settled() -> dict[str, float] | None:
        lags = seen_lags[0] = {
            f"{r['metric']['topic']}/{r['metric']['partition']}": float(r["value"][1])
            for r in prom.query("newspipe_consumer_lag")
        }
        raw = {f"{topic}/{p}" for topic in (names.raw_articles, names.raw_comments) for p in parts}
        if not raw <= lags.keys() or any(lags.values()):
            return None
        return lags

    names = TopicNames(settings.topic_prefix)
    parts = range(settings.partitions)

    try:
        lags = wait_for(lag_settled, 60, "consumer lag back to 0", prom)
    except AssertionError as exc:
        raise AssertionError(f"last lags {seen_lags[0]}") from exc
    assert not any("changelog" in key for key in lags)

    # the project's alert rules are loaded and evaluated
    expected = set(re.findall(r"^\s*- alert:\s*(\S+)", ALERTS.read_text(), re.MULTILINE))
    assert expected
    rules = http_json(f"{prom.base}/api/v1/rules")
    assert rules["status"] == "success"
    loaded = {
        rule["name"]
        for group in rules["data"]["groups"]
        for rule in group["rules"]
        if rule["type"] == "alerting"
    }
    assert loaded == expected
    health = {
        rule["name"]: rule["health"] for group in rules["data"]["groups"] for rule in group["rules"]
    }
    assert all(h in ("ok", "unknown") for h in health.values()), health

    # one sample for the eye (shown with `pytest -s`)
    for expr in (*totals.values(), "sum by (code) (newspipe_dead_letters_total)"):
        print(expr, "=>", [(r["metric"], r["value"][1]) for r in prom.query(expr)])


# --- the gauges' arithmetic, on a stand-in for the stages' consumer (no broker needed) --------


class _TP(tuple):
    topic = property(lambda self: self[0])
    partition = property(lambda self: self[1])


class _Flag:
    def __init__(self, value: bool) -> None:
        self.value = value

    def is_set(self) -> bool:
        return self.value


class _FakeConsumer:
    """What StageRunner reads of an AIOKafkaConsumer: assignment, high watermarks, positions."""

    def __init__(self, highwaters: dict, positions: dict) -> None:
        from types import SimpleNamespace

        self.highwaters = highwaters
        self.positions = positions
        state = lambda tp: SimpleNamespace(position=self.positions.get(tp))  # noqa: E731
        assignment = SimpleNamespace(state_value=state)
        self._subscription = SimpleNamespace(subscription=SimpleNamespace(assignment=assignment))

    def assignment(self) -> set:
        return set(self.highwaters)

    def highwater(self, tp: Any) -> int | None:
        return self.highwaters[tp]


class _FakeApp:
    def __init__(self, runner: Any) -> None:
        from types import SimpleNamespace

        self.newspipe_runner = runner
        self.rebalancing = False
        self.in_recovery = False
        self.tables = SimpleNamespace(
            actives_ready=True, recovery=SimpleNamespace(completed=_Flag(True))
        )


def _runner(consumer: _FakeConsumer | None) -> Any:
    from pipeline.metrics import Metrics
    from pipeline.settings import Settings
    from pipeline.stream.runner import StageRunner

    runner = StageRunner(Settings(), None, Metrics(), lambda **_: None)  # type: ignore[arg-type]
    runner.consumer = consumer  # type: ignore[assignment]
    for table_ready in runner.tables.ready.values():  # the global tables caught up
        table_ready.set()
    return runner


def test_lag_gauge_and_readiness_from_the_stage_consumer():

    from pipeline.app import _is_ready, _update_gauges
    from pipeline.metrics import Metrics

    raw0, raw1 = _TP(("raw.articles", 0)), _TP(("raw.articles", 1))
    neardup, busy = _TP(("articles.neardup", 0)), _TP(("raw.comments", 1))
    unfetched, unknown = _TP(("raw.comments", 0)), _TP(("raw.articles", 2))
    consumer = _FakeConsumer(
        highwaters={raw0: 100, raw1: 10, neardup: 12, busy: 12, unfetched: None, unknown: 7},
        positions={raw0: 60, raw1: 4, neardup: 12, busy: 12},
    )
    runner = _runner(consumer)
    # processed up to 59 of raw0, 40 records to go; near-dup and busy both
    # processed through offset 10, offset 11 being a transaction's commit marker
    runner.done = {raw0: 60, neardup: 11, busy: 11}
    runner.in_flight = {busy}  # records of this partition are being processed right now
    app = _FakeApp(runner)
    metrics = Metrics()
    runner.state_sizes = lambda: {"articles": 1}  # type: ignore[method-assign]
    value = metrics.registry.get_sample_value

    _update_gauges(app, metrics)  # type: ignore[arg-type]
    lag = {
        (s.labels["topic"], s.labels["partition"]): s.value
        for s in metrics.consumer_lag.collect()[0].samples
    }
    assert lag == {
        ("raw.articles", "0"): 40,
        ("raw.articles", "1"): 6,  # nothing processed yet: the fetch position
        ("articles.neardup", "0"): 0,  # only a commit marker after the last record
        ("raw.comments", "1"): 1,  # the same, but a batch is in flight
    }
    assert value("newspipe_ready") == 1
    assert value("newspipe_state_entries", {"table": "articles"}) == 1

    # a rebalance takes raw0 away: its value disappears instead of going stale
    del consumer.highwaters[raw0]
    _update_gauges(app, metrics)  # type: ignore[arg-type]
    assert value("newspipe_consumer_lag", {"topic": "raw.articles", "partition": "0"}) is None

    assert _is_ready(app)  # type: ignore[arg-type]
    for attr, bad in (("rebalancing", True), ("in_recovery", True)):
        setattr(app, attr, bad)
        assert not _is_ready(app)  # type: ignore[arg-type]
        setattr(app, attr, False)
    app.tables.actives_ready = False
    assert not _is_ready(app)  # type: ignore[arg-type]
    app.tables.actives_ready = True
    app.tables.recovery.completed.value = False
    assert not _is_ready(app)  # type: ignore[arg-type]
    app.tables.recovery.completed.value = True
    runner.states["articles"].loading = 1  # state still loading
    assert not _is_ready(app)  # type: ignore[arg-type]
    runner.states["articles"].loading = 0
    rules_ready = next(iter(runner.tables.ready.values()))
    rules_ready.clear()  # a global table still being read
    assert not _is_ready(app)  # type: ignore[arg-type]
    rules_ready.set()
    consumer.highwaters.clear()  # no assignment
    assert not _is_ready(app)  # type: ignore[arg-type]
    assert not _is_ready(_FakeApp(_runner(None)))  # type: ignore[arg-type]
    assert not _is_ready(_FakeApp(None))  # type: ignore[arg-type]
    _update_gauges(_FakeApp(None), metrics)  # type: ignore[arg-type]
    assert value("newspipe_ready") == 0
