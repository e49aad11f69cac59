"""The stack in real containers: the images built from this checkout, run with podman.

`scripts/container_images.sh all` builds the newspipe image (./Dockerfile, base substituted by a
build argument where no registry is reachable) and the broker image (deploy/broker). Then one
broker container, `newspipe topics create` and one worker container, and `newspipe ingest` of the
seed page from a container, all on the host network with ports chosen per run (never 9092). The
worker runs as the manifests run it: the user and read-only root file system of
deploy/k8s/base/statefulset.yaml, stopped with SIGTERM within the grace period they give.

Everything the tests start (containers, volumes) is removed at the end, failed or not. Without
podman (or docker) the tests skip with the reason, except with CI=true, where they fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from devtools import broker
from pipeline.settings import Settings
from pipeline.show import read_topics
from pipeline.stream.runner import GROUP_SUFFIX
from pipeline.topics import TopicNames
from tests.conftest import SEED

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() == "true"
CONTAINERS_CONF = ROOT / "deploy" / "podman" / "containers.conf"
STATEFULSET = ROOT / "deploy" / "k8s" / "base" / "statefulset.yaml"
COMPOSE = ROOT / "docker-compose.yml"
TITLE = "South Korea proposes Kaesong talks with North"
SEED_COMMENTS = 20


def missing(what: str) -> None:
    """Skip with the reason; with CI=true fail instead, so CI never passes without running it."""
    message = f"{what} (run `bash scripts/container_images.sh tools`)"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def engine() -> str:
    """podman where installed (what these machines run), else a working docker."""
    if shutil.which("podman"):
        return "podman"
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "info"], capture_output=True).returncode == 0
    ):
        return "docker"
    missing("no container engine: neither podman nor a running docker")
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def manifest_worker() -> dict[str, Any]:
    """What the Kubernetes base promises for the worker: user, read-only root, grace period."""
    spec = yaml.safe_load(STATEFULSET.read_text())["spec"]["template"]["spec"]
    container = next(c for c in spec["containers"] if c["name"] == "worker")
    security = {**spec.get("securityContext", {}), **container.get("securityContext", {})}
    return {
        "uid": int(security["runAsUser"]),
        "read_only": bool(security.get("readOnlyRootFilesystem", False)),
        "grace_s": int(spec["terminationGracePeriodSeconds"]),
    }


def compose_grace_s() -> int:
    """The compose worker's stop_grace_period ("60s") in seconds."""
    value = str(yaml.safe_load(COMPOSE.read_text())["services"]["worker"]["stop_grace_period"])
    match = re.fullmatch(r"(\d+)s", value)
    assert match, f"unexpected stop_grace_period {value!r}"
    return int(match.group(1))


@dataclass
class Engine:
    """The container CLI, and everything this run started, so that `cleanup` removes it all."""

    exe: str
    tag: str
    env: dict[str, str]
    containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)

    def __call__(self, *args: str, timeout: float = 120, check: bool = True) -> str:
        out = subprocess.run(
            [self.exe, *args], capture_output=True, text=True, timeout=timeout, env=self.env
        )
        if check and out.returncode != 0:
            raise AssertionError(f"{self.exe} {' '.join(args)} -> {out.returncode}:\n{out.stderr}")
        return out.stdout

    def name(self, what: str) -> str:
        return f"newspipe-ct-{self.tag}-{what}"

    def volume(self, what: str) -> str:
        name = self.name(what)
        self("volume", "create", name)
        self.volumes.append(name)
        return name

    def run(
        self, what: str, image: str, *args: str, options: list[str], env: dict[str, str]
    ) -> str:
        """Start a detached container on the host network; returns its name."""
        name = self.name(what)
        flags = [f"--env={k}={v}" for k, v in env.items()]
        self.containers.append(name)
        self("run", "--detach", f"--name={name}", "--network=host", *options, *flags, image, *args)
        return name

    def run_once(self, image: str, *args: str, options: list[str], env: dict[str, str]) -> str:
        """Run a one-shot container to its end; returns its output, fails on a non-zero exit."""
        flags = [f"--env={k}={v}" for k, v in env.items()]
        return self("run", "--rm", "--network=host", *options, *flags, image, *args, timeout=180)

    def inspect(self, name: str) -> dict[str, Any]:
        return json.loads(self("inspect", name))[0]

    def running(self, name: str) -> bool:
        return self.inspect(name)["State"]["Running"]

    def logs(self, name: str, lines: int = 80) -> str:
        """The container's last lines, stdout and stderr (podman replays them on its own two)."""
        out = subprocess.run(
            [self.exe, "logs", "--tail", str(lines), name],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=30,
            env=self.env,
        )
        return out.stdout

    def cleanup(self) -> None:
        for name in reversed(self.containers):
            self("rm", "--force", "--time=0", "--volumes", name, check=False, timeout=60)
        for name in self.volumes:
            self("volume", "rm", "--force", name, check=False, timeout=60)


