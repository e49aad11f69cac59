"""`newspipe ingest PATH`: turn captured pages into raw events on the raw topics.

A page becomes one raw article event and one raw comment event per reader comment, all keyed by
the article id so that the article, its comments and any later copy meet on one partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.extract import Page, extract_file
from pipeline.ids import article_id
from pipeline.kafka_io import raw_producer
from pipeline.settings import Settings
from pipeline.topics import TopicNames


def page_article_id(article: dict[str, Any]) -> str:
    """The id the worker will give this article, computed the same way (pipeline.ids)."""
    return article.get("article_id") or article_id(
        article.get("url"), article.get("source"), article.get("source_id"), article.get("title")
    )


def page_events(page: Page) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """The article id, the article event and its comment events, each bound to the article."""
    aid = page_article_id(page.article)
    comments = []
    for comment in page.comments:
        comment = dict(comment)
        comment.setdefault("article_id", aid)
        comments.append(comment)
    return aid, page.article, comments


@dataclass
class IngestReport:
    path: Path
    article_id: str
    comments: int


async def ingest_paths(
    settings: Settings, paths: list[Path], url: str | None = None, source: str | None = None
) -> list[IngestReport]:
    """Extract each page and produce its events; returns what was sent, after the broker acked."""
    names = TopicNames(settings.topic_prefix)
    reports = []
    prod = raw_producer(settings)
    await prod.start()
    try:
        for path in paths:
            page = extract_file(path, source=source)
            if url and not page.article.get("url"):
                page.article["url"] = url
            aid, article, comments = page_events(page)
            key = aid.encode()
            futures = [await prod.send(names.raw_articles, orjson.dumps(article), key=key)]
            for comment in comments:
                futures.append(await prod.send(names.raw_comments, orjson.dumps(comment), key=key))
            for fut in futures:
                await fut
            reports.append(IngestReport(path, aid, len(comments)))
    finally:
        await prod.stop()
    return reports
