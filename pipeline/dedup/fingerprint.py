"""Near-duplicate fingerprints of article text: word 3-shingles -> MinHash (and SimHash, for
comparison in the eval and benchmark).

Shaped for cost (docs/performance.md): each word is hashed once with xxh32 and the 3-shingle
hashes are combined arithmetically, so no shingle string is ever built; the MinHash permutations
are generated once per process from a fixed seed (datasketch's default constructor regenerates
them per event). Hashes must be stable across processes and restarts because signatures and band
keys are stored in state and compared by other workers: never `hash()`.

The numpy functions here (`words`, `shingle_hashes`, `MinHasher.signature`, `_py_band_hashes`,
`_py_lead_shingles`, `_py_simhash64`) define the values; the production path computes the same
bits in compiled code (native/src/dedup.rs: `MinHasher.text_signature`, `text_shingles`,
`band_hashes`, `lead_shingles`, `simhash64`), where a word or a band costs a few instructions
instead of an interpreter step or a numpy call. tests/test_fingerprint.py holds the two equal.
"""

from __future__ import annotations

import base64
import string
from binascii import b2a_base64

import newspipe_native
import numpy as np
import xxhash

# Punctuation (ASCII and common typographic marks) becomes a space, then split(): 4-5x faster than
# re.findall(r"\w+") on this machine and equal on news text.
_TYPOGRAPHIC = "\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u00ab\u00bb"
_PUNCT = str.maketrans({c: " " for c in string.punctuation + _TYPOGRAPHIC})
_K1 = np.uint64(0x9E3779B97F4A7C15)
_K2 = np.uint64(0xC2B2AE3D27D4EB4F)
_K3 = np.uint64(0x165667B19E3779F9)
_S32 = np.uint64(32)
_S29 = np.uint64(29)
_xxh32 = xxhash.xxh32_intdigest


def words(text: str) -> list[bytes]:
    """Lowercased UTF-8 word tokens; punctuation and spacing differences do not matter."""
    return text.lower().translate(_PUNCT).encode("utf-8").split()


def _u32_bytes(values: np.ndarray) -> bytes:
    """Little-endian uint32 bytes of an array of 32-bit values (what the native calls read)."""
    return np.asarray(values).astype("<u4", copy=False).tobytes()


def text_shingles(text: str, max_words: int | None = None) -> np.ndarray:
    """`shingle_hashes(words(text)[:max_words])`, computed natively from the text."""
    return np.frombuffer(newspipe_native.shingle_hashes(text.lower(), max_words), dtype="<u4")


def shingle_hashes(tokens: list[bytes]) -> np.ndarray:
    """32-bit hashes (uint32) of the word 3-shingles; texts under 3 words use words."""
    if not tokens:
        return np.zeros(1, dtype=np.uint32)
    t = np.array(list(map(_xxh32, tokens)), dtype=np.uint64)
    # uint64 array arithmetic wraps silently (only numpy scalars warn): no errstate needed.
    s = t[:-2] * _K1 + t[1:-1] * _K2 + t[2:] * _K3 if len(t) >= 3 else t * _K1
    s = (s ^ (s >> _S29)) * _K2
    # Repeated shingles are left in: MinHash ignores them and np.unique would cost more.
    return (s >> _S32).astype(np.uint32)