@pytest.fixture(scope="module")
def images() -> dict[str, str]:
    """Build both images (cached layers make a rebuild take seconds); their names."""
    exe = engine()
    env = {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)}
    if exe == "podman" and not (shutil.which("runc") and shutil.which("mmdebstrap")):
        missing("podman needs runc and mmdebstrap here")
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "container_images.sh"), "all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=1800,
    )
    assert out.returncode == 0, f"building the images failed:\n{(out.stdout + out.stderr)[-4000:]}"
    report = re.findall(r"^\S+: \d+ MB, built in \d+ s$", out.stdout, re.M)
    print("\n" + "\n".join(report) + f"\nimages ready in {time.monotonic() - started:.0f} s")
    built = [line.split(": ", 1)[0] for line in report]
    app = [n for n in built if n.rsplit("/", 1)[-1].startswith("newspipe:")]
    kafka = [n for n in built if n.rsplit("/", 1)[-1].startswith("newspipe-kafka:")]
    assert len(app) == 1 and len(kafka) == 1, f"unexpected build report:\n{out.stdout}"
    return {"app": app[0], "kafka": kafka[0], "engine": exe}


@dataclass
class Stack:
    """The running stack of this module: its engine, settings and container names."""

    engine: Engine
    settings: Settings
    app_image: str
    kafka: str
    worker: str
    worker_options: list[str]
    ready_s: float
    ingest_output: str

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            "NEWSPIPE_BROKER": s.broker,
            "NEWSPIPE_TOPIC_PREFIX": s.topic_prefix,
            "NEWSPIPE_APP_ID": s.app_id,
            "NEWSPIPE_PARTITIONS": str(s.partitions),
            "NEWSPIPE_WEB_HOST": s.web_host,
            "NEWSPIPE_WEB_PORT": str(s.web_port),
        }


def http_status(port: int, path: str) -> int | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def wait_ready(eng: Engine, name: str, port: int, timeout: float = 150) -> float:
    """Seconds until /readyz of the container answers 200; fails with its log if it exits."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if http_status(port, "/readyz") == 200:
            return time.monotonic() - started
        if not eng.running(name):
            raise AssertionError(f"{name} exited before it was ready:\n{eng.logs(name)}")
        time.sleep(0.5)
    raise AssertionError(f"{name}: /readyz not 200 within {timeout:.0f}s:\n{eng.logs(name)}")


def start_worker(
    eng: Engine, image: str, name: str, options: list[str], env: dict[str, str]
) -> str:
    """`newspipe worker` (the image's CMD, spelled out) in a detached container."""
    return eng.run(name, image, "worker", options=options, env=env)


@pytest.fixture(scope="module")
def stack(images: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Stack]:
    """Broker, topics, one worker (ready) and the seed ingested, all in containers."""
    tag = uuid.uuid4().hex[:8]
    eng = Engine(images["engine"], tag, {**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)})
    failed_before = request.session.testsfailed
    try:
        port, controller = free_port(), free_port()
        bootstrap = f"127.0.0.1:{port}"
        kafka = eng.run(
            "kafka",
            images["kafka"],
            options=[f"--volume={eng.volume('kafka')}:/var/lib/kafka"],
            env={
                "KAFKA_LISTENERS": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}",
                "KAFKA_ADVERTISED_LISTENERS": f"PLAINTEXT://{bootstrap}",
                "KAFKA_CONTROLLER_QUORUM_VOTERS": f"1@127.0.0.1:{controller}",
                "CLUSTER_ID": "thkIYFgHS7iXpVmrFFq17Q",
            },
        )
        try:
            took = broker.wait_ready(bootstrap, timeout=120)
        except broker.BrokerError as exc:
            raise AssertionError(f"broker container: {exc}\n{eng.logs(kafka)}") from None
        print(f"\nbroker container ready in {took:.1f} s on {bootstrap}")

        settings = replace(
            Settings(),
            broker=f"kafka://{bootstrap}",
            topic_prefix=f"ct{tag}.",
            app_id=f"newspipe-ct-{tag}",
            partitions=3,
            web_host="127.0.0.1",
            web_port=free_port(),
        )
        promised = manifest_worker()
        options = [
            f"--volume={eng.volume('state')}:/var/lib/newspipe",
            f"--stop-timeout={promised['grace_s']}",
        ]
        if promised["read_only"]:
            options.append("--read-only")
        stack = Stack(eng, settings, images["app"], kafka, "", options, 0.0, "")
        one_shot = ["--read-only"] if promised["read_only"] else []
        eng.run_once(images["app"], "topics", "create", options=one_shot, env=stack.env())

        t0 = time.monotonic()
        stack.worker = start_worker(eng, images["app"], "worker", options, stack.env())
        wait_ready(eng, stack.worker, settings.web_port)
        stack.ready_s = time.monotonic() - t0
        print(f"worker container ready in {stack.ready_s:.1f} s (from `run`)")

        stack.ingest_output = eng.run_once(
            images["app"],
            "ingest",
            f"/data/{SEED.name}",
            options=[*one_shot, f"--volume={SEED.parent}:/data:ro"],
            env=stack.env(),
        )
    except BaseException:
        failed_before = -1  # the stack did not come up: show what every container said
        raise
    else:
        yield stack
    finally:
        if request.session.testsfailed > failed_before:
            for name in eng.containers:
                print(f"\n----- {name}: last lines -----\n{eng.logs(name)}")
        eng.cleanup()


