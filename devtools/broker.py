"""Local single-node Apache Kafka (KRaft) for the demo, the tests and the benchmarks.

The broker is real Kafka, built from the jars Maven Central publishes: `kafka/pom.xml` names the
version, Maven copies the jars into a git-ignored cache, and `java -cp` runs `kafka.Kafka`.
Everything here is idempotent so that `make demo`, `make test` and `make bench` can all call
`start` without caring whether a broker is already up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KAFKA_DIR = ROOT / "kafka"
DEFAULT_HOME = ROOT / ".cache" / "kafka"
JVM_OPTS = [
    "-Xmx512m",
    "-Xms512m",
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-Djava.awt.headless=true",
]


class BrokerError(RuntimeError):
    """A broker problem a user can act on; printed as one line."""


@dataclass(frozen=True)
class BrokerPaths:
    home: Path

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def data(self) -> Path:
        return self.home / "data"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pidfile(self) -> Path:
        return self.home / "broker.pid"

    @property
    def config(self) -> Path:
        return self.home / "server.properties"


def kafka_version() -> str:
    """The Kafka version pinned in kafka/pom.xml (the single place it is named)."""
    text = (KAFKA_DIR / "pom.xml").read_text()
    start = text.index("<kafka.version>") + len("<kafka.version>")
    return text[start : text.index("</kafka.version>", start)].strip()


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); it is not a running broker.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def _read_pid(paths: BrokerPaths) -> int | None:
    try:
        pid = int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process in MiB, from /proc (Linux only)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def fetch_jars(paths: BrokerPaths, quiet: bool = True) -> None:
    """Copy Kafka's runtime jars from Maven Central (via ~/.m2) into the cache, once per version."""
    stamp = paths.libs / f".kafka-{kafka_version()}"
    if stamp.exists():
        return
    if shutil.which("mvn") is None:
        raise BrokerError("Maven (mvn) is not installed: it is needed once to fetch Kafka's jars")
    if paths.libs.exists():
        shutil.rmtree(paths.libs)
    paths.libs.mkdir(parents=True)
    cmd = [
        "mvn",
        *(["-q"] if quiet else []),
        "-B",
        "-f",
        str(KAFKA_DIR / "pom.xml"),
        "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy-dependencies",
        "-DincludeScope=runtime",
        f"-DoutputDirectory={paths.libs}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BrokerError("Maven could not fetch Kafka's jars: " + " | ".join(tail))
    stamp.touch()


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def _write_config(paths: BrokerPaths, port: int, controller_port: int) -> None:
    template = (KAFKA_DIR / "server.properties").read_text()
    paths.config.write_text(
        template.replace("{port}", str(port))
        .replace("{controller_port}", str(controller_port))
        .replace("{log_dirs}", str(paths.data))
    )


def _java(paths: BrokerPaths, main: str, *args: str) -> list[str]:
    return [
        "java",
        *JVM_OPTS,
        f"-Dkafka.logs.dir={paths.logs}",
        f"-Dlog4j2.configurationFile={KAFKA_DIR / 'log4j2.properties'}",
        "-cp",
        str(paths.libs / "*"),
        main,
        *args,
    ]


def _format_storage(paths: BrokerPaths) -> None:
    if (paths.data / "meta.properties").exists():
        return
    paths.data.mkdir(parents=True, exist_ok=True)
    cmd = _java(
        paths,
        "kafka.tools.StorageTool",
        "format",
        # `=` form: a random id can start with "-", which the option parser would misread
        f"--cluster-id={_cluster_id()}",
        "-c",
        str(paths.config),
        "--ignore-formatted",
    )
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise BrokerError("formatting KRaft storage failed: " + result.stderr.strip()[-300:])


async def _metadata_ok(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.list_topics()
        return True
    except Exception:
        return False
    finally:
        await admin.close()


def wait_ready(bootstrap: str, timeout: float, pid: int | None = None) -> float:
    """Block until a metadata request succeeds; returns the seconds waited."""
    started = time.monotonic()
    host, port = bootstrap.rsplit(":", 1)
    while time.monotonic() - started < timeout:
        if pid is not None and not _pid_alive(pid):
            raise BrokerError("the broker process exited during start-up; see its log")
        if _port_open(host, int(port)) and asyncio.run(_metadata_ok(bootstrap)):
            return time.monotonic() - started
        time.sleep(0.3)
    raise BrokerError(f"the broker did not answer a metadata request within {timeout:.0f}s")


def start(paths: BrokerPaths, port: int, controller_port: int, timeout: float = 90.0) -> str:
    """Start the broker unless ours already runs; returns a one-line report."""
    bootstrap = f"127.0.0.1:{port}"
    pid = _read_pid(paths)
    if pid is not None:
        wait_ready(bootstrap, timeout, pid)
        return f"kafka {kafka_version()} already running (pid {pid}) on {bootstrap}"
    if shutil.which("java") is None:
        raise BrokerError("Java is not installed: the local Kafka broker needs a JRE 17+")
    for p in (port, controller_port):
        if _port_open("127.0.0.1", p):
            raise BrokerError(f"port {p} on 127.0.0.1 is taken by another process")
    paths.home.mkdir(parents=True, exist_ok=True)
    paths.logs.mkdir(parents=True, exist_ok=True)
    fetch_jars(paths)
    _write_config(paths, port, controller_port)
    _format_storage(paths)
    t0 = time.monotonic()
    with open(paths.logs / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            _java(paths, "kafka.Kafka", str(paths.config)),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pidfile.write_text(str(proc.pid))
    try:
        wait_ready(bootstrap, timeout, proc.pid)
    except BrokerError:
        stop(paths)
        raise
    took = time.monotonic() - t0
    rss = rss_mib(proc.pid)
    return (
        f"kafka {kafka_version()} started (pid {proc.pid}) on {bootstrap} "
        f"in {took:.1f}s, RSS {rss:.0f} MiB"
    )


def stop(paths: BrokerPaths, timeout: float = 30.0) -> str:
    """Stop our broker (SIGTERM, then SIGKILL after `timeout`); harmless when none runs."""
    pid = _read_pid(paths)
    if pid is None:
        paths.pidfile.unlink(missing_ok=True)
        return "kafka not running"
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.2)
    if _pid_alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _pid_alive(pid):
            time.sleep(0.1)
    paths.pidfile.unlink(missing_ok=True)
    return f"kafka stopped (pid {pid})"


def status(paths: BrokerPaths, port: int) -> tuple[bool, str]:
    pid = _read_pid(paths)
    if pid is None:
        return False, "kafka not running"
    rss = rss_mib(pid)
    return (
        True,
        f"kafka {kafka_version()} running (pid {pid}) on 127.0.0.1:{port}, RSS {rss:.0f} MiB",
    )


ACTIONS = {
    "start": "start the broker (idempotent: a running one is reported); fetches the jars first",
    "stop": "SIGTERM, then SIGKILL after 30 s; leaves no process",
    "status": "print whether it runs (exit 3 when not)",
    "fetch": "download the Kafka jars from Maven Central into the home folder, start nothing",
    "reset": "stop the broker and delete its data (every topic); the jars stay",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The broker's arguments, shared by `python -m devtools.broker` and `newspipe broker`."""
    parser.add_argument(
        "action",
        choices=list(ACTIONS),
        help="; ".join(f"{name}: {text}" for name, text in ACTIONS.items()),
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("NEWSPIPE_BROKER_PORT", "9092")),
        help="client port on 127.0.0.1 (default NEWSPIPE_BROKER_PORT, else 9092)",
    )
    parser.add_argument(
        "--controller-port",
        type=int,
        default=int(os.environ.get("NEWSPIPE_BROKER_CONTROLLER_PORT", "9093")),
        help="KRaft controller port (default NEWSPIPE_BROKER_CONTROLLER_PORT, else 9093)",
    )
    parser.add_argument(
        "--home",
        type=Path,
        default=Path(os.environ.get("NEWSPIPE_BROKER_HOME", DEFAULT_HOME)),
        help="cache for jars, data and logs, git-ignored (default NEWSPIPE_BROKER_HOME, else "
        ".cache/kafka in the checkout)",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="newspipe broker",
        description="Run a local single-node Apache Kafka broker (KRaft) on 127.0.0.1.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """One action on parsed arguments (`newspipe broker` parses them with its own parser)."""
    paths = BrokerPaths(args.home)
    try:
        if args.action == "start":
            print(start(paths, args.port, args.controller_port))
        elif args.action == "stop":
            print(stop(paths))
        elif args.action == "fetch":
            fetch_jars(paths, quiet=False)
            print(f"kafka {kafka_version()} jars in {paths.libs}")
        elif args.action == "reset":
            print(stop(paths))
            shutil.rmtree(paths.data, ignore_errors=True)
            print(f"removed {paths.data}")
        else:
            running, line = status(paths, args.port)
            print(line)
            return 0 if running else 3
    except BrokerError as exc:
        print(f"newspipe broker: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
