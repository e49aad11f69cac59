"""What a replay tells its operator: a progress bar (TTY) or periodic log lines, then a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from pipeline.replay.events import BadLine
from pipeline.replay.plan import Plan, duration_text

MAX_LISTED = 50
# what each mode's `done` counts, as the progress shows it
DONE_NAMES = {"kafka": "produced", "offline": "processed", "dry-run": "would produce"}
DUPLICATES_HINT = (
    "records the pipeline had already seen are not emitted again: the worker counts them as "
    'newspipe_duplicates_total{mode="replay"} (rejects as newspipe_dead_letters_total'
    '{mode="replay"}); docs/backfills.md says when clean output can differ from the first pass'
)


@dataclass
class Summary:
    """Counters for one run; `ok` decides the exit code."""

    mode: str = "kafka"
    run_id: str = ""
    read: int = 0
    produced: int = 0
    failed: int = 0
    skipped_filter: int = 0
    skipped_resume: int = 0
    pruned_files: int = 0  # files skipped whole: manifest or date folder outside the window
    pruned_records: int = 0  # their records, where a manifest counts them
    plan: Plan | None = None  # dry run: what would be produced, and where
    warnings: list[str] = field(default_factory=list)
    checkpoint: str | None = None  # absolute path of the checkpoint kept, if any
    resume_command: str | None = None
    into_raw: bool = False  # produced into the pipeline's raw topics (dedup applies)
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_where: list[BadLine] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    redrive: bool = False  # --from-dlq: `invalid` are letters still failing at the door
    skipped: Counter[str] = field(default_factory=Counter)  # dead letters not sent, by reason
    interrupted: bool = False
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None

    def add_invalid(self, bad: BadLine) -> None:
        self.invalid[bad.code] += 1
        if len(self.invalid_where) < MAX_LISTED:
            self.invalid_where.append(bad)

    @property
    def invalid_total(self) -> int:
        return sum(self.invalid.values())

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    @property
    def would_produce(self) -> int:
        return self.plan.total if self.plan is not None else 0

    @property
    def done(self) -> int:
        """What this mode's rate counts: produced (acked), processed (offline) or planned."""
        return self.would_produce if self.mode == "dry-run" else self.produced

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    def exit_code(self, allow_invalid: bool = False) -> int:
        if self.interrupted:
            return 130
        if self.failed or (self.invalid_total and not allow_invalid):
            return 1
        return 0

    def as_dict(self) -> dict[str, Any]:
        out = {
            "mode": self.mode, "run_id": self.run_id, "read": self.read,
            "produced": self.produced, "failed": self.failed,
            "skipped_filter": self.skipped_filter, "skipped_resume": self.skipped_resume,
            "pruned_files": self.pruned_files, "pruned_records": self.pruned_records,
            "invalid": dict(self.invalid), "invalid_where": [b.where + " " + b.reason
                                                             for b in self.invalid_where],
            "outcomes": dict(self.outcomes), "interrupted": self.interrupted,
            "skipped": dict(self.skipped),
            "seconds": round(self.seconds, 3), "rate": round(self.rate, 1),
            "warnings": self.warnings, "checkpoint": self.checkpoint,
            "resume_command": self.resume_command,
        }  # fmt: skip
        if self.plan is not None:
            out["plan"] = self.plan.as_dict()
            out["would_produce"] = self.plan.total
        return out

    def render(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=out or sys.stderr, width=120)
        table = Table(title=f"replay {self.run_id} ({self.mode})", show_header=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("read", str(self.read))
        if self.mode == "dry-run":
            table.add_row("would produce", str(self.would_produce))
        else:
            label = {"kafka": "redriven (acked)" if self.redrive else "produced (acked)",
                     "offline": "processed"}  # fmt: skip
            table.add_row(label.get(self.mode, "produced"), str(self.produced))
        for name, n in sorted(self.outcomes.items()):
            table.add_row(f"  {name}", str(n))
        if self.failed:
            table.add_row("[red]failed to produce[/red]", str(self.failed))
            for reason, n in self.failures.most_common(5):
                table.add_row(f"  {reason[:80]}", str(n))
        bad = "still failing (refused at the door)" if self.redrive else "invalid"
        table.add_row(bad, str(self.invalid_total))
        for reason, n in sorted(self.invalid.items()):
            table.add_row(f"  {reason}", str(n))
        for reason, n in sorted(self.skipped.items()):
            table.add_row(f"skipped: {reason}", str(n))
        table.add_row("skipped by filter", str(self.skipped_filter))
        table.add_row("skipped (already done, --resume)", str(self.skipped_resume))
        if self.pruned_files:
            counted = f" ({self.pruned_records} records)" if self.pruned_records else ""
            table.add_row("files outside the window, not read", f"{self.pruned_files}{counted}")
        table.add_row("duration", f"{self.seconds:.2f} s")
        what = {"kafka": "produced", "offline": "processed", "dry-run": "planned"}
        table.add_row(f"rate ({what.get(self.mode, 'produced')})", f"{self.rate:,.0f} events/s")
        if self.interrupted:
            kept = "checkpoint written" if self.checkpoint else "no checkpoint (no --resume)"
            table.add_row("[yellow]interrupted[/yellow]", kept)
        console.print(table)
        if self.plan is not None:
            for line in self.plan.lines():
                console.print(line, markup=False, highlight=False)
        for warning in self.warnings:
            console.print(f"warning: {warning}", markup=False, highlight=False, soft_wrap=True)
        if self.mode == "kafka" and self.into_raw and self.produced:
            console.print(f"note: {DUPLICATES_HINT}", markup=False, highlight=False, soft_wrap=True)
        if self.interrupted or (self.checkpoint and self.failed):
            for line in self.resume_lines():  # unwrapped: the command is copied as it is
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        for bad in self.invalid_where:
            what = "still failing" if self.redrive else "invalid"
            console.print(f"{what}: {bad.where}: {bad.reason}", markup=False, highlight=False)
        if self.invalid_total > len(self.invalid_where):
            console.print(f"... and {self.invalid_total - len(self.invalid_where)} more")

    def resume_lines(self) -> list[str]:
        """Where the checkpoint is and the exact command that carries on from it."""
        if not self.checkpoint:
            return [
                "no checkpoint was kept (no --resume): running the same command again sends "
                "everything again (dedup absorbs what was already sent)"
            ]
        out = [f"checkpoint: {self.checkpoint} (run id {self.run_id})"]
        if self.resume_command:
            out.append(f"resume with: {self.resume_command}")
        return out


def progress_line(summary: Summary, done: float, total: float | None,
                  unit: str = "bytes") -> str:  # fmt: skip
    """One labelled progress line: every figure says what it counts."""
    s = summary
    elapsed = max(s.seconds, 1e-9)
    name = DONE_NAMES.get(s.mode, "produced")
    parts = []
    if total:
        parts.append(f"{100 * done / total:.1f}% of input {unit}")
    parts.append(f"read {s.read:,}")
    parts.append(f"{name} {s.done:,}")
    parts.append(f"{name.split()[-1]} rate {s.done / elapsed:,.0f}/s")
    if s.invalid_total:
        parts.append(f"invalid {s.invalid_total:,}")
    if s.skipped_filter:
        parts.append(f"filtered {s.skipped_filter:,}")
    if s.skipped_resume:
        parts.append(f"already done {s.skipped_resume:,}")
    parts.append(f"elapsed {duration_text(elapsed)}")
    if total and 0 < done < total:
        parts.append(f"ETA {duration_text(elapsed * (total - done) / done)}")
    return f"replay {s.run_id}: " + " | ".join(parts)


def progress_text(summary: Summary, done: float, total: float | None) -> str:
    """The bar's text: the same labelled figures, the most wanted first (a narrow terminal cuts
    the end)."""
    s = summary
    elapsed = max(s.seconds, 1e-9)
    name = DONE_NAMES.get(s.mode, "produced")
    eta = duration_text(elapsed * (total - done) / done) if total and 0 < done < total else "-"
    return (f"{name} {s.done:,} | {s.done / elapsed:,.0f}/s {name.split()[-1]} | ETA {eta} | "
            f"elapsed {duration_text(elapsed)} | read {s.read:,}")  # fmt: skip


class Feedback:
    """A rich progress bar with rate and ETA on a TTY, else one log line every `every` seconds."""

    def __init__(self, summary: Summary, total: float | None, every: float = 10.0,
                 out: TextIO | None = None, tty: bool | None = None,
                 unit: str = "bytes") -> None:  # fmt: skip
        self.summary = summary
        self.total = total
        self.unit = unit  # what `done` and `total` count: input bytes (files) or records (topic)
        self.every = every
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.last = time.monotonic()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> Feedback:
        if self.tty:
            from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn

            self.progress = Progress(
                TextColumn("replay"), BarColumn(bar_width=16), TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"), transient=True,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task("replay", total=self.total, rate="")
        return self

    def update(self, done: float, total: float | None = None) -> None:
        """Called often; does real work at most every 0.2 s (bar) or `every` s (log). `total`
        can become known late (a topic range learns it once its consumer has started)."""
        if total is not None:
            self.total = total
        now = time.monotonic()
        if self.progress is not None:
            if now - self.last >= 0.2:
                self.last = now
                text = progress_text(self.summary, done, self.total)
                self.progress.update(self.task, completed=done, total=self.total, rate=text)
        elif now - self.last >= self.every:
            self.last = now
            line = progress_line(self.summary, done, self.total, self.unit)
            print(line, file=self.out, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
