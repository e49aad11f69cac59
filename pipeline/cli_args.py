"""Argument-parser pieces every `newspipe` command shares: exit codes and renamed flags.

Kept out of pipeline/cli.py so the replay tool (pipeline/replay/cli.py) uses the same ones, and
so the generated docs/cli.md reads the exit codes from the one place they are written.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

# the release that drops the old spellings of renamed flags
ALIASES_REMOVED_IN = "0.3.0"

# code -> meaning, shared by every command; `extra` codes are added per command
EXIT_CODES: dict[int, str] = {
    0: "done",
    1: "Kafka unreachable or refusing (one line says why), or the topics' layout is wrong",
    2: "bad settings (one line per NEWSPIPE_* variable) or bad usage",
}


def exit_epilog(extra: dict[int, str] | None = None) -> str:
    """The `exit codes:` block of a help page; `extra` adds or refines codes for one command."""
    codes = {**EXIT_CODES, **(extra or {})}
    lines = ["exit codes:"]
    lines += [f"  {code:<3} {text}" for code, text in sorted(codes.items())]
    return "\n".join(lines)


class RenamedFlag(argparse.Action):
    """An option whose first spelling is current and whose later spellings are deprecated: they
    still work for one version, with a warning naming the new spelling."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        if self.help and len(option_strings) > 1:
            old = ", ".join(option_strings[1:])
            self.help = f"{self.help} ({old}: old spelling, removed in {ALIASES_REMOVED_IN})"

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:  # fmt: skip
        if option_string is not None and option_string != self.option_strings[0]:
            print(
                f"{parser.prog}: warning: {option_string} is deprecated, use "
                f"{self.option_strings[0]} (the old spelling goes in {ALIASES_REMOVED_IN})",
                file=sys.stderr,
            )
        setattr(namespace, self.dest, values)


class Formatter(argparse.HelpFormatter):
    """Keeps the exit-code epilog's lines as written; wraps the description as usual."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("exit codes:"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)
