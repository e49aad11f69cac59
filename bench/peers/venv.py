"""The peers' own virtual environment: Quix Streams (and the confluent-kafka it brings).

Kept apart from .venv because confluent-kafka and Quix Streams' pins must not move newspipe's
locked dependencies. Made on first use (python -m venv + pip install of a pinned version) and
reused while the pinned version is the one installed; when it cannot be made (no registry
reachable, no ensurepip) the caller skips the rows that need it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QUIXSTREAMS = "3.28.1"
VENV = ROOT / ".cache" / "peers-venv"


def installed(python: Path, dist: str) -> str | None:
    """The version of `dist` in the environment of `python`, or None."""
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def ensure(
    venv: Path = VENV, base_python: str = sys.executable, version: str = QUIXSTREAMS
) -> tuple[Path | None, str]:
    """(the venv's python, what happened) or (None, why it could not be made)."""
    python = venv / "bin" / "python"
    if installed(python, "quixstreams") == version:
        return python, f"reused {venv} (quixstreams {version})"
    try:
        subprocess.run([base_python, "-m", "venv", "--clear", str(venv)],
                       check=True, capture_output=True, text=True, timeout=300)  # fmt: skip
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             f"quixstreams=={version}"],
            check=True, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    except subprocess.CalledProcessError as exc:
        tail = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["(no output)"]
        return None, f"could not make {venv}: {' '.join(map(str, exc.cmd[:3]))}... {tail[0]}"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"could not make {venv}: {exc}"
    return python, f"made {venv} (quixstreams {version})"


def versions(python: Path | None) -> dict[str, str]:
    """quixstreams and confluent-kafka as installed in the peers' venv."""
    if python is None:
        return {}
    return {d: installed(python, d) or "not installed" for d in ("quixstreams", "confluent-kafka")}
