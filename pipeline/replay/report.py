"""What a replay tells its operator: a progress bar (TTY) or periodic log lines, then a summary."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

from pipeline.replay.events import BadLine

MAX_LISTED = 50


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
    invalid: Counter[str] = field(default_factory=Counter)
    invalid_where: list[BadLine] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
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
    def rate(self) -> float:
        done = self.produced if self.mode == "kafka" else self.read
        return done / self.seconds if self.seconds > 0 else 0.0

    def exit_code(self, allow_invalid: bool = False) -> int:
        if self.interrupted:
            return 130
        if self.failed or (self.invalid_total and not allow_invalid):
            return 1
        return 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode, "run_id": self.run_id, "read": self.read,
            "produced": self.produced, "failed": self.failed,
            "skipped_filter": self.skipped_filter, "skipped_resume": self.skipped_resume,
            "invalid": dict(self.invalid), "invalid_where": [b.where + " " + b.reason
                                                             for b in self.invalid_where],
            "outcomes": dict(self.outcomes), "interrupted": self.interrupted,
            "seconds": round(self.seconds, 3), "rate": round(self.rate, 1),
        }  # fmt: skip

    def render(self, out: TextIO | None = None) -> None:
        from rich.console import Console
        from rich.table import Table

        console = Console(file=out or sys.stderr, width=120)
        table = Table(title=f"replay {self.run_id} ({self.mode})", show_header=False)
        table.add_column("what")
        table.add_column("count", justify="right")
        table.add_row("read", str(self.read))
        label = {"kafka": "produced (acked)", "dry-run": "would produce", "offline": "processed"}
        table.add_row(label.get(self.mode, "produced"), str(self.produced))
        for name, n in sorted(self.outcomes.items()):
            table.add_row(f"  {name}", str(n))
        if self.failed:
            table.add_row("[red]failed to produce[/red]", str(self.failed))
            for reason, n in self.failures.most_common(5):
                table.add_row(f"  {reason[:80]}", str(n))
        table.add_row("invalid", str(self.invalid_total))
        for reason, n in sorted(self.invalid.items()):
            table.add_row(f"  {reason}", str(n))
        table.add_row("skipped by filter", str(self.skipped_filter))
        table.add_row("skipped (already done, --resume)", str(self.skipped_resume))
        table.add_row("duration", f"{self.seconds:.2f} s")
        table.add_row("rate", f"{self.rate:,.0f} events/s")
        if self.interrupted:
            table.add_row("[yellow]interrupted[/yellow]", "checkpoint written")
        console.print(table)
        for bad in self.invalid_where:
            console.print(f"invalid: {bad.where}: {bad.reason}", markup=False, highlight=False)
        if self.invalid_total > len(self.invalid_where):
            console.print(f"... and {self.invalid_total - len(self.invalid_where)} more")


class Feedback:
    """A rich progress bar with rate and ETA on a TTY, else one log line every `every` seconds."""

    def __init__(self, summary: Summary, total: float | None, every: float = 10.0,
                 out: TextIO | None = None, tty: bool | None = None) -> None:  # fmt: skip
        self.summary = summary
        self.total = total
        self.every = every
        self.out = out or sys.stderr
        self.tty = self.out.isatty() if tty is None else tty
        self.last = time.monotonic()
        self.progress: Any = None
        self.task: Any = None

    def __enter__(self) -> Feedback:
        if self.tty:
            from rich.progress import (
                BarColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.progress = Progress(
                TextColumn("replay"), BarColumn(), TaskProgressColumn(),
                TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                transient=True,
            )  # fmt: skip
            self.progress.start()
            self.task = self.progress.add_task("replay", total=self.total, rate="")
        return self

    def update(self, done: float) -> None:
        """Called often; does real work at most every 0.2 s (bar) or `every` s (log)."""
        now = time.monotonic()
        if self.progress is not None:
            if now - self.last >= 0.2:
                self.last = now
                s = self.summary
                rate = f"{s.read:,} read  {s.read / max(s.seconds, 1e-9):,.0f} ev/s"
                self.progress.update(self.task, completed=done, rate=rate)
        elif now - self.last >= self.every:
            self.last = now
            s = self.summary
            pct = f" {100 * done / self.total:.1f}%" if self.total else ""
            print(f"replay {s.run_id}: read {s.read} produced {s.produced} invalid "
                  f"{s.invalid_total} filtered {s.skipped_filter}{pct} "
                  f"{s.read / max(s.seconds, 1e-9):,.0f} ev/s",
                  file=self.out, flush=True)  # fmt: skip

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
