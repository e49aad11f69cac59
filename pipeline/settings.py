"""All runtime settings, read once from the environment (prefix ``NEWSPIPE_``).

One frozen object so that the worker, the CLI, the replay tool and the deploy manifests agree on
names; `tests/test_deploy.py` checks every env name used in deploy/ exists here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

PREFIX = "NEWSPIPE_"


@dataclass(frozen=True)
class Settings:
    """Defaults work against the local broker started by `newspipe broker start`."""

    broker: str = "kafka://127.0.0.1:9092"
    topic_prefix: str = ""
    partitions: int = 6
    replication_factor: int = 1
    raw_retention_ms: int = 7 * 24 * 3600 * 1000
    clean_retention_ms: int = 7 * 24 * 3600 * 1000
    dlq_retention_ms: int = 30 * 24 * 3600 * 1000
    app_id: str = "newspipe"
    state_dir: Path = Path(".state")
    store: str = "memory://"
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "info"
    max_event_bytes: int = 1024 * 1024
    max_field_chars: int = 200_000
    max_json_depth: int = 64
    article_horizon_s: int = 7 * 24 * 3600
    comment_horizon_s: int = 2 * 24 * 3600
    expiry_sweep_s: float = 60.0
    # chosen by scripts/near_dup_eval.py (held-out precision 0.999, recall 0.976)
    near_dup_threshold: float = 0.3
    drop_near_duplicates: bool = False
    # one transaction per partition per batch: larger batches amortize it (500 -> 2000 took one
    # worker from ~1,150 to ~1,450 events/s); the timeout bounds the wait when traffic is low
    batch_size: int = 2000
    batch_timeout_s: float = 0.1
    # how often Faust commits consumer offsets; only a restart's re-read depends on it (records
    # below a partition's state mark are skipped, not emitted again)
    commit_interval_s: float = 1.0
    # Faust's guarantee, for the trend window stage only: the dedup stages commit output, state
    # and input mark in their own transactions whatever this says (pipeline.statelog)
    processing_guarantee: str = "at_least_once"
    # standby copies of the trend window tables on other workers (faster failover, more reads);
    # the dedup state has none: a new owner reads its changelog (pipeline.statelog)
    standby_replicas: int = 0
    # Kafka security: PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; SASL PLAIN or SCRAM-SHA-256/512.
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = field(default="", repr=False)
    kafka_ssl_cafile: str = ""
    kafka_ssl_certfile: str = ""
    kafka_ssl_keyfile: str = ""
    secrets: frozenset[str] = field(default=frozenset(), repr=False)

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
            if f.name == "secrets":
                continue
            value = getattr(self, f.name)
            env[PREFIX + f.name.upper()] = (
                str(value).lower() if isinstance(value, bool) else str(value)
            )
        return env

    @classmethod
    def env_names(cls) -> list[str]:
        return [PREFIX + f.name.upper() for f in fields(cls) if f.name != "secrets"]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "secrets":
                continue
            raw = env.get(PREFIX + f.name.upper())
            if raw is None or raw == "":
                continue
            values[f.name] = _convert(f.name, raw, type(getattr(cls, f.name)))
        return cls(**values)  # type: ignore[arg-type]


def _convert(name: str, raw: str, kind: type) -> object:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
                raise ValueError(raw)
            return lowered in {"1", "true", "yes", "on"}
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if issubclass(kind, Path):
            return Path(raw)
        return raw
    except ValueError:
        raise ValueError(
            f"{PREFIX}{name.upper()}: cannot read {raw!r} as {kind.__name__}"
        ) from None
