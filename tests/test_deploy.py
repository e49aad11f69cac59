"""Deployment artefacts: Dockerfile, .dockerignore, docker-compose.yml and deploy/k8s.

Offline checks once `bash scripts/install_tools.sh` ran: the compose file against the Compose
specification schema (vendored in deploy/schemas), hadolint on the Dockerfile, kustomize renders
of every overlay validated with kubernetes-validate's bundled schemas, plus what ties the files to
the code: env names that exist in `Settings`, the web port, probes, the Kafka version.

A missing tool skips with the reason, except with CI=true, where it fails.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from devtools import broker
from pipeline.settings import PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ROOT / ".cache" / "tools"
TOOLS_PY = TOOLS / "venv" / "bin" / "python"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
BROKER_DOCKERFILE = ROOT / "deploy" / "broker" / "Dockerfile"
COMPOSE_SCHEMA = ROOT / "deploy" / "schemas" / "compose-spec.json"
K8S = ROOT / "deploy" / "k8s"
KUSTOMIZATIONS = ["base", "overlays/dev", "overlays/prod", "replay"]
# Oldest and newest Kubernetes schema sets the manifests must satisfy.
K8S_VERSIONS = ["1.31.0", "1.37.0"]
CRD_KINDS = {"ServiceMonitor", "PrometheusRule"}
STATE_DIR = "/var/lib/newspipe"
# Kafka security settings the manifests carry as placeholders; Settings does not read them yet.
KAFKA_SECURITY_ENV = {
    "NEWSPIPE_KAFKA_SECURITY_PROTOCOL",
    "NEWSPIPE_KAFKA_SASL_MECHANISM",
    "NEWSPIPE_KAFKA_SASL_USERNAME",
    "NEWSPIPE_KAFKA_SASL_PASSWORD",
    "NEWSPIPE_KAFKA_SSL_CAFILE",
    "NEWSPIPE_KAFKA_SSL_CERTFILE",
    "NEWSPIPE_KAFKA_SSL_KEYFILE",
}
IN_CI = os.environ.get("CI", "").lower() == "true"
INSTALL_HINT = "run `bash scripts/install_tools.sh`"


# --- helpers ------------------------------------------------------------------------------------


def missing_tool(what: str) -> None:
    """Skip with the reason; with CI=true fail instead, so CI never passes without checking."""
    message = f"{what} is not installed ({INSTALL_HINT})"
    if IN_CI:
        pytest.fail(f"CI=true: {message}", pytrace=False)
    pytest.skip(message)


def load_yaml(text: str) -> list[Any]:
    """All documents of a YAML text. PyYAML from the project venv, else from the tools venv."""
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        if not TOOLS_PY.exists():
            missing_tool("PyYAML (tools venv)")
        script = (
            "import json, sys, yaml\n"
            "docs = [d for d in yaml.safe_load_all(sys.stdin) if d is not None]\n"
            "json.dump(docs, sys.stdout, default=str)\n"
        )
        out = subprocess.run(
            [str(TOOLS_PY), "-c", script], input=text, capture_output=True, text=True
        )
        assert out.returncode == 0, f"YAML did not parse:\n{out.stderr}"
        return json.loads(out.stdout)
    return [d for d in yaml.safe_load_all(text) if d is not None]


def load_yaml_file(path: Path) -> Any:
    docs = load_yaml(path.read_text())
    assert len(docs) == 1, f"{path}: expected one YAML document, got {len(docs)}"
    return docs[0]


def tool_path(name: str) -> str | None:
    for candidate in (TOOLS / "bin" / name, TOOLS / "venv" / "bin" / name):
        if candidate.exists():
            return str(candidate)
    return shutil.which(name)


def kustomize_command() -> list[str]:
    exe = tool_path("kustomize")
    if exe:
        return [exe, "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    missing_tool("kustomize (or kubectl)")
    raise AssertionError("unreachable")


@functools.cache
def _render(directory: str, command: tuple[str, ...]) -> str:
    out = subprocess.run(
        [*command, str(K8S / directory)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"kustomize build {directory} failed:\n{out.stderr}"
    return out.stdout


def render(directory: str) -> list[dict[str, Any]]:
    return load_yaml(_render(directory, tuple(kustomize_command())))


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none); a digest counts as pinned."""
    if "@sha256:" in image:
        return image.split("@", 1)[1]
    last = image.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def settings_names() -> set[str]:
    return set(Settings.env_names())


