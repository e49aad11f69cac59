"""Evaluate the tagger on AG News (the yardstick only: never tune term lists on its items).

Usage: python -m devtools.tagging_eval [--csv PATH]

Mapping (data/README.md): Sports -> medtop:15000000, Business -> medtop:04000000,
Sci/Tech -> medtop:13000000, World -> any other top-level topic. Prediction = the top-scoring
top-level tag. Headline figures are *strict*: an untagged item counts as wrong. A second line shows
the documented fallback "untagged -> World" (World is AG's catch-all for everything else), so the
cost of abstaining is visible rather than hidden.
"""

from __future__ import annotations

import argparse
import csv
import html
import re
import time
from collections.abc import Iterator
from pathlib import Path

from devtools.paths import AG_NEWS
from pipeline.tagging.tagger import Tagger

DEFAULT_CSV = AG_NEWS
CLASSES = ["World", "Sports", "Business", "Sci/Tech"]
CODE_TO_CLASS = {
    "medtop:15000000": "Sports",
    "medtop:04000000": "Business",
    "medtop:13000000": "Sci/Tech",
}
NONE = "(none)"

_NUM_ENTITY = re.compile(r"(?<!&)#(\d{2,5});")
_NAMED_ENTITY = re.compile(r"(?<![&\w])(quot|amp|lt|gt|apos);")
_TAG = re.compile(r"<[^>]{0,200}>")
_WS = re.compile(r"\s+")


def clean(text: str) -> str:
    """Minimal AG News repair: entity remnants (#36; quot;), backslash line escapes, stray tags."""
    text = _NAMED_ENTITY.sub(r"&\1;", _NUM_ENTITY.sub(r"&#\1;", text))
    text = html.unescape(html.unescape(text))
    text = _TAG.sub(" ", text.replace("\\", " "))
    return _WS.sub(" ", text).strip()


def load(path: Path) -> Iterator[tuple[str, str, str]]:
    """Yield (gold class, title, description) with the text cleaned."""
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.reader(fh):
            if len(row) < 3:
                continue
            yield CLASSES[int(row[0]) - 1], clean(row[1]), clean(" ".join(row[2:]))


def to_class(code: str | None) -> str:
    """Map a top-level code to an AG class; None stays untagged."""
    if code is None:
        return NONE
    return CODE_TO_CLASS.get(code, "World")


def metrics(
    gold: list[str], pred: list[str]
) -> tuple[float, float, dict[str, tuple[float, float, float]]]:
    """Accuracy, macro-F1 and per-class (P, R, F1); untagged predictions are simply wrong."""
    acc = sum(g == p for g, p in zip(gold, pred, strict=True)) / len(gold)
    per: dict[str, tuple[float, float, float]] = {}
    for c in CLASSES:
        tp = sum(g == c and p == c for g, p in zip(gold, pred, strict=True))
        npred = sum(p == c for p in pred)
        ngold = sum(g == c for g in gold)
        prec = tp / npred if npred else 0.0
        rec = tp / ngold if ngold else 0.0
        f1 = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
        per[c] = (prec, rec, f1)
    macro = sum(f for _, _, f in per.values()) / len(CLASSES)
    return acc, macro, per


def main(argv: list[str] | None = None) -> dict[str, float]:
    """Print accuracy, macro-F1, per-class P/R/F1 and the confusion matrix."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    tagger = Tagger.load()
    t1 = time.perf_counter()
    gold: list[str] = []
    pred: list[str] = []
    for g, title, desc in load(args.csv):
        gold.append(g)
        pred.append(to_class(tagger.top_level(tagger.tag_article(title, desc, ""))))
    t2 = time.perf_counter()
    n = len(gold)
    acc, macro, per = metrics(gold, pred)
    untagged = pred.count(NONE)
    fb = [p if p != NONE else "World" for p in pred]
    acc_fb, macro_fb, _ = metrics(gold, fb)
    print(f"AG News: {args.csv} ({n} items); {tagger.term_count} lexicon entries")
    print(f"load {t1 - t0:.2f}s, tag {1e6 * (t2 - t1) / n:.0f} us/item")
    print(f"strict (untagged = wrong): accuracy {acc:.4f}  macro-F1 {macro:.4f}")
    print(f"fallback (untagged -> World): accuracy {acc_fb:.4f}  macro-F1 {macro_fb:.4f}")
    print(f"untagged: {untagged} ({untagged / n:.1%})")
    print(f"\n{'class':10s} {'P':>6s} {'R':>6s} {'F1':>6s}")
    for c in CLASSES:
        p, r, f = per[c]
        print(f"{c:10s} {p:6.3f} {r:6.3f} {f:6.3f}")
    cols = [*CLASSES, NONE]
    print("\nconfusion (rows gold, cols predicted, strict)")
    print(f"{'':10s}" + "".join(f"{c:>10s}" for c in cols))
    for g in CLASSES:
        row = [sum(1 for a, b in zip(gold, pred, strict=True) if a == g and b == c) for c in cols]
        print(f"{g:10s}" + "".join(f"{x:10d}" for x in row))
    return {
        "accuracy": acc,
        "macro_f1": macro,
        "accuracy_fallback": acc_fb,
        "macro_f1_fallback": macro_fb,
    }


if __name__ == "__main__":
    main()
