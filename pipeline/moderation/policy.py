"""The moderation step: a batch of clean comments -> each one's `moderation` object.

`Moderator.moderate(records, context)` scores the batch's texts in one model call, then walks
the comments in order: flags with their evidence, the status from the policy in settings, and
for every comment that is not approved a `HistoryEvent`, added to the context's `AuthorHistory`
at once so that the author's next comment, in this batch or a later one, counts it.

Policy (README "Moderation"): rejected when the toxicity score is at least
`moderation_toxic_reject` or a banned word is present; review when the score is at least
`moderation_toxic_review`, the author is on the pre-moderation list, or the author already has
`moderation_history_review` non-approved comments within the horizon; suspect words, links,
shouting, spam clusters and repeat posts send to review or are only listed, per setting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.moderation.history import AuthorHistory, HistoryEvent
from pipeline.moderation.rules import PREMOD_AUTHORS, Rules
from pipeline.moderation.signals import Signals, SignalScanner, WordMatcher
from pipeline.moderation.toxicity import ToxicityModel
from pipeline.normalize.times import epoch_of
from pipeline.settings import Settings

APPROVED = "approved"
REVIEW = "review"
REJECTED = "rejected"
_RANK = {APPROVED: 0, REVIEW: 1, REJECTED: 2}
_STATUSES = (APPROVED, REVIEW, REJECTED)
_NOTHING = Signals(None, None, None, None)  # the text signals of most comments
# the flags' `reason` values, in the order a record lists them
REASONS = ("toxic", "banned_word", "suspect_word", "premod_author", "recent_history", "links",
           "spam", "repeat_post", "shouting")  # fmt: skip

# A repeat post: given a clean comment, the id of the same author's earlier comment with the
# same text on another article, or None (the dedup state knows; see Deduper.repeat_of).
RepeatOf = Callable[[dict[str, Any]], str | None]


def approved() -> dict[str, Any]:
    """The moderation object of a comment nothing was found in (and of a removed comment)."""
    return {"status": APPROVED, "toxicity": 0.0, "flags": []}


@dataclass
class ModerationContext:
    """What the shell hands the core per batch: the editors' lists as one snapshot, and the
    authors' recent non-approved comments (updated in place by the core)."""

    rules: Rules
    history: AuthorHistory

    @classmethod
    def offline(cls, settings: Settings) -> ModerationContext:
        """The repository's seed lists and an empty in-process history (replay, tests, demo)."""
        return cls(Rules.seed(), AuthorHistory(settings.moderation_history_horizon_s))


