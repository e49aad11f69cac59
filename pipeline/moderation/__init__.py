"""Comment moderation: what a moderator should look at, and why.

`rules` and `history` are the two tables every worker keeps in full (editors' word lists, and
authors' recent flagged comments); the stream shell feeds them from their Kafka topics and the
core reads a snapshot per batch (`ModerationContext`, on `Core.moderation`). `policy` is the
step itself (`Moderator`: signals, toxicity, the statuses from settings), `toxicity` the model,
`signals` the word lists, links and shouting.
"""

from pipeline.moderation.history import AuthorHistory, HistoryEvent
from pipeline.moderation.policy import APPROVED, REJECTED, REVIEW, ModerationContext, Moderator
from pipeline.moderation.rules import LIST_NAMES, Rules

__all__ = [
    "APPROVED",
    "LIST_NAMES",
    "REJECTED",
    "REVIEW",
    "AuthorHistory",
    "HistoryEvent",
    "ModerationContext",
    "Moderator",
    "Rules",
]
