"""All runtime settings, read once from the environment (prefix ``NEWSPIPE_``).

One frozen, typed object so that the worker, the CLI, the replay tool and the deploy manifests
agree on names and values; `tests/test_deploy.py` checks every env name used in deploy/ exists
here. A bad value is refused when the settings are built, with one line per variable, before
anything connects to Kafka.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

PREFIX = "NEWSPIPE_"

Store = Literal["memory://", "rocksdb://"]
LogLevel = Literal["debug", "info", "warning", "error"]
Guarantee = Literal["at_least_once", "exactly_once"]
SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
# what a moderation signal does to a comment's status: `review` sends it to the moderation queue,
# `flag` only lists the flag (the comment stays approved unless something else says otherwise)
FlagAction = Literal["review", "flag"]

# the allowed values of the enumerated settings, from their Literal types
CHOICES: dict[str, tuple[str, ...]] = {
    "store": get_args(Store),
    "log_level": get_args(LogLevel),
    "processing_guarantee": get_args(Guarantee),
    "kafka_security_protocol": get_args(SecurityProtocol),
    "kafka_sasl_mechanism": get_args(SaslMechanism),
    "moderation_suspect_words": get_args(FlagAction),
    "moderation_links": get_args(FlagAction),
    "moderation_shouting": get_args(FlagAction),
    "moderation_spam": get_args(FlagAction),
    "moderation_repeat_post": get_args(FlagAction),
}
# settings that are probabilities or shares (above zero, at most 1)
AT_MOST_ONE = frozenset({
    "near_dup_threshold", "related_threshold", "moderation_toxic_review",
    "moderation_toxic_reject", "moderation_shouting_ratio",
})  # fmt: skip
# every worker holds the whole moderation history in memory: a year of it at most
MAX_HISTORY_HORIZON_S = 365 * 24 * 3600
# a batch paced longer would outlast a stop's budget and the group's patience with a silent member
MAX_TRANSACTION_INTERVAL_S = 5.0
# numeric settings that may be zero (everything else numeric must be above zero)
ZERO_ALLOWED = frozenset({"standby_replicas", "web_port", "transaction_interval_s"})


class SettingsError(ValueError):
    """One or more settings are wrong; the message has one line per variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Settings:
    """Defaults work against the local broker started by `newspipe broker start`."""

    # Kafka bootstrap servers in Faust's URL form; several separated by `;`
    broker: str = "kafka://127.0.0.1:9092"
    # put before every topic name, so several deployments share one cluster
    topic_prefix: str = ""
    # partitions of the topics `newspipe topics create` makes: at most this many workers share
    # the load (the near-dup topics always have one)
    partitions: int = 6
    # replicas of each topic the pipeline creates (3 on a production cluster)
    replication_factor: int = 1
    # how long the raw topics keep records: the window for replaying them from Kafka
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    # how long the clean topics and topic.trends keep records
    clean_retention_ms: int = 7 * 24 * 3600 * 1000
    # how long dead letters are kept for reading and redriving (`newspipe replay --from-dlq`)
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000
    # names the consumer groups (`<app_id>.stages`, `<app_id>`), transactional ids and the state
    # changelogs (`<prefix><app_id>-state.*`); two apps reading one raw topic need two ids
    app_id: str = "newspipe"
    # where the RocksDB state (and Faust's table data) lives on the worker's disk
    state_dir: Path = Path(".state")
    # state store: memory:// (rebuilt from the changelog at each start) or rocksdb:// (kept)
    store: Store = "memory://"
    # address the worker's web endpoints listen on (0.0.0.0 in containers)
    web_host: str = "127.0.0.1"
    # port of /metrics, /healthz, /readyz and /trends
    web_port: int = 6066
    # log level of the worker's JSON logs
    log_level: LogLevel = "info"
    # larger raw records go to the DLQ as `too_large`
    max_event_bytes: int = 1024 * 1024
    # longer text fields go to the DLQ as `field.too_long`
    max_field_chars: int = 200_000
    # a raw article's `html` (a whole page, extracted by the worker) has its own limit: real
    # pages with their scripts and inline styles run to several MB
    max_html_bytes: int = 8 * 1024 * 1024
    # deeper JSON nesting goes to the DLQ as `json.too_deep`
    max_json_depth: int = 64
    # dedup memory for articles in event time: a copy arriving later is treated as new
    article_horizon_s: int = 7 * 24 * 3600
    # dedup memory for comments in event time
    comment_horizon_s: int = 2 * 24 * 3600
    # how often, at most, state older than its horizon is swept from the local store; a sweep
    # also waits until event time moved on by a hundredth of the shortest horizon
    expiry_sweep_s: float = 60.0
    # MinHash similarity above which an article is a syndicated copy; chosen on labelled pairs
    # by scripts/near_dup_eval.py
    near_dup_threshold: float = 0.3
    # different articles of the same story (follow-ups) share at least this estimated Jaccard:
    # `related_to` + `story_id` (scripts/near_dup_eval.py)
    related_threshold: float = 0.25
    # drop syndicated copies (counted as duplicate.near) instead of emitting them with
    # `duplicate_of`
    drop_near_duplicates: bool = False
    # most records the stages take per fetch, and how many may wait for their partition's
    # batch before fetching pauses; a partition's batch (one transaction) is what was fetched
    # for it while its last batch ran, so at most about twice this; the timeout bounds the
    # wait when traffic is low
    batch_size: int = 2000
    # the longest wait for a batch to fill, in seconds
    batch_timeout_s: float = 0.1
    # the shortest time between the starts of two batches (two transactions) of one partition's
    # stage, unless an eighth of the batch size waits already (as Kafka Streams'
    # commit.interval.ms; not NEWSPIPE_COMMIT_INTERVAL_S, which is about consumer offsets); the
    # stages' fetch then waits up to half of it for 64 KiB. A transaction costs the worker and
    # the broker the same CPU whether it holds 3 records or 300: this bounds how often it is
    # paid while traffic is light, and adds up to about one and a half times this to a record's
    # latency at each paced stage (the raw articles' stage is not: comments read its state).
    # At most 5 s. 0: a batch starts as soon as the last one committed
    transaction_interval_s: float = 0.1
    # how long a consumer group waits for a silent member before giving its partitions to the
    # others (a SIGKILLed worker); heartbeats go every third of it. Both groups of the worker.
    group_session_timeout_s: float = 10.0
    # readiness turns 503 once no broker has answered for this long; back to 200 when one does
    broker_unreachable_s: float = 5.0
    # SIGTERM: the worker commits what it has and leaves its groups within this budget, then
    # exits anyway (uncommitted work is aborted and redone by the next owner, never lost)
    shutdown_timeout_s: float = 8.0
    # how often Faust commits consumer offsets; only a restart's re-read depends on it (records
    # below a partition's state mark are skipped, not emitted again)
    commit_interval_s: float = 1.0
    # Faust's guarantee, for the trend window stage only: the dedup stages commit output, state
    # and input mark in their own transactions whatever this says (pipeline.stream.state)
    processing_guarantee: Guarantee = "at_least_once"
    # standby copies of the trend window tables on other workers (faster failover, more reads);
    # the dedup state has none: a new owner reads its changelog (pipeline.stream.state)
    standby_replicas: int = 0
    # moderation: a comment whose toxicity score (0..1, README "Moderation") is at least this is
    # flagged `toxic` and goes to review; chosen on half of the labelled Fox News comments by
    # `make eval-moderation`
    moderation_toxic_review: float = 0.4
    # ... and at least this is rejected (a banned word is always rejected)
    moderation_toxic_reject: float = 0.97
    # an author with at least this many non-approved comments within the history horizon goes to
    # review (flag `recent_history`)
    moderation_history_review: int = 3
    # how far back an author's flagged comments count, in event time (at most a year: every
    # worker holds them in memory); the moderation.history topic keeps them a day longer
    moderation_history_horizon_s: int = 7 * 24 * 3600
    # a suspect word: review, or only a flag
    moderation_suspect_words: FlagAction = "review"
    # links: review, or only a flag naming the domains
    moderation_links: FlagAction = "flag"
    # shouting (mostly capitals): review, or only a flag
    moderation_shouting: FlagAction = "flag"
    # a comment is shouting when at least this share of its letters are capitals ...
    moderation_shouting_ratio: float = 0.7
    # ... and it has at least this many letters ("OK" and "LOL" are not shouting)
    moderation_shouting_min_letters: int = 20
    # the same text from several authors (the dedup's spam cluster): review, or only a flag
    moderation_spam: FlagAction = "flag"
    # the same author's same text on another article: review, or only a flag
    moderation_repeat_post: FlagAction = "flag"
    # Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; SASL PLAIN or SCRAM-SHA-256/512.
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    # SASL mechanism (empty: PLAIN when the protocol is SASL_*)
    kafka_sasl_mechanism: SaslMechanism = ""
    # SASL user name
    kafka_sasl_username: str = ""
    # SASL password; never printed or logged
    kafka_sasl_password: str = field(default="", repr=False)
    # CA bundle (PEM) that signed the brokers' certificates (empty: the system's)
    kafka_ssl_cafile: str = ""
    # client certificate (PEM), for brokers that ask for one
    kafka_ssl_certfile: str = ""
    # the client certificate's private key (PEM)
    kafka_ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        problems = [p for f in fields(self) if (p := _check(f.name, getattr(self, f.name)))]
        if not problems and self.moderation_toxic_reject < self.moderation_toxic_review:
            problems.append(f"{PREFIX}MODERATION_TOXIC_REJECT: {self.moderation_toxic_reject} must "
                            f"be at least NEWSPIPE_MODERATION_TOXIC_REVIEW "
                            f"({self.moderation_toxic_review})")  # fmt: skip
        if problems:
            raise SettingsError(problems)

    def aiokafka_security(self) -> dict[str, object]:
        """Connection options for aiokafka clients (ingest, replay, tools); empty for PLAINTEXT."""
        protocol = self.kafka_security_protocol.upper()
        if protocol == "PLAINTEXT":
            return {}
        import ssl

        options: dict[str, object] = {"security_protocol": protocol}
        if "SSL" in protocol:
            context = ssl.create_default_context(cafile=self.kafka_ssl_cafile or None)
            if self.kafka_ssl_certfile:
                context.load_cert_chain(self.kafka_ssl_certfile, self.kafka_ssl_keyfile or None)
            options["ssl_context"] = context
        if protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.kafka_sasl_mechanism or "PLAIN"
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password
        return options

    @property
    def bootstrap_servers(self) -> str:
        """host:port list for aiokafka (Faust's URL form without the scheme)."""
        return ",".join(part.split("://", 1)[-1] for part in self.broker.split(";"))

    def to_env(self) -> dict[str, str]:
        """These settings as NEWSPIPE_* variables, for starting workers and tools as processes."""
        env = {}
        for f in fields(self):
            value = getattr(self, f.name)
            env[PREFIX + f.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return env

    @classmethod
    def env_names(cls) -> list[str]:
        return [PREFIX + f.name.upper() for f in fields(cls)]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from NEWSPIPE_* variables; every bad one is named in one SettingsError."""
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        problems: list[str] = []
        for f in fields(cls):
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            try:
                values[f.name] = _convert(raw, type(getattr(cls, f.name)))
            except ValueError as exc:
                problems.append(f"{PREFIX}{f.name.upper()}={raw}: {exc}")
        if problems:
            raise SettingsError(problems)
        try:
            return cls(**values)  # type: ignore[arg-type]
        except SettingsError as exc:
            shown = [_with_value(line, env) for line in exc.problems]
            raise SettingsError(shown) from None


def _convert(raw: str, kind: type) -> object:
    """The text of one variable as the field's type; ValueError says what was expected."""
    text = raw.strip()
    if kind is bool:
        lowered = text.lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ValueError("not a boolean (true/false)")
        return lowered in {"1", "true", "yes", "on"}
    if kind is int:
        try:
            return int(text.replace("_", ""))
        except ValueError:
            raise ValueError("not an integer") from None
    if kind is float:
        try:
            return float(text)
        except ValueError:
            raise ValueError("not a number") from None
    if issubclass(kind, Path):
        return Path(text)
    return text


def _check(name: str, value: object) -> str | None:
    """What is wrong with one field's value (a line naming its variable), or None."""
    var = PREFIX + name.upper()
    if name in CHOICES:
        if value not in CHOICES[name]:
            allowed = ", ".join(repr(c) if c == "" else c for c in CHOICES[name])
            return f"{var}: {value!r} is not one of {allowed}"
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            return f"{var}: {value} is not a finite number"
        if value < 0 and name in ZERO_ALLOWED:
            return f"{var}: {value} must be zero or above"
        if value < 0 or (value == 0 and name not in ZERO_ALLOWED):
            return f"{var}: {value} must be above zero"
        if name == "web_port" and value > 65535:
            return f"{var}: {value} is not a port number"
        if name in AT_MOST_ONE and value > 1:
            return f"{var}: {value} must be at most 1"
        if name == "transaction_interval_s" and value > MAX_TRANSACTION_INTERVAL_S:
            return f"{var}: {value} must be at most {MAX_TRANSACTION_INTERVAL_S:g}"
        if name == "moderation_history_horizon_s" and value > MAX_HISTORY_HORIZON_S:
            return f"{var}: {value} must be at most {MAX_HISTORY_HORIZON_S} (a year)"
    return None


def _with_value(line: str, env: Mapping[str, str]) -> str:
    """`NEWSPIPE_X: ...` -> `NEWSPIPE_X=value: ...`, as the operator typed it."""
    var, _, rest = line.partition(": ")
    raw = env.get(var)
    return f"{var}={raw}: {rest}" if raw is not None else line
