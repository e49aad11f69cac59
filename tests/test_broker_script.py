"""The local broker script: idempotent start, clean stop, clear errors."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from devtools import broker

pytestmark = pytest.mark.kafka
ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.broker", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=180,
    )


def test_starting_a_running_broker_is_harmless(kafka: str) -> None:
    result = run("start")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stdout
    assert run("status").returncode == 0


def test_second_broker_start_stop_leaves_no_process(tmp_path: Path, kafka: str) -> None:
    """A second broker on other ports: start twice, stop, and no java process is left behind."""
    env = dict(os.environ, NEWSPIPE_BROKER_HOME=str(tmp_path / "k"))
    # reuse the cached jars instead of fetching again
    (tmp_path / "k").mkdir()
    os.symlink(broker.DEFAULT_HOME / "libs", tmp_path / "k" / "libs")
    with socket.socket() as s1, socket.socket() as s2:
        s1.bind(("127.0.0.1", 0))
        s2.bind(("127.0.0.1", 0))
        port, cport = s1.getsockname()[1], s2.getsockname()[1]
    args = ("--port", str(port), "--controller-port", str(cport))
    first = run("start", *args, env=env)
    assert first.returncode == 0, first.stderr
    assert "started" in first.stdout
    pid = int((tmp_path / "k" / "broker.pid").read_text())
    second = run("start", *args, env=env)
    assert second.returncode == 0 and "already running" in second.stdout
    stopped = run("stop", *args, env=env)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    time.sleep(0.2)
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()
    assert run("stop", *args, env=env).stdout.strip() == "kafka not running"
    assert run("status", *args, env=env).returncode == 3


def test_start_reports_a_taken_port_in_one_line(tmp_path: Path) -> None:
    env = dict(os.environ, NEWSPIPE_BROKER_HOME=str(tmp_path / "k"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("start", "--port", str(port), "--controller-port", str(port + 1), env=env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"port {port}" in result.stderr and "taken" in result.stderr


def test_start_without_java_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, NEWSPIPE_BROKER_HOME=str(tmp_path / "k"), PATH=str(tmp_path))
    result = run("start", "--port", "1", "--controller-port", "2", env=env)
    assert result.returncode == 1
    assert "Java is not installed" in result.stderr
