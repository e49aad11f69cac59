"""`make bench` in its smoke form: the suite runs and latest.json has the promised shape.

No broker needed (`--no-kafka` leaves out the end-to-end and replay parts), so this is not marked
`kafka`; the full suite is `make bench` (docs/performance.md).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def test_quick_bench_writes_figures_ratios_versions_and_machine_facts(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    t0 = time.monotonic()
    done = subprocess.run(
        [
            *(sys.executable, "-m", "bench.run", "--quick", "--no-kafka", "--no-profile"),
            *("--out", str(out)),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - t0
    assert done.returncode == 0, done.stderr[-3000:]
    assert "benchmark" in done.stdout and "ratio" in done.stdout  # the table was printed
    res = orjson.loads(out.read_bytes())

    assert res["quick"] is True
    for key in ("python", "faust-streaming", "aiokafka", "orjson", "kafka"):
        assert res["versions"][key], key
    assert res["machine"]["cores"] >= 1 and res["machine"]["cpu_model"]

    for stream in ("comments", "articles"):
        core = res["core"][stream]
        assert core["events"] > 0 and core["floor_us"] > 0
        for kind in ("dict", "rocks"):
            k = core[kind]
            assert k["events_per_s"] > 0
            assert k["ratio_to_floor"] == k["us"] / core["floor_us"]
            assert k["ratio_to_floor"] > 1  # the whole core costs more than a loads + dumps
            assert k["statuses"].get("clean", 0) > 0
            assert {"validate", "normalize", "dedup", "tag", "serialize"} <= set(k["stage_us"])

    mem = res["memory"]["expire"]
    assert mem["events"] > 0 and mem["expire"] is True and mem["swept_entries"] > 0
    assert all(s["rss_mib"] > 0 for s in mem["samples"])
    control = res["memory"]["no_expire"]
    assert control["expire"] is False and control["swept_entries"] == 0
    assert "e2e" not in res and "replay" not in res  # --no-kafka
    assert res["table"] and res["seconds"]["total"] > 0
    print(f"quick bench in {elapsed:.0f} s")
