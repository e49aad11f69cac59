"""The one place topic names live. A prefix lets several deployments share a cluster."""

from __future__ import annotations

from dataclasses import dataclass

# The two streams: every raw event is an article or a comment (topic pairs and stage names).
ARTICLES = "articles"
COMMENTS = "comments"
# the header the replay tool stamps on every record it sends (value: the run id)
REPLAY_HEADER = "newspipe-replay"

RAW_ARTICLES = "raw.articles"
RAW_COMMENTS = "raw.comments"
CLEAN_ARTICLES = "clean.articles"
CLEAN_COMMENTS = "clean.comments"
DLQ = "dlq"
TOPIC_TRENDS = "topic.trends"
# internal: clean records' top-level topics, re-keyed by topic so one worker counts each topic
TREND_EVENTS = "trend.events"
# internal: articles that passed the partition-local checks, on ONE partition, so the
# near-duplicate index sees every article whatever partition it came from
NEARDUP = "articles.neardup"
# internal: dedup state changelogs, one record per batch (pipeline.stream.state), partitioned like
# the stage's input; named after the app id as well, like Faust's changelogs, because the state
# belongs to one consumer group (another app reading the same raw topics has its own)
STATE_ARTICLES = "state.articles"
STATE_COMMENTS = "state.comments"
STATE_NEARDUP = "state.neardup"
STATE = (STATE_ARTICLES, STATE_COMMENTS, STATE_NEARDUP)
# moderation: comments whose status is not `approved`, keyed by article id, for moderation tools
MODERATION_QUEUE = "moderation.queue"
# editors' lists, compacted, keyed by list name; every worker reads it whole (pipeline.moderation)
MODERATION_RULES = "moderation.rules"
# internal: non-approved comments re-keyed by author; every worker reads it whole, retention
# about the history horizon, so an author's recent history is rebuilt after a restart
MODERATION_HISTORY = "moderation.history"

RAW = (RAW_ARTICLES, RAW_COMMENTS)
CLEAN = (CLEAN_ARTICLES, CLEAN_COMMENTS)
ALL = (
    RAW_ARTICLES, RAW_COMMENTS, CLEAN_ARTICLES, CLEAN_COMMENTS, DLQ, TOPIC_TRENDS, TREND_EVENTS,
    NEARDUP, *STATE, MODERATION_QUEUE, MODERATION_RULES, MODERATION_HISTORY,
)  # fmt: skip
SINGLE_PARTITION = (NEARDUP, STATE_NEARDUP, MODERATION_RULES)


@dataclass(frozen=True)
class TopicNames:
    """Topic names after the deployment prefix is applied."""

    prefix: str = ""
    app_id: str = "newspipe"

    def name(self, base: str) -> str:
        if base in STATE:
            return f"{self.prefix}{self.app_id}-{base}"
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

    @property
    def neardup(self) -> str:
        return self.name(NEARDUP)

    @property
    def trend_events(self) -> str:
        return self.name(TREND_EVENTS)

    @property
    def state_articles(self) -> str:
        return self.name(STATE_ARTICLES)

    @property
    def state_comments(self) -> str:
        return self.name(STATE_COMMENTS)

    @property
    def state_neardup(self) -> str:
        return self.name(STATE_NEARDUP)

    @property
    def moderation_queue(self) -> str:
        return self.name(MODERATION_QUEUE)

    @property
    def moderation_rules(self) -> str:
        return self.name(MODERATION_RULES)

    @property
    def moderation_history(self) -> str:
        return self.name(MODERATION_HISTORY)

    def all(self) -> list[str]:
        return [self.name(t) for t in ALL]
