"""Stable ids: the same thing gets the same id on every worker, every run, every replay.

Article ids derive from the canonical URL (so a re-scrape with tracking parameters is the same
article); a source without URLs (AG News) falls back to source + source id, then to the title.
Raw events are keyed by article id, so copies of an article and all its comments meet on one
partition, where their dedup state lives.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import xxhash

TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "ocid",
        "cmpid",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "at_medium",
        "at_campaign",
        "at_custom1",
        "at_custom2",
        "at_custom3",
        "at_custom4",
        "_ga",
        "ref_src",
        "share",
        "smid",
        "s_cid",
    }
)
TRACKING_PREFIXES = ("utm_", "at_", "ns_", "mc_", "pk_", "hsa_")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def canonical_url(url: str) -> str:
    """Lowercase scheme and host; no default port, fragment or tracking parameters; sorted query.

    Cached: an article's comments all carry its URL, and parsing it is most of an id's cost
    (URLs longer than any real one are not kept, so the cache stays small)."""
    if len(url) <= _CACHED_URL_CHARS:
        return _cached_canonical_url(url)
    return _py_canonical_url(url)


_CACHED_URL_CHARS = 2048


def _py_canonical_url(url: str) -> str:
    """`canonical_url` without the cache: the reference."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port is not None and str(parts.port) != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{parts.port}"
    path = re.sub(r"/{2,}", "/", parts.path) or "/"
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if k.lower() not in TRACKING_PARAMS and not k.lower().startswith(TRACKING_PREFIXES)
    )
    return urlunsplit((scheme, host, path, urlencode(query), ""))


_cached_canonical_url = lru_cache(maxsize=4096)(_py_canonical_url)


def short_hash(text: str) -> str:
    """A 64-bit xxhash as 16 hex chars: stable across processes (unlike hash())."""
    return xxhash.xxh3_64_hexdigest(text.encode("utf-8"))


def article_id(
    url: str | None = None,
    source: str | None = None,
    source_id: str | None = None,
    title: str | None = None,
) -> str:
    """Article id from the best identity the event carries: URL, else source id, else title."""
    if url:
        return "a-" + short_hash(canonical_url(url))
    if source and source_id:
        return "a-" + short_hash(f"{source}\x1f{source_id}")
    if title:
        return "a-" + short_hash(f"{source or ''}\x1ftitle\x1f{' '.join(title.lower().split())}")
    raise ValueError("an article needs a url, a source id or a title to get an id")


def comment_id(article: str, source_comment_id: str) -> str:
    """Comment id from its article id and the source's own comment id (or number)."""
    return "c-" + short_hash(f"{article}\x1f{source_comment_id}")
