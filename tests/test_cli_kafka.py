"""The README's by-hand sequence, typed as it is written there, through the real broker.

The block after the `by-hand` marker in README.md is read line by line: `newspipe worker` starts
a worker process, `curl` is fetched with urllib, `broker start`/`stop` are the fixture's, every
other `newspipe` line runs as a process with this test's topic prefix and app id. So a command
the README shows cannot break, or drift from the code, unnoticed.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import subprocess
import sys
import urllib.request

import pytest
from aiokafka.admin import AIOKafkaAdminClient

from pipeline.kafka_io import app_topic_names, delete_topics
from pipeline.settings import Settings
from tests.conftest import ROOT, settings_env

pytestmark = pytest.mark.kafka

MARKER = "<!-- by-hand: tests/test_cli_kafka.py runs this block -->"


def readme_commands() -> list[str]:
    """The commands of the README's by-hand block, comments and prompts removed."""
    text = (ROOT / "README.md").read_text()
    assert MARKER in text, "README.md lost its by-hand block"
    block = text.split(MARKER, 1)[1].split("```", 2)[1]
    lines = [line.split("  #", 1)[0].strip() for line in block.splitlines()[1:]]
    return [line for line in lines if line and not line.startswith("#")]


def existing_topics(settings: Settings) -> set[str]:
    async def run() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(run())


def run_example_consumer(settings: Settings) -> str:
    """docs/consumers.md's consumer, as a reader would run it, on the clean topics."""
    done = subprocess.run(
        [sys.executable, "docs/examples/consume_clean.py", "--group", "by-hand", "--idle", "5"],
        cwd=ROOT, env=settings_env(settings), capture_output=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    return done.stdout.decode()


def test_the_readme_by_hand_sequence_runs_as_written(
    pipeline_settings: Settings, worker_factory
) -> None:
    settings = pipeline_settings
    commands = readme_commands()
    assert [c.split()[:2] for c in commands if c.startswith("newspipe")][:3] == [
        ["newspipe", "broker"], ["newspipe", "topics"], ["newspipe", "worker"],
    ]  # fmt: skip
    outputs: dict[str, str] = {}
    try:
        for command in commands:
            if command.startswith("newspipe broker"):
                continue  # the session's broker (tests/conftest.py) is already running
            if command == "newspipe worker":
                worker_factory(settings, "by-hand").start().wait_ready()
                continue
            if command.startswith("curl"):
                url = re.search(r"(\d+\.\d+\.\d+\.\d+):(\d+)(/\S*)", command)
                assert url, command
                path = url.group(3)
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{settings.web_port}{path}", timeout=5
                ) as resp:
                    outputs[command] = resp.read().decode()
                continue
            assert command.startswith("newspipe "), command
            argv = shlex.split(command)[1:]
            done = subprocess.run(
                [sys.executable, "-m", "pipeline.cli", *argv], cwd=ROOT,
                env=settings_env(settings), capture_output=True, timeout=180,
            )  # fmt: skip
            assert done.returncode == 0, (command, done.stderr.decode()[-2000:])
            outputs[command] = done.stdout.decode()
            if argv[:2] == ["show", "--articles"]:
                outputs["consumer"] = run_example_consumer(settings)
    finally:
        asyncio.run(delete_topics(settings, app_topic_names(settings)))

    by_verb = {tuple(shlex.split(c)[1:3]): out for c, out in outputs.items()}
    assert "created" in by_verb[("topics", "create")]
    assert "1 article" in next(v for k, v in by_verb.items() if k[0] == "ingest")
    shown = next(v for k, v in by_verb.items() if k == ("show", "--articles"))
    assert "clean.articles" in shown and "clean.comments" in shown
    assert "dlq: no dead letters" in by_verb[("show", "dlq")]
    assert "topic.trends" in by_verb[("show", "trends")]
    consumed = outputs["consumer"].splitlines()
    assert sum(" new article: " in line for line in consumed) == 1
    assert sum(line.startswith("comment ") for line in consumed) >= 20
    metrics = next(v for c, v in outputs.items() if c.startswith("curl"))
    assert re.search(r'newspipe_records_out_total\{[^}]*stream="articles"[^}]*\} 1\.0', metrics)
    deleted = by_verb[("topics", "delete")]
    assert f"{settings.app_id}-trends-1m-changelog" in deleted
    left = {
        t for t in existing_topics(settings)
        if t.startswith((settings.topic_prefix, f"{settings.app_id}-"))
    }  # fmt: skip
    assert left == set()
