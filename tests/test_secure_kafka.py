"""Secure connections: the pipeline over SASL_SSL (SCRAM-SHA-512 over TLS) on a real Kafka broker.

A second broker (tests/secure_broker.py) runs for this module only, on free ports with its own
certificates and SCRAM user; the shared plaintext broker is not involved. Checks: topics, a worker,
ingest and reading back all work over SASL_SSL; a wrong password or an untrusted certificate fails
fast with one line; the password never appears in help, reprs, CLI output or the worker's log.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipeline.settings import Settings
from tests.conftest import ROOT, SEED, WorkerProcess, free_port, settings_env
from tests.secure_broker import SecureBroker, SecureBrokerError, start_secure_broker

pytestmark = pytest.mark.kafka

HEADLINE = "South Korea proposes Kaesong talks with North"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureBroker]:
    """The SASL_SSL broker; fails (never skips) when it cannot start, always stopped after."""
    home = tmp_path_factory.mktemp("sasl-broker")
    try:
        sb = start_secure_broker(home, (free_port(), free_port(), free_port()))
    except SecureBrokerError as exc:
        pytest.fail(f"the SASL_SSL Kafka broker did not start: {exc}", pytrace=False)
    try:
        yield sb
    finally:
        sb.stop()


def security_env(settings: Settings) -> dict[str, str]:
    """The environment for `settings`, with no NEWSPIPE_* variable inherited from the caller.

    conftest's settings_env copies only some fields; the security ones are added here.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSPIPE_")}
    env.update((k, v) for k, v in settings_env(settings).items() if k.startswith("NEWSPIPE_"))
    env.update(
        NEWSPIPE_BROKER=settings.broker,
        NEWSPIPE_LOG_LEVEL=settings.log_level,
        NEWSPIPE_KAFKA_SECURITY_PROTOCOL=settings.kafka_security_protocol,
        NEWSPIPE_KAFKA_SASL_MECHANISM=settings.kafka_sasl_mechanism,
        NEWSPIPE_KAFKA_SASL_USERNAME=settings.kafka_sasl_username,
        NEWSPIPE_KAFKA_SASL_PASSWORD=settings.kafka_sasl_password,
        NEWSPIPE_KAFKA_SSL_CAFILE=settings.kafka_ssl_cafile,
    )
    return env


class SecureWorker(WorkerProcess):
    """conftest's worker process, started with the security settings in its environment."""

    def start(self) -> SecureWorker:
        out = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker"],
            env=security_env(self.settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,
        )
        return self


def secure_settings(sb: SecureBroker, tmp_path: Path, password: str | None = None) -> Settings:
    tag = uuid.uuid4().hex[:8]
    base = replace(
        Settings(),
        topic_prefix=f"s{tag}.",
        app_id=f"newspipe-sasl-{tag}",
        state_dir=tmp_path / "state",
        web_port=free_port(),
        partitions=3,
    )
    return sb.settings(base, password=password)


def run_cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_seed_page_through_sasl_ssl(secure_broker: SecureBroker, tmp_path: Path) -> None:
    from pipeline.ingest import ingest_paths
    from pipeline.kafka_io import create_topics
    from pipeline.show import read_topics
    from pipeline.topics import TopicNames

    settings = secure_settings(secure_broker, tmp_path)
    assert settings.aiokafka_security()["security_protocol"] == "SASL_SSL"
    names = TopicNames(settings.topic_prefix)
    created = asyncio.run(create_topics(settings))
    assert names.raw_articles in created and names.clean_articles in created

    worker = SecureWorker(settings, tmp_path / "worker.log").start()
    try:
        worker.wait_ready(timeout=90)
        reports = asyncio.run(ingest_paths(settings, [SEED]))
        assert reports[0].comments == 20
        out = asyncio.run(
            read_topics(
                settings,
                [names.clean_articles, names.clean_comments, names.dlq],
                until=lambda o: (
                    len(o[names.clean_articles]) >= 1 and len(o[names.clean_comments]) >= 20
                ),
                timeout=90,
            )
        )
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    articles = out[names.clean_articles]
    assert [a["title"] for a in articles] == [HEADLINE], log[-3000:]
    assert len(out[names.clean_comments]) == 20
    assert out[names.dlq] == []
    # the broker's client port speaks only SASL_SSL, so the worker's output above proves it
    # authenticated; its whole log (start-up, rebalance, shutdown) never shows the password
    assert secure_broker.password not in log


