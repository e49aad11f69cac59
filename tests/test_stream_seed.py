"""End to end through the real broker: the seed page in, one clean article and its comments out."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from pipeline.contracts import validate_record
from pipeline.ingest import ingest_paths
from pipeline.show import read_topics
from pipeline.topics import TopicNames
from tests.conftest import SEED

pytestmark = pytest.mark.kafka


@pytest.mark.parametrize("store", ["memory://", "rocksdb://"])
def test_seed_page_comes_out_of_kafka_as_one_article_and_its_comments(
    topics, worker_factory, store
):
    settings = replace(topics, store=store)
    names = TopicNames(settings.topic_prefix)
    worker = worker_factory(settings).start()
    worker.wait_ready()
    reports = asyncio.run(ingest_paths(settings, [SEED]))
    assert reports[0].comments == 20

    out = asyncio.run(
        read_topics(
            settings,
            [names.clean_articles, names.clean_comments, names.dlq],
            until=lambda o: (
                len(o[names.clean_articles]) >= 1 and len(o[names.clean_comments]) >= 20
            ),
            timeout=90,
        )
    )
    articles, comments = out[names.clean_articles], out[names.clean_comments]
    assert out[names.dlq] == []
    assert len(articles) == 1
    assert articles[0]["title"] == "South Korea proposes Kaesong talks with North"
    codes = {t["code"] for t in articles[0]["tags"]}
    assert {"medtop:11000000", "medtop:04000000"} <= codes  # politics; economy, business, finance
    assert all(t["evidence"] for t in articles[0]["tags"])
    by_number = {c["number"]: c for c in comments}
    assert by_number[30]["removed"] and by_number[30]["text"] == ""
    assert by_number[29]["quotes"] == by_number[25]["comment_id"]
    assert any(t["inherited"] and t["code"] in codes for t in by_number[37]["tags"])
    assert len(comments) == 20
    visible = [c for c in comments if not c["removed"]]
    assert len(visible) == 19
    assert sorted(c["number"] for c in comments) == list(range(18, 38))
    # clean topics are keyed by article id: the article and its comments share a partition
    keys = {r["_kafka"]["key"] for r in articles + comments}
    assert keys == {articles[0]["article_id"]}
    for record in articles:
        record.pop("_kafka")
        validate_record("clean-article", record)
    for record in comments:
        record.pop("_kafka")
        validate_record("clean-comment", record)


def _listening(port: int) -> set[str]:
    """Local addresses (hex, as /proc/net/tcp shows them) listening on `port`."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            addr, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                out.add(addr)
    return out


def test_the_worker_listens_on_the_configured_host_and_serves_only_its_endpoints(
    topics, worker_factory
):
    import urllib.error
    import urllib.request

    worker = worker_factory(topics).start()
    worker.wait_ready()
    assert _listening(topics.web_port) == {"0100007F"}  # 127.0.0.1 only, not 0.0.0.0 or ::

    def status(path: str) -> int:
        try:
            with urllib.request.urlopen(worker.url(path), timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    assert {p: status(p) for p in ("/metrics", "/healthz", "/readyz", "/trends")} == {
        "/metrics": 200, "/healthz": 200, "/readyz": 200, "/trends": 200,
    }  # fmt: skip
    for faust_page in ("/router/", "/table/", "/graph/", "/stats/", "/performance/"):
        assert status(faust_page) == 404, faust_page
