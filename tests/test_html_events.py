"""Whole real pages as raw `html` article events: they enter, and extraction through the event path
is as good as calling the extractor directly (pure core, no broker)."""

from __future__ import annotations

import orjson
import pytest

from devtools.datasets import html_pages
from devtools.extraction_eval import evaluate, html_event
from pipeline.contracts import validate_record
from pipeline.core import ARTICLES, CLEAN, DLQ, MAX_OUTPUT_BYTES, Core, Meta
from pipeline.kafka_io import raw_record_limit, topic_specs
from pipeline.settings import Settings
from pipeline.topics import RAW_ARTICLES, RAW_COMMENTS, TopicNames


@pytest.fixture(scope="module")
def pages():
    return html_pages()


@pytest.fixture(scope="module")
def rows(pages):
    return evaluate(pages)


def test_real_pages_include_whole_pages_over_the_event_limit(pages):
    sizes = [len(p.html.encode()) for p in pages]
    assert sum(s > 1024 * 1024 for s in sizes) >= 3  # CNN pages of 2.5-2.9 MB
    assert sum(s > 200_000 for s in sizes) >= 8  # over the door's limit for any other field


def test_every_real_page_enters_as_an_html_event(rows):
    assert [(r.name, r.outcome) for r in rows if r.outcome != "clean"] == []


def test_extraction_through_the_event_path_equals_the_extractor_called_directly(rows):
    scored = [r for r in rows if r.direct_f1 is not None]
    assert len(scored) >= 20
    for r in scored:
        assert r.event_f1 == pytest.approx(r.direct_f1), r.name
    assert sum(r.direct_f1 for r in scored) / len(scored) > 0.85


def test_the_clean_record_of_a_whole_page_fits_one_kafka_record(pages):
    core = Core()
    for page in sorted(pages, key=lambda p: -len(p.html))[:3]:
        result = core.process(ARTICLES, html_event(page), Meta("raw.articles"))
        assert result.status == CLEAN
        validate_record("clean-article", result.record)
        assert len(orjson.dumps(result.record)) < MAX_OUTPUT_BYTES


def _padded(page_html: str, size: int) -> str:
    """A real page grown to `size` bytes with an inline script, as pages with JSON blobs are."""
    blob = "x" * (size - len(page_html.encode()))
    return page_html.replace("</head>", f"<script>var state='{blob}';</script></head>", 1)


def test_a_page_over_the_html_limit_is_a_clear_dead_letter(pages):
    settings = Settings()
    cnn = next(p for p in pages if p.name == "cnn_001")
    huge = _padded(cnn.html, settings.max_html_bytes + 100_000)
    payload = orjson.dumps({"schema_version": "1.1", "source": "html", "html": huge})
    result = Core(settings).process(ARTICLES, payload, Meta("raw.articles", offset=3))
    assert result.status == DLQ
    letter = result.record
    assert letter["error_code"] == "too_large"
    assert letter["field"] == "html"
    assert str(settings.max_html_bytes) in letter["error_message"]
    assert letter["payload_bytes"] == len(payload) and letter["payload_truncated"]
    validate_record("dead-letter", letter)
    assert len(orjson.dumps(letter)) < MAX_OUTPUT_BYTES


def test_a_page_just_under_the_html_limit_is_extracted(pages):
    settings = Settings()
    cnn = next(p for p in pages if p.name == "cnn_001")
    big = _padded(cnn.html, settings.max_html_bytes - 1000)
    payload = orjson.dumps({"schema_version": "1.1", "source": "html", "html": big})
    result = Core(settings).process(ARTICLES, payload, Meta("raw.articles"))
    assert result.status == CLEAN
    assert result.record["word_count"] > 1000


def test_only_html_may_take_an_article_over_the_event_limit():
    core = Core()
    body = "word " * 250_000  # 1.25 MB of body: no `html` to owe it to
    payload = orjson.dumps({"schema_version": "1.1", "source": "t", "title": "T", "body": body})
    assert core.process(ARTICLES, payload, Meta("raw.articles")).reason == "too_large"
    page = "<html><body><p>" + "word " * 200 + "</p></body></html>"
    event = {"schema_version": "1.1", "source": "t", "html": page, "standfirst": "s " * 150_000}
    result = core.process(ARTICLES, orjson.dumps(event), Meta("raw.articles"))
    assert result.reason == "field.too_long"  # the other fields keep their own limit


def test_comments_keep_the_event_limit():
    text = "word " * 250_000
    payload = orjson.dumps(
        {"schema_version": "1.1", "source": "t", "article_id": "a", "text": text}
    )
    result = Core().process("comments", payload, Meta("raw.comments"))
    assert result.reason == "too_large"


def test_raw_article_topic_takes_whole_page_events_and_comments_keep_their_limit():
    settings = Settings()
    names = TopicNames(settings.topic_prefix, settings.app_id)
    configs = {t.name: t.topic_configs for t in topic_specs(settings)}
    articles = int(configs[names.raw_articles]["max.message.bytes"])
    comments = int(configs[names.raw_comments]["max.message.bytes"])
    assert articles >= settings.max_event_bytes + settings.max_html_bytes
    assert articles == raw_record_limit(settings, RAW_ARTICLES)
    assert comments == raw_record_limit(settings, RAW_COMMENTS) < articles