class Moderator:
    """Signals + policy; holds the model and the word matcher (rebuilt when the lists change)."""

    def __init__(self, settings: Settings, model: ToxicityModel | None = None) -> None:
        self.settings = settings
        self.model = model or ToxicityModel.load()
        self.matcher = WordMatcher()
        self.scanner = SignalScanner(self.matcher, settings.moderation_shouting_min_letters,
                                     settings.moderation_shouting_ratio)  # fmt: skip

    def moderate(
        self,
        records: Sequence[dict[str, Any]],
        context: ModerationContext,
        repeat_of: RepeatOf | None = None,
    ) -> list[HistoryEvent | None]:
        """Set `moderation` on each record (in order); returns each one's new history event."""
        self.matcher.sync(context.rules)
        live = [r for r in records if not r.get("removed") and r.get("own_text")]
        texts = [r["own_text"] for r in live]
        scores = _round4(self.model.score_many(texts))
        found = self.scanner.scan(texts)
        s = self.settings
        # what `_one` looks at besides the text signals, hoisted: most comments have nothing to
        # flag, and their record is written here at once; a comment that may have goes to `_one`
        review_at, history_review = s.moderation_toxic_review, s.moderation_history_review
        premod = context.rules.get(PREMOD_AUTHORS)
        held = context.history.held
        repeats = repeat_of is not None
        events: list[HistoryEvent | None] = []
        for at, (record, score) in enumerate(zip(live, scores, strict=True)):
            if (score < review_at and at not in found and not record.get("spam_suspect")
                    and not (repeats and record.get("spam_cluster_size", 0) >= 2)):  # fmt: skip
                author = record.get("author")
                if not author or (
                    not (premod and author.casefold() in premod) and held(author) < history_review
                ):
                    record["moderation"] = {"status": APPROVED, "toxicity": score, "flags": []}
                    events.append(None)
                    continue
            event = self._one(record, score, found.get(at, _NOTHING), context, repeat_of)
            if event is not None:
                context.history.add(event)
            events.append(event)
        if len(live) == len(records):
            return events
        # removed comments and comments without text of their own: approved, no event
        kept = iter(events)
        out: list[HistoryEvent | None] = []
        for record in records:
            if record.get("removed") or not record.get("own_text"):
                record["moderation"] = approved()
                out.append(None)
            else:
                out.append(next(kept))
        return out

    def _one(
        self,
        record: dict[str, Any],
        score: float,
        signals: Signals,
        context: ModerationContext,
        repeat_of: RepeatOf | None,
    ) -> HistoryEvent | None:
        s = self.settings
        flags: list[dict[str, Any]] = []
        rank = 0  # _RANK of the status so far
        score = round(score, 4)
        if score >= s.moderation_toxic_review:
            rank = 2 if score >= s.moderation_toxic_reject else 1
            flags.append({"reason": "toxic", "score": score, "evidence": {
                "threshold": s.moderation_toxic_review,
                "reject_threshold": s.moderation_toxic_reject}})  # fmt: skip
        banned, suspect, domains, shouting = signals
        if banned:
            rank = 2
            flags.append(_flag("banned_word", {"words": banned}))
        if suspect:
            rank = max(rank, _RANK[_to(s.moderation_suspect_words)])
            flags.append(_flag("suspect_word", {"words": suspect}))
        author = record.get("author")
        t: float | None = None  # the event time in epoch seconds, parsed once if needed
        if author:
            premod = context.rules.get(PREMOD_AUTHORS)
            if premod and author.casefold() in premod:
                rank = max(rank, 1)
                flags.append(_flag("premod_author", {"author": author}))
            if context.history.held(author) >= s.moderation_history_review:
                t = epoch_of(record["event_time"])
                counts = context.history.count(author, t, exclude=record["comment_id"])
                if sum(counts.values()) >= s.moderation_history_review:
                    rank = max(rank, 1)
                    flags.append(_flag("recent_history", {
                        "counts": counts, "threshold": s.moderation_history_review,
                        "horizon_s": context.history.horizon_s}))  # fmt: skip
        if domains:
            rank = max(rank, _RANK[_to(s.moderation_links)])
            flags.append(_flag("links", {"domains": domains}))
        if record.get("spam_suspect"):
            rank = max(rank, _RANK[_to(s.moderation_spam)])
            flags.append(_flag("spam", {"cluster_size": record.get("spam_cluster_size", 0)}))
        if repeat_of is not None and record.get("spam_cluster_size", 0) >= 2:
            first = repeat_of(record)
            if first is not None:
                rank = max(rank, _RANK[_to(s.moderation_repeat_post)])
                flags.append(_flag("repeat_post", {"first_comment_id": first}))
        if shouting:
            ratio, letters = shouting
            rank = max(rank, _RANK[_to(s.moderation_shouting)])
            flags.append(_flag("shouting", {"ratio": round(ratio, 3), "letters": letters}))
        status = _STATUSES[rank]
        record["moderation"] = {"status": status, "toxicity": score, "flags": flags}
        if not rank or not author:
            return None
        if t is None:
            t = epoch_of(record["event_time"])
        return HistoryEvent(author, record["comment_id"], t, status)


def _round4(scores: list[float]) -> list[float]:
    """`[round(x, 4) for x in scores]`, in one compiled call (`newspipe_native.round4`: the
    same decimal rounding in integer arithmetic; values it leaves are rounded here)."""
    from newspipe_native import round4

    rounded, left = round4(scores)
    for i in left:
        rounded[i] = round(scores[i], 4)
    return rounded


def _flag(reason: str, evidence: dict[str, Any]) -> dict[str, Any]:
    return {"reason": reason, "evidence": evidence}


def _to(action: str) -> str:
    """A setting's action as the status it asks for (`flag`: none beyond approved)."""
    return REVIEW if action == REVIEW else APPROVED
