"""A `newspipe worker` in its own process: what the integration tests and the benchmarks run.

Its own session (process group), so SIGTERM or SIGKILL reach the worker alone: tests kill it
like a crash, benchmarks read its RSS and its /metrics.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipeline.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def worker_env(settings: Settings, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The current environment with `settings` (and `extra`) as NEWSPIPE_* variables."""
    env = dict(os.environ)
    env.update(settings.to_env())
    env.update(extra or {})
    return env


class WorkerProcess:
    def __init__(self, settings: Settings, log: Path, extra_env: dict[str, str] | None = None):
        self.settings = settings
        self.log = log
        self.extra_env = extra_env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> WorkerProcess:
        with open(self.log, "ab") as out:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "pipeline.cli", "worker"],
                env=worker_env(self.settings, self.extra_env),
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                start_new_session=True,
            )
        return self

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.settings.web_port}{path}"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url("/readyz"), timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise AssertionError(f"worker exited early:\n{self.log.read_text()[-3000:]}")
            if self.ready():
                return
            time.sleep(0.3)
        raise AssertionError(f"worker not ready in {timeout}s:\n{self.log.read_text()[-3000:]}")

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(self.url("/metrics"), timeout=5) as resp:
                return resp.read().decode()
        except OSError:
            return ""

    def rss_mib(self) -> float | None:
        if not self.alive() or self.proc is None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            return None
        return None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive() and self.proc is not None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(timeout=60)

    def stop(self) -> None:
        if self.alive() and self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
