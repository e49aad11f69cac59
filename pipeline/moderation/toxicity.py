"""Toxicity score of a comment, from the trained model that `alt-profanity-check` ships.

The package (MIT; Victor Zhou's profanity-check, maintained by M. Kotoglou and D. Mistriotis)
holds a scikit-learn pipeline trained on about 200k labelled English texts: Davidson et al.'s
tweets ("Automated Hate Speech Detection and the Problem of Offensive Language") and the Jigsaw
Toxic Comment Classification Challenge's Wikipedia talk-page comments. It is a TF-IDF bag of
words (lowercased, `\\b\\w\\w+\\b` tokens, English stop words out, l2 norm) feeding five linear
SVMs, each with a sigmoid calibration; the probability is their mean.

Its `predict_prob` goes through sklearn's vectorizer and sparse matrices: about 100 us of fixed
cost per call plus several us per text. Here the same fitted numbers (vocabulary, idf, the five
weight vectors, intercepts and sigmoids) are read once from the package's files and a batch is
scored with one regex pass per text and a few numpy reductions over the whole batch, so the cost
per comment is a few microseconds. `tests/test_moderation_toxicity.py` checks the scores equal
the package's own `predict_prob` on the evaluation comments to 1e-9.

Nothing is downloaded: the model files are package data of an installed, hash-pinned wheel.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PACKAGE = "alt-profanity-check"
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
        """The package's model, read once per process (about a second: sklearn unpickles it)."""
        from importlib import metadata, resources

        import joblib  # the package's own format; sklearn is imported by the unpickling

        data = resources.files("profanity_check") / "data"
        with (data / "vectorizer.joblib").open("rb") as fh:
            vectorizer = joblib.load(fh)
        with (data / "model.joblib").open("rb") as fh:
            model = joblib.load(fh)
        params = vectorizer.get_params()
        expected = {"lowercase": True, "norm": "l2", "use_idf": True, "sublinear_tf": False,
                    "ngram_range": (1, 1), "analyzer": "word", "binary": False,
                    "strip_accents": None, "token_pattern": _TOKEN.pattern}  # fmt: skip
        differs = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
        if differs:  # a new release of the package with another vectorizer: refuse to guess
            raise RuntimeError(f"{PACKAGE}: unexpected vectorizer settings {differs}")
        idf = np.asarray(vectorizer.idf_, dtype=np.float64)
        coefs, intercepts, a, b = [], [], [], []
        for calibrated in model.calibrated_classifiers_:
            (calibrator,) = calibrated.calibrators
            coefs.append(np.asarray(calibrated.estimator.coef_, dtype=np.float64).ravel())
            intercepts.append(float(np.ravel(calibrated.estimator.intercept_)[0]))
            a.append(float(calibrator.a_))
            b.append(float(calibrator.b_))
        weights = np.ascontiguousarray(np.stack(coefs, axis=1) * idf[:, None])
        vocabulary = {str(t): int(i) + 1 for t, i in vectorizer.vocabulary_.items()}
        ascii_vocabulary = {t.encode(): i for t, i in vocabulary.items() if t.isascii()}
        version = f"{PACKAGE} {metadata.version(PACKAGE)}"
        arrays = (np.array(intercepts), np.array(a), np.array(b))
        return cls(vocabulary, ascii_vocabulary, idf, weights, *arrays, version)

    def term_ids(self, text: str) -> list[int]:
        """The columns + 1 of `text`'s tokens, repeats kept (stop words are not in the
        vocabulary)."""
        if text.isascii():
            words = text.encode().translate(_ASCII_WORDS).split()
            return [*filter(None, map(self.ascii_vocabulary.get, words))]
        return [*filter(None, map(self.vocabulary.get, _TOKEN.findall(text.lower())))]

    def score_many(self, texts: Sequence[str]) -> list[float]:
        """P(offensive) for each text, in order: one numpy pass for the whole batch."""
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