class MinHasher:
    """MinHash over 32-bit shingle hashes with `num_perm` hash functions h_i(x) = a_i*x + b_i
    mod 2^32 (a_i odd, so each is a bijection whose high bits, which decide the minimum, depend on
    every bit of x).

    All permutations are computed at once as one (num_perm x shingles) uint32 matrix. uint32
    instead of the classic 61-bit-prime arithmetic in uint64 is several times faster with the
    same precision/recall in scripts/near_dup_eval.py.
    """

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        rng = np.random.default_rng(seed)
        self.num_perm = num_perm
        a = rng.integers(0, 2**31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
        self.a = a.reshape(-1, 1)
        self.b = rng.integers(0, 2**32, num_perm, dtype=np.uint64).astype(np.uint32).reshape(-1, 1)
        self._native = newspipe_native.MinHashPerms(_u32_bytes(self.a), _u32_bytes(self.b))

    def signature(self, shingles: np.ndarray) -> np.ndarray:
        """uint32 signature of length num_perm (the reference of `text_signature`)."""
        return (self.a * shingles + self.b).min(axis=1)

    def text_signature(self, text: str) -> np.ndarray:
        """`signature(shingle_hashes(words(text)))` in one native call: the same bits, without
        the (num_perm x shingles) matrix. A read-only uint32 array."""
        return np.frombuffer(self._native.text_signature(text.lower()), dtype="<u4")


def band_hashes(sig: np.ndarray, bands: int, rows: int) -> list[str]:
    """One 12-hex key per LSH band: articles sharing any band are near-duplicate candidates.

    48 bits: a chance collision only costs one signature comparison, and 12 hex instead of 16
    saves ~170 bytes of index per article at 42 bands. Computed natively; `_py_band_hashes` is
    the reference.
    """
    return newspipe_native.band_hashes(_u32_bytes(sig), bands, rows)


def _py_band_hashes(sig: np.ndarray, bands: int, rows: int) -> list[str]:
    """The reference of `band_hashes`: xxh3_64 of each band's rows (little-endian uint32), the
    first 12 hex digits of its canonical (big-endian) hex."""
    raw = sig[: bands * rows].astype("<u4").tobytes()
    step = rows * 4
    h = xxhash.xxh3_64_hexdigest
    return [h(raw[i * step : (i + 1) * step])[:12] for i in range(bands)]


def jaccard_estimate(a: np.ndarray, b: np.ndarray) -> float:
    """Fraction of equal MinHash values: an unbiased estimate of the shingle-set Jaccard.

    Compared on the low 16 bits (what `encode_signature` stores): two different minima agree
    there by chance with probability 2^-16, a bias far below the estimate's own noise.
    """
    return float(np.count_nonzero(_low16(a) == _low16(b))) / len(a)


def _low16(sig: np.ndarray) -> np.ndarray:
    return sig if sig.dtype == np.uint16 else (sig & np.uint32(0xFFFF)).astype(np.uint16)


def encode_signature(sig: np.ndarray) -> str:
    """The low 16 bits of each value (b-bit MinHash) as base64 text: state values must be JSON
    (Faust tables), not bytes; 16 bits halve the stored size at no measurable accuracy cost."""
    if sig.dtype == np.uint16:
        return base64.b64encode(sig.astype("<u2").tobytes()).decode("ascii")
    return encode_signature_le(_u32_bytes(sig))


def encode_signature_le(sig_le: bytes) -> str:
    """`encode_signature` of a uint32 signature given as its little-endian bytes (the deduper
    has them already). The low halves are taken natively: numpy's mask + cast cost more than
    the signature itself."""
    return b2a_base64(newspipe_native.low16(sig_le), newline=False).decode("ascii")


def _py_encode_signature(sig: np.ndarray) -> str:
    """The reference of `encode_signature`."""
    return base64.b64encode(_low16(sig).astype("<u2").tobytes()).decode("ascii")


def decode_signature(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u2")


_BITS = np.arange(64, dtype=np.uint64)
_ONE = np.uint64(1)


def simhash64(shingles: np.ndarray) -> int:
    """64-bit SimHash of the shingle set (each 32-bit shingle hash spread to 64 bits first),
    computed natively; `_py_simhash64` is the reference."""
    return newspipe_native.simhash64(_u32_bytes(shingles))


def _py_simhash64(shingles: np.ndarray) -> int:
    """The reference of `simhash64`: bit j is set when more than half of the spread shingle
    hashes have it set."""
    h = shingles.astype(np.uint64) * _K3
    h ^= h >> _S29
    h = h * _K1
    bits = (h[:, None] >> _BITS) & _ONE
    votes = bits.sum(axis=0) * 2 > len(h)
    return int(np.packbits(votes[::-1].astype(np.uint8)).view(">u8")[0])


def simhash_similarity(a: int, b: int) -> float:
    """1 - Hamming distance / 64."""
    return 1.0 - (a ^ b).bit_count() / 64.0


# -- the lead: what tells a syndicated copy from a follow-up of the same story -------------------
# A copy keeps the story's opening (an agency dateline, a changed word or a cut ending aside); a
# follow-up opens with the news of the day and keeps the earlier text, if at all, as background
# further down. Word-shingle Jaccard of the whole text cannot tell the two apart (both share most
# of their text); the opening can. Kept per article: the shingles of the first LEAD_WORDS words.
LEAD_WORDS = 100
HEAD_SHINGLES = 18  # the shingles of the first 20 words: the opening that must reappear


def lead_shingles(text: str) -> np.ndarray:
    """16-bit hashes of the word 3-shingles of the first LEAD_WORDS words, in text order
    (computed natively; `_py_lead_shingles` is the reference). A read-only uint16 array."""
    return np.frombuffer(newspipe_native.lead_shingles(text.lower(), LEAD_WORDS), dtype="<u2")


def _py_lead_shingles(text: str) -> np.ndarray:
    """The reference of `lead_shingles`."""
    tokens = words(text)[:LEAD_WORDS]
    if not tokens:
        return np.zeros(0, dtype=np.uint16)
    return (shingle_hashes(tokens) & np.uint32(0xFFFF)).astype(np.uint16)


def lead_containment(a: np.ndarray, b: np.ndarray) -> float:
    """How much of each text's opening reappears in the other's first LEAD_WORDS words: the
    smaller of the two shares. A copy scores high both ways; a follow-up's new opening is not in
    the earlier article, so it scores low however much background the two share."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    set_a, set_b = set(a.tolist()), set(b.tolist())
    head_a, head_b = set(a[:HEAD_SHINGLES].tolist()), set(b[:HEAD_SHINGLES].tolist())
    return min(len(head_a & set_b) / len(head_a), len(head_b & set_a) / len(head_b))


def encode_lead(lead: np.ndarray) -> str:
    return b2a_base64(lead.astype("<u2", copy=False).tobytes(), newline=False).decode("ascii")


def decode_lead(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<u2")
