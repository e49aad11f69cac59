"""Comment moderation: what a moderator should look at, and why.

`rules` and `history` are the two tables every worker keeps in full (editors' word lists, and
authors' recent flagged comments); the stream shell feeds them from their Kafka topics and the
core reads a snapshot per batch.
"""

from pipeline.moderation.history import AuthorHistory, HistoryEvent
from pipeline.moderation.rules import LIST_NAMES, Rules

__all__ = ["LIST_NAMES", "AuthorHistory", "HistoryEvent", "Rules"]
