"""Export the fitted numbers of `alt-profanity-check`'s model to the runtime's package data.

    python -m devtools.export_toxicity_model

writes `pipeline/data/moderation/toxicity-model.npz` (numpy, no pickle) and its
`TOXICITY-MODEL-NOTICE.md` (source, MIT licence, training data). The worker then reads the npz
with numpy alone: scikit-learn, scipy and joblib (which unpickling the package's joblib files
needs) are test dependencies only. `tests/test_moderation_core.py` checks that the shipped files
equal what this script writes from the installed package, and that the scores equal the
package's own `predict_prob`.

Arrays in the npz (terms sorted by column, so `columns` is 0..n-1):
  terms (str), columns (int32), idf (n,), coefs (n, 5: the five linear SVMs' coefficients),
  intercepts (5,), a (5,), b (5,) (the sigmoid calibrations: p_k = 1 / (1 + exp(a_k d_k + b_k))),
  version ("alt-profanity-check 1.9.1"), token_pattern (sklearn's, after str.lower()).
"""

from __future__ import annotations

import argparse
import io
import sys
from importlib import metadata, resources
from pathlib import Path

import numpy as np

from devtools.paths import ROOT

PACKAGE = "alt-profanity-check"
TOKEN_PATTERN = r"(?u)\b\w\w+\b"  # sklearn's default; pipeline.moderation.toxicity uses the same
OUT_DIR = ROOT / "pipeline" / "data" / "moderation"
NPZ = OUT_DIR / "toxicity-model.npz"
NOTICE = OUT_DIR / "TOXICITY-MODEL-NOTICE.md"
# float64, as fitted: float32 would move scores by up to ~1e-7 and make the file only ~40% smaller
DTYPE = np.float64


def load_package_model() -> tuple[object, object]:
    """The package's vectorizer and calibrated classifier, unpickled as its own code does."""
    import joblib  # the package's own format; sklearn is imported by the unpickling

    data = resources.files("profanity_check") / "data"
    with (data / "vectorizer.joblib").open("rb") as fh:
        vectorizer = joblib.load(fh)
    with (data / "model.joblib").open("rb") as fh:
        model = joblib.load(fh)
    return vectorizer, model


def extract(vectorizer, model) -> dict[str, np.ndarray]:
    """The numbers the runtime scorer needs; refuses a vectorizer it does not reproduce."""
    params = vectorizer.get_params()
    expected = {"lowercase": True, "norm": "l2", "use_idf": True, "sublinear_tf": False,
                "ngram_range": (1, 1), "analyzer": "word", "binary": False,
                "strip_accents": None, "token_pattern": TOKEN_PATTERN,
                "preprocessor": None, "tokenizer": None}  # fmt: skip
    differs = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
    if differs:  # a new release of the package with another vectorizer: refuse to guess
        raise RuntimeError(f"{PACKAGE}: unexpected vectorizer settings {differs}")
    if list(model.classes_) != [0, 1]:
        raise RuntimeError(f"{PACKAGE}: unexpected classes {list(model.classes_)}")
    idf = np.asarray(vectorizer.idf_, dtype=np.float64)
    coefs, intercepts, a, b = [], [], [], []
    for calibrated in model.calibrated_classifiers_:
        (calibrator,) = calibrated.calibrators
        coefs.append(np.asarray(calibrated.estimator.coef_, dtype=np.float64).ravel())
        intercepts.append(float(np.ravel(calibrated.estimator.intercept_)[0]))
        a.append(float(calibrator.a_))
        b.append(float(calibrator.b_))
    by_column = sorted((int(i), str(t)) for t, i in vectorizer.vocabulary_.items())
    columns = np.array([i for i, _ in by_column], dtype=np.int32)
    if not np.array_equal(columns, np.arange(len(idf))):
        raise RuntimeError(f"{PACKAGE}: the vocabulary does not cover the idf's columns")
    return {
        "terms": np.array([t for _, t in by_column], dtype=str),
        "columns": columns,
        "idf": idf.astype(DTYPE),
        "coefs": np.stack(coefs, axis=1).astype(DTYPE),
        "intercepts": np.array(intercepts, dtype=np.float64),
        "a": np.array(a, dtype=np.float64),
        "b": np.array(b, dtype=np.float64),
        "version": np.array(f"{PACKAGE} {metadata.version(PACKAGE)}"),
        "token_pattern": np.array(TOKEN_PATTERN),
    }


def package_license() -> str:
    """The LICENSE file of the installed package's dist-info."""
    dist = metadata.distribution(PACKAGE)
    for name in ("licenses/LICENSE", "LICENSE"):
        text = dist.read_text(name)
        if text:
            return text.strip()
    raise RuntimeError(f"{PACKAGE}: no LICENSE in its dist-info")


def notice(arrays: dict[str, np.ndarray]) -> str:
    version = str(arrays["version"])
    n, k = arrays["coefs"].shape
    return f"""# toxicity-model.npz

The fitted numbers of the offensive-language model that **{version}** ships
(<https://github.com/dimitrismistriotis/alt-profanity-check>; Victor Zhou's `profanity-check`,
maintained by Menelaos Kotoglou and Dimitrios Mistriotis), exported from the package's
scikit-learn files so that newspipe scores comments with numpy alone
(`pipeline/moderation/toxicity.py`).

**What it is.** A TF-IDF bag of words (lowercased, tokens `{arrays["token_pattern"]}`, English
stop words out, l2 norm) over {n:,} terms, feeding {k} linear SVMs, each with a sigmoid
calibration; the probability that a text is offensive is the mean of the {k}. The arrays:
`terms` and `columns` (the vocabulary), `idf`, `coefs` (terms x SVMs), `intercepts`, `a`, `b`
(p_k = 1 / (1 + exp(a_k * d_k + b_k))), `version`, `token_pattern`.

**What it was trained on** (by the package's authors, not here): about 200,000 labelled English
texts, the tweets of Davidson et al., "Automated Hate Speech Detection and the Problem of
Offensive Language" (ICWSM 2017), and the Wikipedia talk-page comments of the Jigsaw Toxic
Comment Classification Challenge. Its measured quality on news comments and its limits: README,
"Moderation" (`make eval-moderation`).

**Regenerate** (after changing the pinned `alt-profanity-check` in requirements.lock, where it is
a test dependency):

    python -m devtools.export_toxicity_model

`tests/test_moderation_core.py` fails when this file and the installed package disagree, and
checks the scores equal the package's own `predict_prob`.

## Licence of the model (MIT, from the package's dist-info LICENSE)

```
{package_license()}
```
"""


def write(out_dir: Path = OUT_DIR) -> tuple[Path, Path]:
    arrays = extract(*load_package_model())
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, note = out_dir / NPZ.name, out_dir / NOTICE.name
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    npz.write_bytes(buf.getvalue())
    note.write_text(notice(arrays), encoding="utf-8")
    return npz, note


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help="default: %(default)s")
    args = parser.parse_args(argv)
    for path in write(args.out_dir):
        print(f"{path}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