def read_clean(settings: Settings, timeout: float, wait_for_seed: bool) -> dict[str, list]:
    names = TopicNames(settings.topic_prefix, settings.app_id)
    topics = [names.clean_articles, names.clean_comments, names.dlq]

    def enough(out: dict[str, list]) -> bool:
        arts, comms = out[names.clean_articles], out[names.clean_comments]
        return len(arts) >= 1 and len(comms) >= SEED_COMMENTS

    out = asyncio.run(
        read_topics(settings, topics, until=enough if wait_for_seed else None, timeout=timeout)
    )
    return {
        "articles": out[names.clean_articles],
        "comments": out[names.clean_comments],
        "dlq": out[names.dlq],
    }


async def group_offsets(settings: Settings) -> dict[str, tuple[int, int]]:
    """For each raw input partition with records: (offset the stages' group committed, log end)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient

    names = TopicNames(settings.topic_prefix, settings.app_id)
    tps = [
        TopicPartition(topic, p)
        for topic in (names.raw_articles, names.raw_comments)
        for p in range(settings.partitions)
    ]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        committed = await admin.list_consumer_group_offsets(f"{settings.app_id}{GROUP_SUFFIX}")
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
        await admin.close()
    return {
        f"{tp.topic}/{tp.partition}": (committed[tp].offset if tp in committed else -1, end)
        for tp, end in ends.items()
        if end > 0
    }


def metric_total(text: str, name: str) -> float:
    """Sum of a counter over all its label sets in a Prometheus text page."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(f"{name}{{") or line.startswith(f"{name} ")
    )


def worker_metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        return resp.read().decode()


def test_worker_container_turns_ready_as_the_non_root_user_of_the_manifests(stack: Stack) -> None:
    promised = manifest_worker()
    info = stack.engine.inspect(stack.worker)
    assert info["State"]["Running"]
    assert http_status(stack.settings.web_port, "/readyz") == 200
    assert http_status(stack.settings.web_port, "/healthz") == 200
    uid = stack.engine("exec", stack.worker, "id", "-u").strip()
    assert uid == str(promised["uid"]) != "0"
    assert info["Config"]["User"].split(":")[0] == str(promised["uid"])
    assert info["Config"]["Entrypoint"] in (["newspipe"], "newspipe")
    if stack.engine.exe == "podman":
        # podman schedules HEALTHCHECKs through systemd, absent here: run the image's check once
        assert stack.engine("healthcheck", "run", stack.worker).strip() in ("", "healthy")
    assert promised["read_only"], "the manifests no longer promise a read-only root file system"
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    denied = subprocess.run(
        [stack.engine.exe, "exec", stack.worker, "python", "-c", "open('/opt/venv/probe', 'w')"],
        capture_output=True,
        text=True,
        env=stack.engine.env,
    )
    assert denied.returncode != 0 and "Read-only file system" in denied.stderr, denied.stderr
    # the state directory is the one writable place besides /tmp
    stack.engine("exec", stack.worker, "python", "-c", "open('/var/lib/newspipe/probe', 'w')")


def test_image_holds_no_build_tools_and_keeps_its_healthcheck(stack: Stack) -> None:
    image = json.loads(stack.engine("image", "inspect", stack.app_image))[0]
    config = image["Config"]
    assert config["Entrypoint"] == ["newspipe"] and config["Cmd"] == ["worker"]
    # docker keeps it in Config, podman at the top (both only with the docker image format)
    healthcheck = config.get("Healthcheck") or image.get("Healthcheck") or {}
    assert "/healthz" in " ".join(healthcheck.get("Test", [])), image.keys()
    found = stack.engine(
        "run",
        "--rm",
        "--entrypoint=/bin/sh",
        stack.app_image,
        "-c",
        "for t in gcc cc make g++ git; do command -v $t; done; true",
    )
    assert found.strip() == "", f"build tools in the runtime image: {found.split()}"


def test_seed_ingested_from_a_container_comes_out_of_the_clean_topics(stack: Stack) -> None:
    assert f"+ {SEED_COMMENTS} comments produced" in stack.ingest_output, stack.ingest_output
    out = read_clean(stack.settings, timeout=90, wait_for_seed=True)
    assert out["dlq"] == []
    assert [a["title"] for a in out["articles"]] == [TITLE]
    assert len(out["comments"]) == SEED_COMMENTS
    assert len({c["comment_id"] for c in out["comments"]}) == SEED_COMMENTS


def test_sigterm_stops_the_worker_in_its_grace_period_with_offsets_committed(stack: Stack) -> None:
    grace = manifest_worker()["grace_s"]
    assert grace == compose_grace_s(), "compose and Kubernetes disagree on the grace period"
    before = read_clean(stack.settings, timeout=90, wait_for_seed=True)
    assert len(before["articles"]) == 1 and len(before["comments"]) == SEED_COMMENTS

    # the counters read after the restart below must be the ones that count this worker's input
    assert metric_total(worker_metrics(stack.settings.web_port), "newspipe_records_in_total") > 0

    started = time.monotonic()
    stack.engine("stop", f"--time={grace}", stack.worker, timeout=grace + 30)
    stopped_in = time.monotonic() - started
    state = stack.engine.inspect(stack.worker)["State"]
    print(f"\nworker stopped by SIGTERM in {stopped_in:.1f} s (grace {grace} s)")
    assert not state["Running"]
    assert stopped_in < grace
    assert state["ExitCode"] == 0, f"exit code {state['ExitCode']} (137 = killed after the grace)"

    offsets = asyncio.run(group_offsets(stack.settings))
    assert offsets, "no raw records found"
    behind = {tp: pair for tp, pair in offsets.items() if pair[0] != pair[1]}
    assert not behind, f"committed != log end after SIGTERM: {behind}"

    # a restart on the same state volume resumes after the committed offsets: nothing is read
    # again, and nothing comes out twice
    restarted = start_worker(
        stack.engine, stack.app_image, "worker-restart", stack.worker_options, stack.env()
    )
    again_s = wait_ready(stack.engine, restarted, stack.settings.web_port)
    print(f"restarted worker ready in {again_s:.1f} s")
    time.sleep(3 * max(stack.settings.commit_interval_s, stack.settings.batch_timeout_s) + 2)
    metrics = worker_metrics(stack.settings.web_port)
    assert metric_total(metrics, "newspipe_records_in_total") == 0
    assert metric_total(metrics, "newspipe_already_committed_total") == 0
    after = read_clean(stack.settings, timeout=20, wait_for_seed=False)
    assert len(after["articles"]) == 1
    assert len(after["comments"]) == SEED_COMMENTS
    stack.engine("stop", f"--time={grace}", restarted, timeout=grace + 30)


# --- docker-compose.yml under podman-compose -----------------------------------------------------

OVERRIDE = ROOT / "deploy" / "podman" / "compose.override.yml"


def test_compose_override_names_the_pinned_broker_image() -> None:
    image = yaml.safe_load(OVERRIDE.read_text())["services"]["kafka"]["image"]
    assert image == f"localhost/newspipe-kafka:{broker.kafka_version()}"


def test_compose_file_runs_broker_topics_and_worker_under_podman_compose(
    images: dict[str, str],
) -> None:
    """The shipped compose file plus the override: broker, one-shot topics, a worker that turns
    ready, and the seed (ingested from the host through the published Kafka port) comes out."""
    if images["engine"] != "podman" or not shutil.which("podman-compose"):
        missing("podman-compose is not installed")
    tag = uuid.uuid4().hex[:8]
    project = f"newspipe-cc-{tag}"
    kafka_port = free_port()
    env = {
        **os.environ,
        "CONTAINERS_CONF": str(CONTAINERS_CONF),
        "KAFKA_HOST_PORT": str(kafka_port),
    }
    eng = Engine("podman", tag, env)
    compose = ["podman-compose", "-p", project, "-f", str(COMPOSE), "-f", str(OVERRIDE)]

    def up(service: str) -> str:
        """`up -d SERVICE`; podman-compose 1.0.3 also re-runs the service's dependencies (their
        "name already in use" errors are harmless) and exits 0 whatever happened, so the
        service's container is what is checked."""
        out = subprocess.run(
            [*compose, "up", "-d", service], capture_output=True, text=True, env=env, timeout=300
        )
        name = f"{project}_{service}_1"
        eng.containers.append(name)
        found = eng("container", "exists", name, check=False, timeout=30)
        assert out.returncode == 0 and eng.inspect(name), f"{out.stdout}\n{out.stderr}{found}"
        return name

    settings = replace(
        Settings(), broker=f"kafka://127.0.0.1:{kafka_port}", app_id="newspipe", partitions=6
    )
    started = time.monotonic()
    try:
        # podman-compose ignores `condition: service_healthy` / `service_completed_successfully`:
        # the test waits for each condition itself, in the order depends_on gives
        kafka = up("kafka")
        try:
            broker.wait_ready(f"127.0.0.1:{kafka_port}", timeout=120)
        except broker.BrokerError as exc:
            raise AssertionError(f"{exc}\n{eng.logs(kafka)}") from None
        topics = up("topics")
        code = eng("wait", topics, timeout=180).strip()
        assert code == "0", f"topics exited {code}:\n{eng.logs(topics)}"
        worker = up("worker")
        published = eng("port", worker, f"{Settings().web_port}/tcp").strip()
        host, _, port = published.splitlines()[0].rpartition(":")
        assert host == "127.0.0.1", f"worker port published on {published}"
        ready_s = wait_ready(eng, worker, int(port))
        print(f"\npodman-compose: worker ready {ready_s:.1f} s after `up`")

        from pipeline.ingest import ingest_paths

        reports = asyncio.run(ingest_paths(settings, [SEED]))
        assert reports[0].comments == SEED_COMMENTS
        out = read_clean(settings, timeout=90, wait_for_seed=True)
        assert [a["title"] for a in out["articles"]] == [TITLE]
        assert len(out["comments"]) == SEED_COMMENTS and out["dlq"] == []
        print(f"podman-compose: seed through the stack {time.monotonic() - started:.0f} s")
    except BaseException:
        for name in eng.containers:
            print(f"\n----- {name}: last lines -----\n{eng.logs(name)}")
        raise
    finally:
        # anonymous volumes (the images' VOLUMEs) and the project network outlive `down -v` in
        # podman-compose 1.0.3: note them first, remove them after
        labelled = eng(
            "ps",
            "--all",
            f"--filter=label=io.podman.compose.project={project}",
            "--format={{.Names}}",
            check=False,
        )
        eng.containers += [n for n in labelled.split() if n not in eng.containers]
        for name in eng.containers:
            info = json.loads(eng("inspect", name, check=False) or "[]")
            mounts = info[0].get("Mounts", []) if info else []
            eng.volumes += [m["Name"] for m in mounts if m.get("Type") == "volume"]
        subprocess.run(
            [*compose, "down", "-v", "-t", "10"], capture_output=True, env=env, timeout=180
        )
        eng.cleanup()
        eng("network", "rm", "--force", f"{project}_default", check=False)
        eng("pod", "rm", "--force", f"pod_{project}", check=False)
