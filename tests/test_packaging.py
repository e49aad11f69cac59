"""What the wheel holds (the runtime, its contracts and data; no development tools or data sets)
and how the runtime package's folders may import each other."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from devtools.paths import ROOT

PIPELINE = ROOT / "pipeline"


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("newspipe-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_ships_the_event_contracts_and_the_taxonomy(wheel_names: set[str]) -> None:
    schemas = {n for n in wheel_names if n.startswith("pipeline/schemas/")}
    expected = {f"pipeline/schemas/{p.name}" for p in (ROOT / "schemas").glob("*.schema.json")}
    assert expected and expected <= schemas
    assert "pipeline/data/taxonomy.json" in wheel_names
    assert any(n.startswith("pipeline/data/lexicon/") for n in wheel_names)


def test_wheel_ships_the_toxicity_model_and_its_notice(wheel_names: set[str]) -> None:
    """The worker reads the model from package data (no sklearn, no alt-profanity-check)."""
    assert "pipeline/data/moderation/toxicity-model.npz" in wheel_names
    assert "pipeline/data/moderation/TOXICITY-MODEL-NOTICE.md" in wheel_names


def test_wheel_holds_no_development_tools_data_sets_or_evaluations(
    wheel_names: set[str],
) -> None:
    tops = {n.split("/", 1)[0] for n in wheel_names if "/" in n}
    assert tops <= {"pipeline", *(t for t in tops if t.endswith(".dist-info"))}, tops
    for gone in ("broker", "datasets", "workerproc", "samples", "neardup_eval", "eval"):
        assert not [n for n in wheel_names if n.endswith(f"/{gone}.py")], gone
    assert not [n for n in wheel_names if "/examples/" in n or n.endswith(".txt.gz")]


def _imports(path: Path) -> set[str]:
    """Every absolute module name a file imports (top level or inside functions)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _folder_imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (PIPELINE / folder).rglob("*.py"):
        found |= _imports(path)
    return found


def test_normalize_does_not_import_the_extractor() -> None:
    """Extraction produces raw events; normalization turns raw events into clean ones."""
    assert not {n for n in _folder_imports("normalize") if n.startswith("pipeline.extract")}


def test_runtime_never_imports_development_tools() -> None:
    # the one exception: `newspipe broker` runs the checkout's development broker when there is
    # a checkout, and says it is not installed otherwise (test_cli_broker_without_checkout)
    allowed = {"pipeline/cli.py": {"devtools", "devtools.broker"}}
    for path in PIPELINE.rglob("*.py"):
        rel = str(path.relative_to(ROOT))
        bad = {n for n in _imports(path) if n.split(".")[0] in {"devtools", "tests", "bench"}}
        assert not bad - allowed.get(rel, set()), f"{rel} imports {sorted(bad)}"


def test_runtime_folders_import_each_other_without_cycles() -> None:
    """Subpackages of `pipeline` form a graph without cycles (a new one fails here)."""
    folders = sorted(p.name for p in PIPELINE.iterdir() if (p / "__init__.py").is_file())
    graph = {
        f: {
            other
            for name in _folder_imports(f)
            for other in folders
            if other != f and (name == f"pipeline.{other}" or name.startswith(f"pipeline.{other}."))
        }
        for f in folders
    }

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = list(graph[start])
        while todo:
            node = todo.pop()
            if node not in seen:
                seen.add(node)
                todo.extend(graph[node])
        return seen

    cycles = sorted(f for f in folders if f in reach(f))
    assert not cycles, {f: sorted(graph[f]) for f in cycles}


def test_cli_broker_without_checkout_says_it_is_a_development_tool(tmp_path: Path) -> None:
    """An installed wheel has no `devtools`: `newspipe broker` says so in one line, exit 2."""
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile",
         "--target", str(site), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}
    code = "import sys; from pipeline.cli import main; sys.exit(main(['broker', 'status']))"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().startswith("newspipe broker: error: the local development broker")
    assert "Traceback" not in proc.stderr


def test_nothing_in_the_repository_reads_a_shared_folder_beside_it() -> None:
    """A plain clone has no shared folder beside it: code, tests, scripts and the Makefile read
    data/."""
    pattern = re.compile(r"""(\.\./shared|parent\s*/\s*["']shared["']|/shared/data)""")

    def reads_shared(path: Path) -> bool:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        return any(pattern.search(line) for line in lines if not line.lstrip().startswith("#"))

    files = [ROOT / "Makefile"] + [
        path
        for folder in ("pipeline", "devtools", "tests", "bench", "scripts", ".ci")
        for path in (ROOT / folder).rglob("*")
        if path.is_file() and path.suffix in {".py", ".sh", ""} and path != Path(__file__)
    ]
    assert not [str(p.relative_to(ROOT)) for p in files if reads_shared(p)]


def test_wheel_ships_every_runtime_subpackage(wheel_names: set[str]) -> None:
    """An editable install hides a subpackage missing from pyproject's list; the image does not."""
    folders = {str(p.parent.relative_to(ROOT)) for p in PIPELINE.rglob("__init__.py")}
    shipped = {n.rsplit("/", 1)[0] for n in wheel_names if n.endswith("/__init__.py")}
    assert folders - {"schemas"} <= shipped, sorted(folders - shipped)


def test_every_kafka_client_is_built_in_kafka_io() -> None:
    """One place builds consumers, producers and admin clients, so every one gets the security
    settings (SASL, TLS); Faust's own clients get them from its broker_credentials."""
    clients = {"AIOKafkaConsumer", "AIOKafkaProducer", "AIOKafkaAdminClient"}
    built_elsewhere = []
    for path in PIPELINE.rglob("*.py"):
        if path.name == "kafka_io.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in clients:
                    built_elsewhere.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not built_elsewhere


def _pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of sha256 hashes) of a pip-compile lock file."""
    pins: dict[str, tuple[str, int]] = {}
    current = None
    for line in lock.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.-]+)==([^ ;\\]+)", line)
        if m:
            current = m.group(1).lower().replace("_", "-")
            pins[current] = (m.group(2), 0)
        elif current and line.strip().startswith("--hash=sha256:"):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_both_locks_pin_every_package_with_hashes_and_agree() -> None:
    """make install and the image install with --require-hashes: a lock line without a hash,
    or two locks pinning different versions, would fail there or drift apart."""
    import tomllib

    full, runtime = _pins(ROOT / "requirements.lock"), _pins(ROOT / "requirements-runtime.lock")
    assert full and runtime
    assert all(n > 0 for _, n in full.values()) and all(n > 0 for _, n in runtime.values())
    assert {k: v[0] for k, v in runtime.items()} == {k: full[k][0] for k in runtime}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.split(r"[<>=\[ ;]", d, maxsplit=1)[0].lower().replace("_", "-") for d in declared}
    assert names <= set(runtime), sorted(names - set(runtime))
    # the toxicity model ships as numbers (toxicity-model.npz): its training stack is test-only
    test_only = {"alt-profanity-check", "scikit-learn", "scipy", "joblib", "threadpoolctl"}
    assert not test_only & set(runtime), sorted(test_only & set(runtime))
