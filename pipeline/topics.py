"""The one place topic names live. A prefix lets several deployments share a cluster."""

from __future__ import annotations

from dataclasses import dataclass

RAW_ARTICLES = "raw.articles"
RAW_COMMENTS = "raw.comments"
CLEAN_ARTICLES = "clean.articles"
CLEAN_COMMENTS = "clean.comments"
DLQ = "dlq"
TOPIC_TRENDS = "topic.trends"

RAW = (RAW_ARTICLES, RAW_COMMENTS)
CLEAN = (CLEAN_ARTICLES, CLEAN_COMMENTS)
ALL = (RAW_ARTICLES, RAW_COMMENTS, CLEAN_ARTICLES, CLEAN_COMMENTS, DLQ, TOPIC_TRENDS)


@dataclass(frozen=True)
class TopicNames:
    """Topic names after the deployment prefix is applied."""

    prefix: str = ""

    def name(self, base: str) -> str:
        return f"{self.prefix}{base}"

    @property
    def raw_articles(self) -> str:
        return self.name(RAW_ARTICLES)

    @property
    def raw_comments(self) -> str:
        return self.name(RAW_COMMENTS)

    @property
    def clean_articles(self) -> str:
        return self.name(CLEAN_ARTICLES)

    @property
    def clean_comments(self) -> str:
        return self.name(CLEAN_COMMENTS)

    @property
    def dlq(self) -> str:
        return self.name(DLQ)

    @property
    def trends(self) -> str:
        return self.name(TOPIC_TRENDS)

    def all(self) -> list[str]:
        return [self.name(t) for t in ALL]