def test_wrong_password_fails_fast_with_one_line(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    wrong = "wrong-" + uuid.uuid4().hex
    env = security_env(secure_settings(secure_broker, tmp_path, password=wrong))
    started = time.monotonic()
    result = run_cli(env, "topics", "create", timeout=60)
    took = time.monotonic() - started
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert took < 30, f"took {took:.1f}s"
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, output
    assert lines[0].startswith("newspipe: error: "), output
    assert "authentication" in lines[0].lower(), output
    assert "Traceback" not in output
    assert wrong not in output and secure_broker.password not in output


def test_worker_with_wrong_password_exits(secure_broker: SecureBroker, tmp_path: Path) -> None:
    """A worker that cannot authenticate stops with an error instead of retrying forever."""
    wrong = "wrong-" + uuid.uuid4().hex
    worker = SecureWorker(
        secure_settings(secure_broker, tmp_path, password=wrong), tmp_path / "bad-worker.log"
    ).start()
    try:
        assert worker.proc is not None
        code = worker.proc.wait(timeout=30)
    finally:
        worker.stop()
    log = worker.log.read_text(errors="replace")
    assert code != 0, log[-3000:]
    assert "SaslAuthenticationFailed" in log, log[-3000:]
    assert wrong not in log and secure_broker.password not in log


def test_untrusted_certificate_fails_with_one_line(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    env = security_env(secure_settings(secure_broker, tmp_path))
    env["NEWSPIPE_KAFKA_SSL_CAFILE"] = ""  # system CAs only: the test CA is not among them
    result = run_cli(env, "topics", "create", timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("newspipe: error: "), output
    assert "certificate" in lines[0].lower(), output
    assert secure_broker.password not in output


def test_right_password_via_cli(secure_broker: SecureBroker, tmp_path: Path) -> None:
    """The same CLI path with the right password works, and prints no password either."""
    env = security_env(secure_settings(secure_broker, tmp_path))
    result = run_cli(env, "topics", "create")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert result.stdout.startswith("created "), output
    assert secure_broker.password not in output


def _help_commands() -> list[list[str]]:
    """`--help` for the program and every subcommand, nested ones included."""
    import argparse

    from pipeline.cli import build_parser

    commands: list[list[str]] = []

    def walk(parser: argparse.ArgumentParser, prefix: list[str]) -> None:
        commands.append([*prefix, "--help"])
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, [*prefix, name])

    walk(build_parser(), [])
    # `newspipe broker ACTION --help` is handled by devtools.broker's own parser
    commands.append(["broker", "status", "--help"])
    return commands


def test_help_and_reprs_never_show_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.app import _credentials
    from pipeline.cli import main

    password = "pw-" + uuid.uuid4().hex
    env = {
        "NEWSPIPE_BROKER": "kafka://127.0.0.1:1",
        "NEWSPIPE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "NEWSPIPE_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "NEWSPIPE_KAFKA_SASL_USERNAME": "alice",
        "NEWSPIPE_KAFKA_SASL_PASSWORD": password,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    commands = _help_commands()
    assert len(commands) >= 8, commands
    for argv in commands:
        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
            pytest.raises(SystemExit) as exit_info,
        ):
            main(argv)
        assert exit_info.value.code == 0, (argv, err.getvalue())
        assert "usage:" in out.getvalue(), argv
        assert password not in out.getvalue() + err.getvalue(), argv

    # the real console entry point too, in its own process
    result = run_cli(dict(os.environ), "--help")
    assert result.returncode == 0 and password not in result.stdout + result.stderr

    settings = Settings.from_env(env)
    assert settings.kafka_sasl_password == password
    assert password not in repr(settings) and password not in str(settings)
    assert password not in repr(_credentials(settings))


def test_archive_and_replay_from_a_topic_through_sasl_ssl(
    secure_broker: SecureBroker, tmp_path: Path
) -> None:
    """The backfill tool's Kafka clients get the security settings too (the shipped Kubernetes
    replay Job reads --from-topic on a SASL_SSL cluster)."""
    from pipeline.ingest import ingest_paths
    from pipeline.kafka_io import create_topics
    from pipeline.topics import TopicNames

    settings = secure_settings(secure_broker, tmp_path)
    names = TopicNames(settings.topic_prefix)
    asyncio.run(create_topics(settings))
    asyncio.run(ingest_paths(settings, [SEED]))
    env = security_env(settings)
    archived = run_cli(env, "archive", "--dir", str(tmp_path / "arch"), "--from-beginning",
                       "--idle-exit", "5", timeout=120)  # fmt: skip
    assert archived.returncode == 0, archived.stdout + archived.stderr
    assert len(list((tmp_path / "arch").rglob("part-*.jsonl*"))) >= 2  # articles and comments
    replayed = run_cli(env, "replay", "--from-topic", names.raw_comments, "--topic",
                       names.raw_comments, "--json", timeout=120)  # fmt: skip
    output = replayed.stdout + replayed.stderr
    assert replayed.returncode == 0, output
    assert secure_broker.password not in output