def prefixed(names: Any) -> set[str]:
    return {n for n in names if str(n).startswith(PREFIX)}


# --- docker-compose.yml -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_yaml_file(COMPOSE)


def service_env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def compose_errors(document: dict[str, Any]) -> list[str]:
    """Errors of a compose document against the vendored Compose specification schema."""
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The schema names draft 2019-09 by a non-canonical URI; say so explicitly.
    validator_cls = jsonschema.Draft201909Validator
    validator_cls.check_schema(schema)
    errors = sorted(validator_cls(schema).iter_errors(document), key=lambda e: list(e.path))
    return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message}" for e in errors]


def test_compose_validates_against_compose_spec(compose: dict[str, Any]) -> None:
    errors = compose_errors(compose)
    assert not errors, "\n".join(errors)


def test_compose_schema_check_is_not_vacuous(compose: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(compose))
    broken["services"]["worker"]["restart_policy"] = "always"  # not a Compose key
    broken["services"]["kafka"]["depends_on"] = {"topics": {"condition": "whenever"}}
    errors = compose_errors(broken)
    assert any("restart_policy" in e for e in errors), errors
    assert any("whenever" in e for e in errors), errors


def test_compose_images_are_pinned(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        image = service.get("image")
        assert image, f"service {name}: no image (a built service must name its tag too)"
        tag = image_tag(image)
        assert tag, f"service {name}: image {image} has no tag"
        assert tag != "latest", f"service {name}: image {image} uses latest"


def test_compose_kafka_is_the_pinned_kafka_version(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"] == f"apache/kafka:{broker.kafka_version()}"
    env = service_env(kafka)
    assert "broker" in env["KAFKA_PROCESS_ROLES"] and "controller" in env["KAFKA_PROCESS_ROLES"]
    assert "test" in kafka["healthcheck"], "kafka needs a healthcheck for depends_on"


def test_compose_kafka_host_port_is_the_advertised_one(compose: dict[str, Any]) -> None:
    """Host clients connect to what EXTERNAL advertises: both follow KAFKA_HOST_PORT."""
    kafka = compose["services"]["kafka"]
    published = [str(p) for p in kafka["ports"] if str(p).endswith(":9092")]
    assert published == ["127.0.0.1:${KAFKA_HOST_PORT:-9092}:9092"]
    advertised = service_env(kafka)["KAFKA_ADVERTISED_LISTENERS"].split(",")
    assert "EXTERNAL://127.0.0.1:${KAFKA_HOST_PORT:-9092}" in advertised


def test_compose_env_names_exist_in_settings(compose: dict[str, Any]) -> None:
    used = set()
    for service in compose["services"].values():
        used |= prefixed(service_env(service))
    assert used, "no NEWSPIPE_* settings in docker-compose.yml"
    unknown = used - settings_names()
    assert not unknown, f"not in Settings.env_names(): {sorted(unknown)}"


def test_compose_worker_is_scalable_on_the_settings_port(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    port = Settings().web_port
    assert "container_name" not in worker, "container_name prevents --scale worker=N"
    assert worker.get("command") == ["worker"]
    env = service_env(worker)
    assert env["NEWSPIPE_WEB_PORT"] == str(port)
    assert env["NEWSPIPE_WEB_HOST"] == "0.0.0.0"
    assert env["NEWSPIPE_STATE_DIR"] == STATE_DIR
    for entry in worker.get("ports", []):
        if isinstance(entry, dict):
            assert entry["target"] == port
            assert not entry.get("published"), f"fixed host port prevents scaling: {entry}"
        else:
            parts = str(entry).split(":")
            assert parts[-1].split("/")[0] == str(port)
            assert len(parts) == 1 or parts[-2] == "", f"fixed host port: {entry}"
    assert str(port) in [str(p) for p in worker.get("expose", [])]
    volumes = [str(v) for v in worker.get("volumes", [])]
    assert not any(v.split(":")[1:2] == [STATE_DIR] for v in volumes), (
        "a named volume on the state dir would be shared by all replicas"
    )
    depends = worker["depends_on"]
    assert depends["kafka"]["condition"] == "service_healthy"
    assert depends["topics"]["condition"] == "service_completed_successfully"


def test_compose_topics_and_replay_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    topics = services["topics"]
    assert topics["command"] == ["topics", "create"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "profiles" not in topics
    replay = services["replay"]
    assert replay.get("profiles") == ["replay"], "replay must only run with --profile replay"
    assert replay["command"][0] == "replay"
    profiled = sorted(n for n, s in services.items() if s.get("profiles"))
    assert profiled == ["replay"]


def test_compose_mounted_files_exist(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else str(volume).split(":")[0]
            if source.startswith("./deploy/"):
                assert (ROOT / source).exists(), f"service {name}: {source} does not exist"
    prometheus = compose["services"]["prometheus"]
    mounts = " ".join(map(str, prometheus["volumes"]))
    assert "deploy/prometheus/prometheus.yml" in mounts and "deploy/prometheus/alerts.yml" in mounts
    grafana = " ".join(map(str, compose["services"]["grafana"]["volumes"]))
    assert "deploy/grafana/provisioning" in grafana and "deploy/grafana/dashboards" in grafana


def test_compose_prometheus_scrapes_the_worker_port() -> None:
    config = load_yaml_file(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    sd = jobs["newspipe"]["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["port"] == Settings().web_port
    assert jobs["newspipe"].get("metrics_path", "/metrics") == "/metrics"


# --- Dockerfile ---------------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        stripped = raw.strip()
        if not stripped or (stripped.startswith("#") and not pending):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append(pending + stripped)
        pending = ""
    out = []
    for line in lines:
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


@pytest.mark.parametrize("dockerfile", [DOCKERFILE, BROKER_DOCKERFILE], ids=["app", "broker"])
def test_dockerfile_hadolint(dockerfile: Path) -> None:
    exe = tool_path("hadolint")
    if not exe:
        missing_tool("hadolint")
    out = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "info", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, f"hadolint:\n{out.stdout}{out.stderr}"


def test_dockerfile_structure() -> None:
    instructions = dockerfile_instructions()
    args = {}
    for word, rest in instructions:
        if word == "ARG" and "=" in rest:
            key, value = rest.split("=", 1)
            args[key] = value
    stages = [rest for word, rest in instructions if word == "FROM"]
    assert len(stages) >= 2, "expected a multi-stage build"
    for stage in stages:
        image = re.sub(
            r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), stage.split()[0]
        )
        assert image.startswith("python:3.11"), f"base {image} is not Python 3.11"
        assert "slim" in image, f"base {image} is not a slim image"
        tag = image_tag(image)
        assert tag and tag != "latest" and "$" not in image, f"base {image} is not pinned"
    final = instructions[max(i for i, (w, _) in enumerate(instructions) if w == "FROM") :]

    def last(word: str) -> str:
        found = [rest for w, rest in final if w == word]
        assert found, f"the final stage has no {word}"
        return found[-1]

    user = last("USER").split(":")[0]
    assert user not in {"root", "0"}, "the image must not run as root"
    assert user.isdigit(), "use a numeric USER so that Kubernetes runAsNonRoot can verify it"
    assert json.loads(last("ENTRYPOINT")) == ["newspipe"]
    assert json.loads(last("CMD")) == ["worker"]
    healthcheck = last("HEALTHCHECK")
    assert "/healthz" in healthcheck and "python" in healthcheck and "curl" not in healthcheck
    assert STATE_DIR in last("VOLUME")
    env = " ".join(rest for w, rest in final if w == "ENV")
    assert f"NEWSPIPE_STATE_DIR={STATE_DIR}" in env
    assert "NEWSPIPE_WEB_HOST=0.0.0.0" in env
    assert f"NEWSPIPE_WEB_PORT={Settings().web_port}" in env
    assert last("EXPOSE") == str(Settings().web_port)
    unknown = prefixed(re.findall(r"(NEWSPIPE_\w+)=", env)) - settings_names()
    assert not unknown, f"not in Settings.env_names(): {sorted(unknown)}"
    copies = " ".join(rest for w, rest in instructions if w == "COPY")
    assert "requirements-runtime.lock" in copies, "dependencies must come from the runtime lock"
    runs = " ".join(rest for w, rest in instructions if w == "RUN")
    assert "--require-hashes -r requirements-runtime.lock" in runs


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "deny everything first, then allow what the Dockerfile copies"
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not allowed & {".venv", ".cache", ".git", ".state"}
    for word, rest in dockerfile_instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        for source in rest.split()[:-1]:
            assert source.rstrip("/") in allowed, f"COPY {source} is excluded by .dockerignore"


# --- Kubernetes (kustomize) ---------------------------------------------------------------------


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_k8s_renders_and_validates_against_schemas(directory: str, tmp_path: Path) -> None:
    docs = render(directory)
    assert docs, f"{directory} rendered nothing"
    exe = tool_path("kubernetes-validate")
    if not exe:
        missing_tool("kubernetes-validate")
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(_render(directory, tuple(kustomize_command())))
    for version in K8S_VERSIONS:
        out = subprocess.run(
            [exe, "--strict", "-k", version, str(manifest)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        report = out.stdout + out.stderr
        assert out.returncode == 0, f"{directory} against Kubernetes {version}:\n{report}"
        assert "passed for resource" in report, report
        for line in report.splitlines():
            # Only the Prometheus Operator CRDs may lack a schema; they are checked structurally.
            if "Couldn't find schema" in line:
                assert any(f"kind {kind} " in line for kind in CRD_KINDS), line
    kinds = {d["kind"] for d in docs}
    if directory != "replay":
        assert {"StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget"} <= kinds
        assert CRD_KINDS <= kinds


def config_data(docs: list[dict[str, Any]]) -> dict[str, str]:
    return one(docs, "ConfigMap")["data"]


def worker_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    sts = one(docs, "StatefulSet")
    (container,) = [
        c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "worker"
    ]
    return container


def used_env_names(docs: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for doc in docs:
        if doc["kind"] == "ConfigMap":
            names |= prefixed(doc.get("data", {}))
        if doc["kind"] == "Secret":
            names |= prefixed(doc.get("data", {})) | prefixed(doc.get("stringData", {}))
        spec = doc.get("spec", {})
        pod = spec.get("template", {}).get("spec", {})
        for container in pod.get("containers", []) + pod.get("initContainers", []):
            names |= prefixed(e["name"] for e in container.get("env", []))
    return names


@pytest.mark.parametrize("directory", KUSTOMIZATIONS)
def test_k8s_env_names_exist_in_settings(directory: str) -> None:
    used = used_env_names(render(directory)) - KAFKA_SECURITY_ENV
    unknown = used - settings_names()
    assert not unknown, f"{directory}: not in Settings.env_names(): {sorted(unknown)}"


def test_k8s_kafka_security_placeholders_exist_in_settings() -> None:
    """The Secret/ConfigMap placeholders for SASL/TLS must be real settings (pipeline/settings)."""
    used = set()
    for directory in KUSTOMIZATIONS:
        used |= used_env_names(render(directory)) & KAFKA_SECURITY_ENV
    assert used == KAFKA_SECURITY_ENV, f"placeholders missing: {KAFKA_SECURITY_ENV - used}"
    missing = sorted(used - settings_names())
    assert not missing, f"add these Kafka security fields to pipeline.settings.Settings: {missing}"


@pytest.mark.parametrize("directory", ["base", "overlays/dev", "overlays/prod"])
def test_k8s_worker_statefulset(directory: str) -> None:
    docs = render(directory)
    data = config_data(docs)
    settings = Settings()
    port = int(data["NEWSPIPE_WEB_PORT"])
    assert port == settings.web_port
    assert data["NEWSPIPE_WEB_HOST"] == "0.0.0.0"
    assert data["NEWSPIPE_STATE_DIR"] == STATE_DIR
    assert data["NEWSPIPE_STORE"].startswith("rocksdb://")

    sts = one(docs, "StatefulSet")
    spec = sts["spec"]
    assert 1 <= spec["replicas"] <= int(data["NEWSPIPE_PARTITIONS"]), "workers <= partitions"
    container = worker_container(docs)
    assert container["args"] == ["worker"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["web"] == port

    def probe_port(probe: dict[str, Any]) -> int:
        value = probe["httpGet"]["port"]
        return ports[value] if isinstance(value, str) else value

    readiness, liveness = container["readinessProbe"], container["livenessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz" and probe_port(readiness) == port
    assert liveness["httpGet"]["path"] == "/healthz" and probe_port(liveness) == port
    if "startupProbe" in container:
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"

    resources = container["resources"]
    for key in ("cpu", "memory"):
        assert resources["requests"][key] and resources["limits"][key]

    claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts[STATE_DIR] in claims, "the state dir must be on the volumeClaimTemplate"

    refs = {
        ref.get("configMapRef", {}).get("name") or ref.get("secretRef", {}).get("name")
        for ref in container["envFrom"]
    }
    assert one(docs, "ConfigMap")["metadata"]["name"] in refs

    pod_security = spec["template"]["spec"]["securityContext"]
    assert pod_security["runAsNonRoot"] is True and pod_security["runAsUser"] != 0

    labels = spec["template"]["metadata"]["labels"]
    services = {s["metadata"]["name"]: s for s in by_kind(docs, "Service")}
    headless = services[spec["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()
        for sp in service["spec"]["ports"]:
            assert sp["targetPort"] in ("web", port)


@pytest.mark.parametrize("directory", ["base", "overlays/dev", "overlays/prod"])
def test_k8s_worker_is_fenced_by_a_network_policy_and_has_no_api_token(directory: str) -> None:
    docs = render(directory)
    pod = one(docs, "StatefulSet")["spec"]["template"]
    assert pod["spec"]["automountServiceAccountToken"] is False
    policy = one(docs, "NetworkPolicy")["spec"]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in policy["podSelector"]["matchLabels"].items())
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = policy["ingress"]
    assert [p["port"] for p in ingress["ports"]] == [int(config_data(docs)["NEWSPIPE_WEB_PORT"])]
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule["ports"]}
    broker_ports = {
        int(b.rsplit(":", 1)[1]) for b in config_data(docs)["NEWSPIPE_BROKER"].split(";")
    }
    assert broker_ports <= egress_ports and 53 in egress_ports


@pytest.mark.parametrize("directory", ["base", "overlays/dev", "overlays/prod"])
def test_k8s_service_monitor_scrapes_the_metrics_service(directory: str) -> None:
    docs = render(directory)
    monitor = one(docs, "ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    wanted = monitor["spec"]["selector"]["matchLabels"]
    matching = [
        s for s in by_kind(docs, "Service") if wanted.items() <= s["metadata"]["labels"].items()
    ]
    assert len(matching) == 1, "the ServiceMonitor must select exactly the metrics Service"
    port_names = {p["name"] for p in matching[0]["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert endpoint["port"] in port_names
        assert endpoint.get("path", "/metrics") == "/metrics"
    job_label = monitor["spec"].get("jobLabel")
    assert job_label and matching[0]["metadata"]["labels"][job_label] == "newspipe", (
        'alerts.yml selects up{job="newspipe"}'
    )
    rule = one(docs, "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["spec"]["groups"]


def test_k8s_overlays() -> None:
    dev, prod = render("overlays/dev"), render("overlays/prod")
    assert {d["metadata"].get("namespace") for d in dev} == {"newspipe-dev"}
    assert {d["metadata"].get("namespace") for d in prod} == {"newspipe"}
    assert one(dev, "StatefulSet")["spec"]["replicas"] == 1
    prod_data = config_data(prod)
    assert one(prod, "StatefulSet")["spec"]["replicas"] == int(prod_data["NEWSPIPE_PARTITIONS"])
    assert int(prod_data["NEWSPIPE_REPLICATION_FACTOR"]) >= 3
    assert not by_kind(prod, "Secret"), "prod must not overwrite the real credentials Secret"
    for docs in (dev, prod):
        image = worker_container(docs)["image"]
        assert image_tag(image) not in (None, "latest"), image


def test_k8s_replay_job_template() -> None:
    docs = render("replay")
    job = one(docs, "Job")
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"][0] == "replay"
    assert image_tag(container["image"]) not in (None, "latest")
    base = render("base")
    names = {
        ref.get("configMapRef", {}).get("name") or ref.get("secretRef", {}).get("name")
        for ref in container["envFrom"]
    }
    assert names == {
        one(base, "ConfigMap")["metadata"]["name"],
        one(base, "Secret")["metadata"]["name"],
    }
    assert names == {
        ref.get("configMapRef", {}).get("name") or ref.get("secretRef", {}).get("name")
        for ref in worker_container(base)["envFrom"]
    }, "the replay Job must read the same settings as the workers"


if __name__ == "__main__":  # pragma: no cover - handy when editing the manifests
    sys.exit(pytest.main([__file__, "-q"]))
