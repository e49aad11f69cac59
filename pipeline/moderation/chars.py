"""This interpreter's own answers to `str.lower`, `str.casefold`, `str.isspace` and `re`'s `\\w`,
for every code point, handed once to the compiled moderation code (native/src/moderation.rs,
native/src/modsignals.rs).

The toxicity tokenizer (sklearn's `(?u)\\b\\w\\w+\\b` on `text.lower()`) and the word lists
(`text.casefold()`, word boundaries by `str.isalnum()`) are defined by Python's Unicode database.
Rust has tables of its own, of another Unicode version and with another idea of alphanumeric
(the Alphabetic property, where Python takes the letter categories), so the compiled side is given
Python's: the characters `\\w` matches as ranges, and the characters that lower- or casefold to
something else, with what they become. Found by whole blocks of code points at C speed (a
per-character Python loop over 1.1 million code points would cost a second at every start).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import numpy as np

# Lone surrogates are left out: a text holding one is never handed to the compiled side.
_PLANES = ((0, 0xD800), (0xE000, 0x110000))
_BLOCK = 1024
_WORD_RUN = re.compile(r"\w+")
_SPACE = re.compile(r"\s")  # `re`'s `\s` is `str.isspace()`, what `str.split()` splits on


def _all_code_points() -> dict[int, str]:
    """{first code point: the string of every code point from it to the end of its plane}."""
    return {lo: np.arange(lo, hi, dtype="<u4").tobytes().decode("utf-32-le") for lo, hi in _PLANES}


def word_ranges(planes: dict[int, str]) -> list[tuple[int, int]]:
    """(start, end) of each run of code points `re`'s `\\w` matches."""
    return [(lo + m.start(), lo + m.end()) for lo, text in planes.items()
            for m in _WORD_RUN.finditer(text)]  # fmt: skip


def space_chars(planes: dict[int, str]) -> list[int]:
    """The code points `str.split()` splits on."""
    return [lo + m.start() for lo, text in planes.items() for m in _SPACE.finditer(text)]


def char_map(planes: dict[int, str], fold: Callable[[str], str]) -> list[tuple[int, str]]:
    """(code point, fold(character)) for each character `fold` changes. `fold` must be a
    per-character mapping on these strings: true of `str.casefold`, and of `str.lower` but for
    the capital sigma (small sigma here, where no letter comes before it; final sigma after a
    letter: the compiled side leaves texts holding one to Python)."""
    out: list[tuple[int, str]] = []
    for lo, text in planes.items():
        for at in range(0, len(text), _BLOCK):
            block = text[at : at + _BLOCK]
            folded = fold(block)
            if folded == block:
                continue
            base = lo + at
            if len(folded) == len(block):  # one character each: compare them as arrays
                a = np.frombuffer(block.encode("utf-32-le"), dtype="<u4")
                b = np.frombuffer(folded.encode("utf-32-le"), dtype="<u4")
                out.extend((base + i, folded[i]) for i in np.flatnonzero(a != b).tolist())
            else:  # some character expands (e.g. "ß" -> "ss"): one at a time in this block
                out.extend((base + i, f) for i, c in enumerate(block) if (f := fold(c)) != c)
    return out


@functools.cache
def case_tables() -> Any:
    """The compiled `CaseTables`, built once per process."""
    from newspipe_native import CaseTables

    planes = _all_code_points()
    return CaseTables(
        word_ranges(planes), char_map(planes, str.lower), char_map(planes, str.casefold)
    )


@functools.cache
def spaces() -> list[int]:
    """`space_chars` of every code point, found once per process."""
    return space_chars(_all_code_points())
