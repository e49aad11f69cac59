"""`make bench` in its smoke form: the suite runs and latest.json has the promised shape.

No broker needed (`--no-kafka` leaves out the end-to-end, replay, peers and backfill parts), so
this is not marked `kafka`; the full suite is `make bench` (docs/performance.md). The peers' and
the backfill's own code (the job, the report lines, the venv fallback, the table rows, the
extrapolation) is checked here without a broker; `kafka` tests run both, and the e2e on a
given store, at a tiny size.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from bench import backfill, e2e, steps, txn_cost
from bench import run as bench_run
from bench.peers import compare, venv
from bench.peers.job import REPORT_PREFIX, Clock, Job
from pipeline.settings import Settings
from pipeline.tagging import Tagger

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
        # one floor window before each pass of either state kind; the floor is the fastest
        windows = core["floor_windows_us"]
        assert len(windows) == len(core["dict"]["runs_us"]) + len(core["rocks"]["runs_us"])
        assert core["floor_us"] == pytest.approx(min(windows))
        assert core["floor_median_us"] == pytest.approx(statistics.median(windows))
        for kind in ("dict", "rocks"):
            k = core[kind]
            assert k["events_per_s"] > 0
            assert k["ratio_to_floor"] == k["us"] / core["floor_us"]
            assert k["ratio_to_floor"] > 1  # the whole core costs more than a loads + dumps
            assert k["statuses"].get("clean", 0) > 0
            assert {"validate", "normalize", "dedup", "tag", "serialize"} <= set(k["stage_us"])
        # the core's steps, each alone over the same payloads, and their sum
        alone = core["steps_alone_us"]
        assert set(alone) == {*steps.STEPS[stream], "sum"}
        assert all(alone[name] > 0 for name in steps.STEPS[stream])
        assert alone["sum"] == pytest.approx(sum(alone[name] for name in steps.STEPS[stream]))

    mem = res["memory"]["expire"]
    assert mem["events"] > 0 and mem["expire"] is True and mem["swept_entries"] > 0
    assert all(s["rss_mib"] > 0 for s in mem["samples"])
    control = res["memory"]["no_expire"]
    assert control["expire"] is False and control["swept_entries"] == 0
    assert not {"e2e", "replay", "peers", "backfill"} & set(res)  # --no-kafka
    assert res["table"] and res["seconds"]["total"] > 0
    print(f"quick bench in {elapsed:.0f} s")


# The function each step must call, per stream: (owner, attribute name).
_STEP_TARGETS: dict[str, dict[str, tuple[Any, str]]] = {
    "comments": {
        "validate": (steps.DoorValidator, "raw_comment"),
        "normalize": (steps, "normalize_comment"),
        "language": (steps, "detect_languages"),
        "dedup": (steps.Deduper, "check_comment"),
        "tag": (steps.Tagger, "tag_comment"),
        "moderate": (steps.Moderator, "moderate"),
        "serialize": (steps.orjson, "dumps"),
    },
    "articles": {
        "validate": (steps.DoorValidator, "raw_article"),
        "normalize": (steps, "normalize_article"),
        "language": (steps, "detect_languages"),
        "dedup": (steps.Deduper, "check_article_exact"),
        "tag": (steps.Tagger, "tag_article"),
        "neardup": (steps.Deduper, "check_near_duplicate"),
        "serialize": (steps.orjson, "dumps"),
    },
}


@pytest.mark.parametrize("stream", ["comments", "articles"])
def test_each_core_step_is_timed_through_its_own_function(
    stream: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`bench.steps` times each of the stream's stages, and only those, each through the
    function the core calls for it: what a timed step calls is recorded, and each calls its own
    function and no other step's."""
    assert steps.CORE_BATCH == bench_run.CORE_BATCH
    other = "neardup" if stream == "comments" else "moderate"
    assert set(steps.STEPS[stream]) == set(bench_run.STAGES) - {other}
    targets = _STEP_TARGETS[stream]
    assert set(targets) == set(steps.STEPS[stream])
    called: set[str] = set()

    def counting(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            called.add(name)
            return fn(*args, **kwargs)

        return wrapper

    for name, (owner, attr) in targets.items():
        monkeypatch.setattr(owner, attr, counting(name, getattr(owner, attr)))
    per_call: list[set[str]] = []
    fastest = steps._fastest

    def recording(step: Callable[[], Any], rounds: int) -> float:
        called.clear()
        seconds = fastest(step, rounds)
        per_call.append(set(called))
        return seconds

    monkeypatch.setattr(steps, "_fastest", recording)
    payloads = bench_run.core_payloads(600, 300)[stream]
    alone = steps.STEP_FUNCTIONS[stream](payloads, Settings(), Tagger.load(), rounds=1)
    assert list(alone) == [*steps.STEPS[stream], "sum"]
    # one timed call per step, in order, then the copying the dedup steps' time is taken off
    assert per_call[: len(targets)] == [{name} for name in steps.STEPS[stream]]
    assert per_call[len(targets) :] == [set()]
    # the dedup steps less their copying stay positive: the copy taken off is what they make
    assert all(alone[name] > 0 for name in steps.STEPS[stream])


def _bench_json(module: str, *args: str) -> dict[str, Any]:
    """Run `python -m <module> <args> --json` in a process of its own; its figures."""
    done = subprocess.run(
        [sys.executable, "-m", module, *args, "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return orjson.loads(done.stdout)


def test_heap_bench_finds_the_state_out_of_the_collectors_sight() -> None:
    """`python -m bench.heap` in a process of its own (the collector's counts are per process):
    the state's entries are many; what the collector still tracks is the last batch's items and
    a few caches, not the state (an article's tags alone were eight dicts and lists)."""
    res = _bench_json("bench.heap", "--comments", "3000", "--articles", "300")
    assert res["state_entries"]["index"] > 300 * 40  # an article's bands, its own entry
    assert res["state_entries"]["article_tags"] == 300
    assert 0 <= res["tracked_beyond_settled_heap"] < 2 * bench_run.CORE_BATCH + 2 * 300
    assert len(res["full_collections_ms"]) == 3 and res["full_collection_ms"] > 0


def test_shape_bench_times_the_record_shape_against_the_floor() -> None:
    """`python -m bench.shape`: the clean records it builds are the core's (larger than the raw
    events), and holding them as Python objects costs more than the floor's decode + encode."""
    res = _bench_json("bench.shape", "--comments", "2000")
    assert res["comments"] == 2000
    assert res["clean_record_bytes"] > res["raw_bytes"] > 100
    assert 0 < res["floor_us"] < res["shape_us"]
    assert res["shape_to_floor"] == pytest.approx(res["shape_us"] / res["floor_us"])


def test_the_floor_is_timed_over_a_window_of_passes_not_one_short_pass() -> None:
    """One pass over a few payloads takes microseconds, too short to time; the floor repeats
    the passes until the window is full and gives the time of one pass."""
    payloads = [(b"k", orjson.dumps({"text": "word " * 20, "n": i})) for i in range(50)]
    t0 = time.perf_counter()
    wall, cpu = bench_run.floor_pass(payloads, 0.05)
    elapsed = time.perf_counter() - t0
    assert elapsed >= 0.05
    assert 0 < wall < elapsed / 10  # many passes filled the window: one is a small share
    assert 0 < cpu < elapsed / 10
    one_wall, _ = bench_run.floor_pass(payloads)  # no window: a single pass
    assert 0 < one_wall < 0.05


def test_a_floor_window_precedes_every_pass_and_the_fastest_is_the_floor(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The floor is timed through the same minutes as the passes it is compared with, and noise
    only ever slows a loads + dumps: the fastest window is the floor."""
    order: list[str] = []
    times = iter([(3.0, 2.5), (1.0, 1.5), (2.0, 0.5)])

    def window(payloads: list[Any], min_seconds: float = 0.0) -> tuple[float, float]:
        order.append("floor")
        return next(times)

    def run_pass() -> int:
        order.append("pass")
        return len(order)

    monkeypatch.setattr(bench_run, "floor_pass", window)
    results, windows = bench_run.against_floor([], run_pass, 3)
    assert order == ["floor", "pass"] * 3
    assert results == [2, 4, 6]
    assert bench_run.fastest(windows) == (1.0, 0.5)


def test_workers_are_scraped_sparsely_while_the_end_is_far_and_densely_near_it() -> None:
    """A scrape costs the worker CPU the baseline does not pay: one a second mid-run, ten a
    second near the end (where the throughput's end time is read), a quarter second without a
    rate yet (startup, a stall)."""
    poll = e2e.poll_interval
    assert poll([], 1000) == e2e.POLL_START_S
    assert poll([(0.0, 0.0)], 1000) == e2e.POLL_START_S
    assert poll([(0.0, 0.0), (1.0, 0.0)], 1000) == e2e.POLL_START_S  # nothing counted yet
    assert poll([(0.0, 100.0), (1.0, 200.0)], 1000) == e2e.POLL_FAR_S  # 8 s left at 100/s
    assert poll([(0.0, 100.0), (1.0, 800.0)], 1000) == e2e.POLL_NEAR_S  # under a second left
    assert poll([(0.0, 300.0), (1.0, 300.0)], 1000) == e2e.POLL_START_S  # a stall
    assert poll([(0.0, 900.0), (1.0, 1000.0)], 1000) == e2e.POLL_NEAR_S  # counted, committing
    assert e2e.POLL_NEAR_S < e2e.POLL_START_S < e2e.POLL_FAR_S


def test_the_fastest_passthrough_round_is_the_baseline_and_every_round_is_kept() -> None:
    """The e2e baseline is the fastest of its rounds (one before each worker run and one after
    the last: the broker test below sees two for one worker), so a few noisy seconds cannot
    make every e2e ratio swing; every round's rate and their median are kept."""
    rounds = [{"events_per_s": r, "events": 9} for r in (24_000.0, 39_000.0, 30_000.0)]
    best = e2e.baseline(rounds)
    assert best["events_per_s"] == 39_000.0 and best["median_events_per_s"] == 30_000.0
    assert best["rounds_events_per_s"] == [24_000.0, 39_000.0, 30_000.0]
    assert "rounds_events_per_s" not in rounds[1]  # the rounds themselves are left as they were
    assert bench_run._fastest_of([24_000.0, 39_000.0]) == ", the fastest of 24,000, 39,000"
    assert bench_run._fastest_of([]) == ""  # a results file from before the rounds


def test_peer_job_normalizes_dedups_and_reports() -> None:
    job = Job()
    raw = orjson.dumps({"source_comment_id": "7", "text": "  Hello World \n", "author": "a"})
    out = job(raw)
    assert out is not None and out["text"] == "hello world" and out["author"] == "a"
    assert job(raw) is None and job.duplicates == 1  # the same id again
    assert orjson.loads(job.encode(out)) == out
    clock = Clock(2)
    clock.first()
    rep = clock.report(2, duplicates=job.duplicates)
    assert rep["events"] == 2 and rep["events_per_s"] > 0 and rep["cpu_us_per_event"] >= 0
    line = f"[2026-01-01 00:00:00,000] [1] [WARNING] {REPORT_PREFIX}{orjson.dumps(rep).decode()}"
    assert compare.parse_report("noise\n" + line + "\n") == rep  # Faust's logged print
    assert compare.parse_report("no report here") is None


def test_peers_venv_that_cannot_be_made_is_a_message_not_a_failure(tmp_path: Path) -> None:
    python, why = venv.ensure(tmp_path / "venv", base_python=str(tmp_path / "no-python"))
    assert python is None and "could not make" in why
    assert venv.versions(None) == {}


def test_peer_commands_and_rows() -> None:
    cmd = compare.commands("quixstreams", "/py", "h:1", "p.", "p.out", "g", 10, 60.0)
    assert cmd[:2] == ["/py", str(compare.PEERS / "quix_peer.py")]
    assert cmd[cmd.index("--topic") + 1] == "p.raw.comments"
    assert "--prefix" in compare.commands("aiokafka", "/py", "h:1", "p.", "o", "g", 10, 60.0)

    def rep(rate: float) -> dict[str, float]:
        return {"events_per_s": rate, "cpu_us_per_event": 1e6 / rate}

    peers = compare.summarize({"aiokafka": [rep(100.0), rep(300.0), rep(200.0)],
                               "faust": [rep(50.0)]})  # fmt: skip
    assert (
        peers["aiokafka"]["events_per_s"] == 200.0
        and peers["faust"]["ratio_to_passthrough"] == 0.25
    )
    res = {"events": 10, "rounds": 3, "peers": peers, "skipped": {"quixstreams": "no venv"}}
    e2e = {
        "one_worker": {"events_per_s": 20.0, "worker_cpu_us_per_event": 900.0},
        "ratio_one_worker_to_passthrough": 0.1,
        "comments": 9,
        "articles": 1,
        "passthrough": {"events_per_s": 200.0},
    }
    table = compare.rows(res, e2e)
    assert [r[0] for r in table] == ["aiokafka passthrough", "Faust agent",
                                     "newspipe worker (e2e run)", "Quix Streams app"]  # fmt: skip
    assert table[1][3] == "0.25" and table[3][1] == "skipped"
    assert "ratio vs aiokafka passthrough" in compare.print_rows(table)

    bf = {"events": 10, "runs": {"1": {"events_per_s": 50.0, "target_text": "1 h 00 min",
                                       "first_replayed_to_last_committed_s": 0.2}}}  # fmt: skip
    whole = {"peers": res, "e2e": e2e, "backfill": bf}
    assert len(bench_run.peer_rows(whole)) == 4
    (row,) = bench_run.backfill_rows(whole)
    assert row[2] == "aiokafka passthrough (peers)" and row[3] == "0.250"
    # the run on the production store follows, named by its store
    whole["backfill_other_store"] = {**bf, "store": "rocksdb://"}
    rows = bench_run.backfill_rows(whole)
    assert [r[0] for r in rows] == ["backfill, 1 worker(s)", "backfill, 1 worker(s) (rocksdb://)"]


def test_backfill_extrapolation() -> None:
    assert backfill.hours_minutes(8401) == "2 h 20 min"
    assert backfill.hours_minutes(600) == "10 min"
    ext = backfill.extrapolate(25_500.0)
    assert ext["target_seconds"] == 1000.0 and ext["target_text"] == "17 min"
    assert backfill.extrapolate(0.0)["target_text"] == "never"


@pytest.mark.kafka
def test_peers_and_backfill_run_tiny(kafka: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The aiokafka and Faust peers (the Quix venv needs the registry: here it is made to fail,
    which must skip its row, not the bench) and a one-worker backfill on rocksdb://, a few hundred
    events each, through the real broker; every topic made is deleted."""
    monkeypatch.setenv("NEWSPIPE_BROKER", f"kafka://{kafka}")
    monkeypatch.setattr(venv, "ensure", lambda: (None, "could not make it: no registry"))
    res = compare.run(300, 1, peers=("aiokafka", "faust", "quixstreams"), timeout=120,
                      log=lambda _: None)  # fmt: skip
    assert set(res["peers"]) == {"aiokafka", "faust"} and res["topics_deleted"] > 0
    assert res["skipped"] == {"quixstreams": "could not make it: no registry"}
    for entry in res["peers"].values():
        assert entry["runs"][0]["events"] == 300 and entry["events_per_s"] > 0
    bf = backfill.run(300, (1,), timeout=180, store="rocksdb://", log=lambda _: None)
    assert bf["store"] == "rocksdb://"  # the workers ran on the store they were given
    one = bf["runs"]["1"]
    assert one["records_out"] + one["duplicates"] + one["dead_letters"] >= 300
    assert one["events_per_s"] > 0 and one["target_seconds"] > 0 and bf["topics_deleted"] > 0


@pytest.mark.kafka
def test_transaction_cost_is_measured_per_batch_size_and_its_topics_deleted(
    pipeline_settings: Any,
) -> None:
    """`python -m bench.txn_cost`, tiny: the worker's own producer and `send_in_transaction`,
    each size's CPU and wall time, the fixed share of a transaction from them; no topic left."""
    import asyncio

    res = asyncio.run(txn_cost.measure(pipeline_settings, [1, 20], 10))
    assert set(res["sizes"]) == {1, 20}
    assert all(r["cpu_ms"] > 0 and r["wall_ms"] > 0 for r in res["sizes"].values())
    assert "fixed_cpu_ms" in res and "per_record_cpu_us" in res
    assert not asyncio.run(e2e._topics_with(pipeline_settings, (res["topic_prefix"],)))


@pytest.mark.kafka
def test_e2e_runs_one_worker_on_the_store_it_is_given(
    kafka: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make bench`'s second e2e part: one worker on rocksdb:// (what deployments run), no
    latency part, its ratio against its own passthrough, and a row of its own in the table."""
    monkeypatch.setenv("NEWSPIPE_BROKER", f"kafka://{kafka}")
    monkeypatch.setenv("NEWSPIPE_STORE", "memory://")
    res = e2e.run(300, 30, two_workers=False, latency=False, store="rocksdb://", timeout=120,
                  log=lambda _: None)  # fmt: skip
    one = res["one_worker"]
    assert res["store"] == "rocksdb://" and "latency" not in res and res["topics_deleted"] > 0
    rates = res["passthrough"]["rounds_events_per_s"]
    assert len(rates) == 2 and res["passthrough"]["events_per_s"] == max(rates)  # around it
    assert one["events_per_s"] > 0 and res["ratio_one_worker_to_passthrough"] > 0
    rows = {r[0]: r for r in bench_run.table({"e2e_other_store": res})}
    assert rows["e2e 1 worker (rocksdb://)"][3] == f"{res['ratio_one_worker_to_passthrough']:.3f}"


def test_sweep_bench_scans_the_whole_state_then_drops_it_on_both_stores() -> None:
    """`python -m bench.sweep`, tiny: the first sweep (nothing past its horizon) keeps every
    entry, the one a year later drops every one, on each store, and the year's estimate scales
    the measured cost per entry."""
    res = _bench_json("bench.sweep", "--comments", "2000", "--articles", "200")
    assert [r["store"] for r in res] == ["memory://", "rocksdb://"]
    for r in res:
        assert r["entries"] > 200 * 40  # an article's bands alone are 42 entries
        assert r["removed_by_the_first_sweep"] == 0
        assert r["removed_by_the_second_sweep"] == r["entries"]
        assert r["scan_s"] > 0 and r["drop_s"] > 0
        assert r["year_state_entries"] > r["entries"]
        assert r["year_state_scan_s"] == pytest.approx(
            r["year_state_entries"] * r["scan_us_per_entry"] / 1e6
        )
