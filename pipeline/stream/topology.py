"""The stage topology, declared once: which topic each stage reads, which state maps it owns
(and logs to its changelog), whose state it also reads, what it emits and what it forwards.

The runner, the app and the tests build everything from `STAGES`; a new stage is one more
`Stage` here plus its branch in `pipeline.stream.batch`. The global tables a stage reads
(moderation rules and history) and its side outputs are declared here too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pipeline.topics import ARTICLES, COMMENTS, MODERATION_HISTORY, MODERATION_RULES, TopicNames

NEARDUP = "neardup"


@dataclass(frozen=True)
class Stage:
    """One stage of the stream: a consumer of one input topic with its own per-partition state.

    `reads` names stages whose state of the SAME partition number this stage reads (comments
    read their article's tags: raw articles and comments are co-partitioned by article id).
    """

    name: str
    stream: str  # the record stream it counts in metrics (articles or comments)
    source: Callable[[TopicNames], str]  # the input topic
    changelog: Callable[[TopicNames], str]  # where its state is logged, one record per batch
    owns: tuple[str, ...]  # the core's state maps (pipeline.core.States fields) it owns
    reads: tuple[str, ...] = ()  # other stages whose partition state it reads
    emits: Callable[[TopicNames], str] | None = None  # its clean output topic
    forwards: Callable[[TopicNames], str] | None = None  # where clean results go on to instead
    # moderation side outputs, in the same transaction as the clean output: the clean records
    # whose moderation status is not `approved` (same key and partition), and the history
    # events of those comments (keyed by author)
    queue: Callable[[TopicNames], str] | None = None
    history: Callable[[TopicNames], str] | None = None
    # global tables (pipeline.stream.tables) every batch of it reads: read whole by every
    # worker, not partitioned like its input; no batch runs before they are loaded
    tables: tuple[str, ...] = ()


# Order matters within a fetch: articles first, so a comment sees the tags of an article fetched
# with it (when the article's partition has no batch under way, else the article comes after);
# the near-dup stage sees the articles forwarded in earlier batches.
STAGES: tuple[Stage, ...] = (
    Stage(
        ARTICLES, ARTICLES,
        source=lambda n: n.raw_articles, changelog=lambda n: n.state_articles,
        owns=("articles", "article_tags"), forwards=lambda n: n.neardup,
    ),
    Stage(
        NEARDUP, ARTICLES,
        source=lambda n: n.neardup, changelog=lambda n: n.state_neardup,
        owns=("index",), emits=lambda n: n.clean_articles,
    ),
    Stage(
        COMMENTS, COMMENTS,
        source=lambda n: n.raw_comments, changelog=lambda n: n.state_comments,
        owns=("comments",), reads=(ARTICLES,), emits=lambda n: n.clean_comments,
        queue=lambda n: n.moderation_queue, history=lambda n: n.moderation_history,
        tables=(MODERATION_RULES, MODERATION_HISTORY),
    ),
)  # fmt: skip
BY_NAME: dict[str, Stage] = {stage.name: stage for stage in STAGES}
ORDER: dict[str, int] = {stage.name: i for i, stage in enumerate(STAGES)}
