"""`make eval-moderation`: how well the toxicity score finds the Fox News comments marked hateful.

Usage: python -m devtools.moderation_eval

The 1,528 comments of data/fox-news-comments (label 1 = hateful, Gao & Huang 2017) are an
evaluation set only: the model (alt-profanity-check's) was trained elsewhere, on Davidson et
al.'s tweets and the Jigsaw Wikipedia talk-page comments, and nothing here is fitted on them
except the one threshold, chosen on one half and reported on the other:

- each comment goes through normalization, so the score is of the `own_text` the pipeline scores;
- the halves are fixed (xxh3 of the comment's line number, even or odd: no randomness);
- ROC-AUC of the score on each half and on all;
- the review threshold T1 = the one with the best F1 on the tuning half among those that flag at
  most 10% of it (a queue moderators can work through); the reject threshold
  T2 = the lowest whose precision on the tuning half is at least 0.9 (false rejections cost more
  than a look);
- precision / recall / F1 of the `toxic` flag (score >= T1) and of rejection (score >= T2) on the
  held-out half, and at the thresholds the settings hold now.
"""

from __future__ import annotations

import time

import numpy as np
import orjson

from devtools.datasets import fox_comments
from devtools.paths import FOX_COMMENTS
from pipeline.ids import short_hash
from pipeline.moderation.toxicity import ToxicityModel
from pipeline.normalize import normalize_comment
from pipeline.settings import Settings

REJECT_PRECISION = 0.9
# a review queue a newsroom can work through: T1 flags at most this share of the tuning half
# (without the cap the best F1 is "flag three comments in four", no better than flagging all)
MAX_REVIEW_SHARE = 0.1


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mann-Whitney U / (n_pos * n_neg), ties counted half (average ranks)."""
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):  # average rank over each run of equal scores
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def prf(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float, float]:
    flagged = scores >= threshold
    tp = int((flagged & (labels == 1)).sum())
    precision = tp / int(flagged.sum()) if flagged.any() else 0.0
    recall = tp / int((labels == 1).sum())
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return precision, recall, f1


def candidates(scores: np.ndarray) -> np.ndarray:
    return np.unique(np.round(scores, 4))


def main() -> int:
    t0 = time.perf_counter()
    model = ToxicityModel.load()
    labels_all = []
    with open(FOX_COMMENTS, "rb") as fh:
        labels_all = [int(orjson.loads(line)["label"]) for line in fh]
    events = fox_comments()
    texts = [normalize_comment(e, now="2026-01-01T00:00:00Z")["own_text"] for e in events]
    scores = np.array(model.score_many(texts))
    labels = np.array(labels_all)
    half = np.array([int(short_hash(str(n)), 16) % 2 for n in range(len(texts))])
    tune, test = half == 0, half == 1

    within = [t for t in candidates(scores[tune]) if (scores[tune] >= t).mean() <= MAX_REVIEW_SHARE]
    best = max(within, key=lambda t: prf(scores[tune], labels[tune], t)[2])
    precise = [t for t in candidates(scores[tune])
               if prf(scores[tune], labels[tune], t)[0] >= REJECT_PRECISION]  # fmt: skip
    reject = min(precise) if precise else None
    settings = Settings()

    print(f"model: {model.version} (TF-IDF + 5 calibrated linear SVMs, {len(model.vocabulary):,}"
          " terms); trained on Davidson et al.'s labelled tweets and the Jigsaw Toxic Comment"
          " (Wikipedia talk page) set, never on these comments")  # fmt: skip
    print(f"data: {len(texts):,} Fox News comments, {int(labels.sum())} annotated hateful; "
          f"tuning half {int(tune.sum())} ({int(labels[tune].sum())} hateful), held-out half "
          f"{int(test.sum())} ({int(labels[test].sum())} hateful)")  # fmt: skip
    print(
        f"ROC-AUC of the toxicity score: held-out {roc_auc(scores[test], labels[test]):.3f}, "
        f"tuning {roc_auc(scores[tune], labels[tune]):.3f}, all {roc_auc(scores, labels):.3f}"
    )
    rows = [
        ("toxic flag, T1 chosen on tuning half (best F1, <= 10% flagged)", best),
        (f"rejection, T2 chosen on tuning half (precision >= {REJECT_PRECISION})", reject),
        ("toxic flag at the settings' T1", settings.moderation_toxic_review),
        ("rejection at the settings' T2", settings.moderation_toxic_reject),
    ]
    if reject is None:
        print(f"rejection: no threshold reaches precision {REJECT_PRECISION} on the tuning half")
    for label, threshold in rows:
        if threshold is None:
            continue
        p, r, f1 = prf(scores[test], labels[test], threshold)
        share = float((scores[test] >= threshold).mean())
        print(f"{label}: threshold {threshold:.4f} -> held-out precision {p:.3f}, recall {r:.3f},"
              f" F1 {f1:.3f}, {share:.1%} of comments flagged")  # fmt: skip
    base = float(labels[test].mean())
    print(
        f"(a flag on every comment: precision {base:.3f}, recall 1.000, F1 "
        f"{2 * base / (base + 1):.3f})"
    )
    print(f"done in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
