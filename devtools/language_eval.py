"""Language identification on the texts this repository has: how often it gives up, how often
it is right on short texts, and what it costs.

Usage: python -m devtools.language_eval

- `und` share on the Fox News comments (own text) and the AG News items (title + description),
  and the longest text still left `und` (only texts too short to tell should be);
- accuracy on the short comments in 16 languages of devtools.samples.SHORT_TEXTS;
- CPU microseconds per comment of `detect_language` (one process; figures move with machine
  load, the ratios less so).
"""

from __future__ import annotations

import time
from collections import Counter

from devtools.datasets import ag_articles, fox_comments
from devtools.samples import SHORT_TEXTS
from pipeline.normalize import detect_language, normalize_article, normalize_comment
from pipeline.normalize.language import preload

NOW = "2026-11-26T10:00:00Z"


def main() -> None:
    preload()
    comments = [normalize_comment(c, now=NOW) for c in fox_comments()]
    articles = [normalize_article(a, now=NOW) for a in ag_articles()]
    for name, records, text in (
        ("Fox News comments", comments, "own_text"),
        ("AG News items", articles, "standfirst"),
    ):
        langs = Counter(r["language"] for r in records)
        und = [r for r in records if r["language"] == "und"]
        longest = max((len(r[text].split()) for r in und), default=0)
        print(f"{name}: {len(records)}, und {len(und)} ({len(und) / len(records):.1%}), "
              f"longest und {longest} words; most common {langs.most_common(4)}")  # fmt: skip
    pairs = [(lang, t) for lang, texts in SHORT_TEXTS.items() for t in texts]
    wrong = [(lang, t, detect_language(t)) for lang, t in pairs if detect_language(t) != lang]
    print(f"short texts in {len(SHORT_TEXTS)} languages: {len(pairs) - len(wrong)}/{len(pairs)} "
          f"right; wrong: {wrong}")  # fmt: skip
    own = [r["own_text"] for r in comments]
    best = float("inf")
    for _ in range(5):
        t0 = time.process_time()
        for text in own:
            detect_language(text)
        best = min(best, (time.process_time() - t0) / len(own) * 1e6)
    print(f"detect_language: {best:.1f} us CPU per Fox News comment (best of 5)")


if __name__ == "__main__":
    main()
