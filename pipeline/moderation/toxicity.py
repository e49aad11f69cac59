"""Toxicity score of a comment, from the trained model that `alt-profanity-check` ships.

The package (MIT; Victor Zhou's profanity-check, maintained by M. Kotoglou and D. Mistriotis)
holds a scikit-learn pipeline trained on about 200k labelled English texts: Davidson et al.'s
tweets ("Automated Hate Speech Detection and the Problem of Offensive Language") and the Jigsaw
Toxic Comment Classification Challenge's Wikipedia talk-page comments. It is a TF-IDF bag of
words (lowercased, `\\b\\w\\w+\\b` tokens, English stop words out, l2 norm) feeding five linear
SVMs, each with a sigmoid calibration; the probability is their mean.

Its `predict_prob` goes through sklearn's vectorizer and sparse matrices: about 100 us of fixed
cost per call plus several us per text. Here the same fitted numbers (vocabulary, idf, the five
weight vectors, intercepts and sigmoids), exported once by
`python -m devtools.export_toxicity_model` to `pipeline/data/moderation/toxicity-model.npz`
(float64, as fitted; licence and source in `TOXICITY-MODEL-NOTICE.md` beside it), are read with
numpy alone. A batch is scored in one compiled call (`newspipe_native.ToxicityScorer`,
native/src/moderation.rs, on the same arrays: tokens, vocabulary, the linear models) and one
numpy pass for the sigmoids, so the cost per comment is a few microseconds. `_py_score_many`
(one regex pass per text, numpy reductions over the batch) is its reference, kept for the texts
the compiled tokenizer leaves to Python (a capital sigma, lone surrogates) and compared with it,
bit for bit, in tests/test_moderation_native.py. scikit-learn, scipy, joblib and the package
itself are test dependencies only: `tests/test_moderation_core.py` checks the scores equal the
package's own `predict_prob` on the evaluation comments to 1e-9, that the shipped file equals a
fresh export from the installed package, and that scoring imports no sklearn.

Nothing is downloaded: the model is package data of the newspipe wheel.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from pipeline.moderation.chars import case_tables

MODEL_FILE = "toxicity-model.npz"
# sklearn's default token_pattern, applied after str.lower() as TfidfVectorizer does
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
# The same tokens for ASCII text, about three times faster: ASCII letters lowercased, digits and
# `_` kept (the ASCII part of `\w`), every other byte a space, then split. One-letter tokens and
# stop words are simply not in the vocabulary, so no filter is needed for them.
_ASCII_WORDS = (
    bytes(
        (c + 32 if 65 <= c <= 90 else c) if chr(c).isalnum() or c == 95 else 32 for c in range(128)
    )
    + b" " * 128
)


@dataclass(frozen=True, eq=False)
class ToxicityModel:
    """The fitted numbers of a TF-IDF + calibrated linear model; `score_many` is the batch call.

    The vocabularies map a term to its column + 1 (0 is never a value, so `filter(None, map(
    vocabulary.get, tokens))` drops the unknown tokens without a Python loop).
    `weights[j, k]` = idf of term j times the k-th SVM's coefficient; `idf2[j]` = idf squared
    (for the l2 norm); `a`, `b`: the k-th sigmoid (p_k = 1 / (1 + exp(a_k * d_k + b_k))).
    """

    vocabulary: dict[str, int]
    ascii_vocabulary: dict[bytes, int]
    idf: np.ndarray
    weights: np.ndarray
    intercepts: np.ndarray
    a: np.ndarray
    b: np.ndarray
    version: str

    @classmethod
    @functools.cache
    def load(cls) -> ToxicityModel:
        """The shipped model (`pipeline/data/moderation/toxicity-model.npz`), read once per
        process with numpy alone."""
        with (resources.files("pipeline") / "data" / "moderation" / MODEL_FILE).open("rb") as fh:
            with np.load(fh, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
        if str(arrays["token_pattern"]) != _TOKEN.pattern:  # a file this tokenizer does not fit
            raise RuntimeError(f"{MODEL_FILE}: token pattern {arrays['token_pattern']}")
        idf = np.asarray(arrays["idf"], dtype=np.float64)
        weights = np.ascontiguousarray(np.asarray(arrays["coefs"], dtype=np.float64) * idf[:, None])
        columns = (arrays["columns"].astype(np.int64) + 1).tolist()
        vocabulary = dict(zip(arrays["terms"].tolist(), columns, strict=True))
        ascii_vocabulary = {t.encode(): i for t, i in vocabulary.items() if t.isascii()}
        rest = (np.asarray(arrays[k], dtype=np.float64) for k in ("intercepts", "a", "b"))
        return cls(vocabulary, ascii_vocabulary, idf, weights, *rest, str(arrays["version"]))

    @functools.cached_property
    def _native(self) -> Any:
        """The compiled scorer on this model's arrays (vocabulary, idf, weights, sigmoids)."""
        from newspipe_native import ToxicityScorer

        terms = sorted(self.vocabulary, key=self.vocabulary.__getitem__)
        columns = [self.vocabulary[t] - 1 for t in terms]
        raw = [np.ascontiguousarray(x, dtype="<f8").tobytes()
               for x in (self.idf, self.weights, self.intercepts, self.a, self.b)]  # fmt: skip
        return ToxicityScorer(case_tables(), terms, columns, *raw)

    def term_ids(self, text: str) -> list[int]:
        """The columns + 1 of `text`'s tokens, repeats kept (stop words are not in the
        vocabulary)."""
        columns = self._native.term_columns(text)
        if columns is None:
            return self._py_term_ids(text)
        return [c + 1 for c in columns]

    def _py_term_ids(self, text: str) -> list[int]:
        """`term_ids` in Python: the reference."""
        if text.isascii():
            words = text.encode().translate(_ASCII_WORDS).split()
            return [*filter(None, map(self.ascii_vocabulary.get, words))]
        return [*filter(None, map(self.vocabulary.get, _TOKEN.findall(text.lower())))]

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """P(offensive) for each text, in order. The sigmoid arguments come from the compiled
        scorer; their `exp` and mean are numpy's, as in `_py_score_many` (numpy's vectorised
        `exp` and the C library's differ in the last bit for some arguments)."""
        n = len(texts)
        if n == 0:
            return []
        raw, left = self._native.decisions(texts)
        z = np.frombuffer(raw, dtype=np.float64).reshape(n, len(self.intercepts))
        scores: list[float] = (1.0 / (1.0 + np.exp(z))).mean(axis=1).tolist()
        if left:
            rest = self._py_score_many([texts[i] for i in left])
            for i, score in zip(left, rest, strict=True):
                scores[i] = score
        return scores

    def _py_score_many(self, texts: Sequence[str]) -> list[float]:
        """`score_many` in Python and numpy, one numpy pass for the whole batch: the
        reference."""
        n = len(texts)
        if n == 0:
            return []
        ids: list[int] = []
        lengths = []
        extend, aget, get = ids.extend, self.ascii_vocabulary.get, self.vocabulary.get
        for text in texts:  # term_ids, inlined: this loop is most of the model's cost
            before = len(ids)
            if text.isascii():
                extend(filter(None, map(aget, text.encode().translate(_ASCII_WORDS).split())))
            else:
                extend(filter(None, map(get, _TOKEN.findall(text.lower()))))
            lengths.append(len(ids) - before)
        dots = np.zeros((n, self.weights.shape[1]))
        if ids:
            doc = np.repeat(np.arange(n), lengths)
            # tf counts per (doc, term): sort the pairs, count runs
            pair = doc.astype(np.int64) * len(self.idf) + np.asarray(ids, dtype=np.int64) - 1
            uniq, counts = np.unique(pair, return_counts=True)
            udoc, uterm = np.divmod(uniq, len(self.idf))
            norm2 = np.bincount(udoc, weights=counts * counts * self.idf[uterm] ** 2, minlength=n)
            contrib = self.weights[uterm] * counts[:, None]
            for k in range(dots.shape[1]):
                dots[:, k] = np.bincount(udoc, weights=contrib[:, k], minlength=n)
            norm = np.sqrt(norm2)
            norm[norm == 0] = 1.0
            dots /= norm[:, None]
        decision = dots + self.intercepts
        p = 1.0 / (1.0 + np.exp(decision * self.a + self.b))
        return p.mean(axis=1).tolist()

    def score(self, text: str) -> float:
        return self.score_many([text])[0]
