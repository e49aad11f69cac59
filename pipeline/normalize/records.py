"""Raw article / comment events -> clean records with exactly the fields of schemas/README.md.

Pure functions (no Kafka, no state): the worker, the replay tool and the tests call the same code.
Ids are computed from the *raw* identity fields, the same way `newspipe ingest` keys the events,
so an article and its comments meet on one partition.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from newspipe_native import CommentBuilder

from pipeline import __version__
from pipeline.contracts import SCHEMA_VERSION
from pipeline.errors import Rejected
from pipeline.ids import article_id as make_article_id
from pipeline.ids import canonical_url, comment_id, short_hash
from pipeline.normalize.authors import clean_author
from pipeline.normalize.boilerplate import is_boilerplate
from pipeline.normalize.language import detect_language
from pipeline.normalize.text import normalize_text
from pipeline.normalize.times import parse_time, utc_now

STAGE = "normalize"

# Direct quotes: straight or curly double quotes, 3..600 chars, no paragraph break inside.
_QUOTE = re.compile(r"\"([^\"\n]{3,600}?)\"|“([^“”\n]{3,600}?)”")
# "@name" at the very start of a comment (Fox News / Disqus replies).
_LEADING_MENTION = re.compile(r"@([\w.\-]{1,64}?)[:,.!?]*(?=\s|$)")
_QUOTE_EDGE = "\"'“”‘’«» \n:-–—"
# Reply markers other comment systems put at the start of a comment (names up to 64 characters):
# "(In reply to: <their text> -- NAME)" and "(In reply to NAME)" (the quoted part is theirs);
_IN_REPLY_PAREN = re.compile(
    r"\(\s*in reply to\b:?\s*(?:(.{0,600})\s(?:--|—|–)\s*)?@?([^()\n]{1,64}?)\s*\)\s*",
    re.IGNORECASE | re.DOTALL,
)
# "In reply to NAME:" / "Replying to @name" (the marker line is not the commenter's text);
_REPLY_TO = re.compile(
    r"(?:in reply to|replying to)\b:?\s*(?:@([\w.\-]{1,64}?)[:,.]?(?=\s|$)"
    r"|([^\s:@][^\n:]{0,63}?)\s*(?::|\n|$))\s*",
    re.IGNORECASE,
)
# "NAME wrote:" followed by the quote: in double quotes, as "> " lines, or one paragraph.
_WROTE = re.compile(r"@?([\w.\-']+(?: [\w.\-']+){0,3}?),? wrote:\s*", re.IGNORECASE)
_WROTE_QUOTED = re.compile(r"\"([^\"]{1,2000})\"|“([^“”]{1,2000})”")
_QUOTE_LINES = re.compile(r"(?:^>[^\n]*(?:\n|$))+", re.MULTILINE)


def _reject_empty(what: str, field: str) -> Rejected:
    return Rejected("content.empty", f"{what} is empty after normalization", field=field,
                    stage=STAGE)  # fmt: skip


def _str_or_none(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def direct_quotes(text: str) -> list[str]:
    """Quoted speech in `text`, in order, without repeats."""
    if '"' not in text and "“" not in text:
        return []
    found: list[str] = []
    for m in _QUOTE.finditer(text):
        quote = (m.group(1) or m.group(2)).strip()
        if quote and quote not in found:
            found.append(quote)
    return found


def _notes(raw: dict[str, Any]) -> list[str]:
    """What the producer's extractor says it dropped or repaired (raw `notes`), normalized."""
    notes = raw.get("notes")
    if not notes:
        return []
    return [n for n in (normalize_text(str(v))[:512] for v in notes) if n]


def _paragraphs(body: str) -> list[str]:
    """Normalized body paragraphs minus page furniture ("rate this", "Page 1 of 2", ...)."""
    if not body:
        return []
    return [p for p in body.split("\n\n") if not is_boilerplate(p)]


# With `detect=False` the record's `language` is left to the caller, who finds the text to
# classify under this key and detects a whole batch at once (pipeline.core); it must pop it.
LANGUAGE_TEXT = "_language_text"


def normalize_article(
    raw: dict[str, Any],
    *,
    event_time: str | None = None,
    now: str | None = None,
    detect: bool = True,
) -> dict[str, Any]:
    """A clean article (schemas/README.md "clean article"); raises Rejected on bad content."""
    now = now or utc_now()
    source = str(raw.get("source") or "unknown")
    url = _str_or_none(raw.get("url"))
    source_id = _str_or_none(raw.get("source_id"))
    raw_title = raw.get("title")
    title = normalize_text(raw_title)
    standfirst = normalize_text(raw.get("standfirst")) or None
    raw_body = raw.get("body") or ""
    paragraphs = _paragraphs(normalize_text(raw_body))
    body = "\n\n".join(paragraphs)
    if not title and not body:
        raise _reject_empty("article (no title and no body)", "body" if raw_body else "title")
    if raw_body and not body and not standfirst:
        raise _reject_empty("article body (only boilerplate)", "body")
    try:
        aid = make_article_id(url, source, source_id, raw_title or title)
    except ValueError:
        raise Rejected("schema.missing_field", "article has no url, source id or title",
                       field="title", stage=STAGE) from None  # fmt: skip
    captions = [c for c in map(normalize_text, raw.get("captions") or []) if c]
    fact_boxes = []
    for box in raw.get("fact_boxes") or []:
        items = [i for i in map(normalize_text, box.get("items") or []) if i]
        box_title = normalize_text(box.get("title"))
        if items or box_title:
            fact_boxes.append({"title": box_title, "items": items})
    published_at = parse_time(raw.get("published_at"), "published_at", now)
    captured_at = parse_time(raw.get("captured_at"), "captured_at", now)
    pagination = raw.get("pagination")
    text = f"{standfirst}\n\n{body}" if standfirst and body else (body or standfirst or "")
    # content hash: title + body; a body-less item (AG News) hashes its standfirst instead, so
    # two items sharing a headline but not their text are not exact duplicates.
    hashed = body or standfirst or ""
    language = raw.get("language") or (detect_language(f"{title} {text}") if detect else None)
    record = {
        "schema_version": SCHEMA_VERSION,
        "article_id": aid,
        "canonical_url": canonical_url(url) if url else None,
        "source": source,
        "source_id": source_id,
        "title": title,
        "standfirst": standfirst,
        "body": body,
        "paragraphs": paragraphs,
        "captions": captions,
        "fact_boxes": fact_boxes,
        "quotes": direct_quotes(text),
        "pagination": dict(pagination) if pagination else None,
        "language": language,
        "word_count": len(text.split()),
        "content_hash": short_hash(f"{title}\n{hashed}"),
        "published_at": published_at,
        # the schema needs a time: last resort is when we processed it (published_at stays None)
        "event_time": published_at or captured_at or event_time or now,
        "processed_at": now,
        "pipeline_version": __version__,
        "revision": 1,
        "previous_content_hash": None,
        "duplicate_of": None,
        "cluster_id": None,
        "related_to": None,
        "story_id": None,
        "tags": [],
        "notes": _notes(raw),
    }
    if language is None:
        record[LANGUAGE_TEXT] = f"{title} {text}"
    return record


def _mentions(value: Any) -> list[str]:
    """Fox News gives a space-separated string (maybe empty), others a list: -> names, no "@"."""
    if not value:
        return []
    items = value.split() if isinstance(value, str) else [str(v) for v in value]
    out: list[str] = []
    for item in items:
        name = normalize_text(item).lstrip("@").rstrip(":,.")
        if name and name not in out:
            out.append(name)
    return out


# The cached helpers below keep only short keys (names, mention lists, titles), so a flood of
# huge fields cannot grow the caches past a few MB; longer values take the uncached path.
_CACHED_CHARS = 1024


@lru_cache(maxsize=4096)
def _cached_mentions(value: str | tuple[str, ...]) -> tuple[str, ...]:
    """`_mentions` of a string or of a list of strings (as a tuple), cached: a thread repeats
    the same few mentions."""
    return tuple(_mentions(value))


@lru_cache(maxsize=4096)
def _author(raw_author: str) -> str | None:
    """The clean author of a raw author string, cached: a thread repeats its commenters."""
    return clean_author(normalize_text(raw_author)) or None


def _own_text(text: str, quoted: str) -> str:
    """`text` without the quoted earlier comment (and the stray quote marks around it)."""
    if not quoted:
        return text
    at = text.find(quoted)
    if at < 0:
        return text
    rest = text[:at].rstrip(_QUOTE_EDGE) + "\n\n" + text[at + len(quoted) :].lstrip(_QUOTE_EDGE)
    return rest.strip()


def reply_marker(text: str) -> tuple[str, str] | None:
    """(name replied to, the commenter's own text) for a comment that starts with a reply
    marker other than "@name" (which stays in the text, see `normalize_comment`), or None."""
    first = text[:1]
    if first == "(":
        m = _IN_REPLY_PAREN.match(text)
        if m:
            return m.group(2).strip(), text[m.end() :].strip()
        return None
    if first in "IiRr":
        m = _REPLY_TO.match(text)
        if m:
            return (m.group(1) or m.group(2)).strip(), text[m.end() :].strip()
    if " wrote:" not in text[:80].lower():
        return None
    m = _WROTE.match(text)
    if not m:
        return None
    rest = text[m.end() :]
    quoted = _WROTE_QUOTED.match(rest)
    if quoted is None and rest.startswith(">"):
        quoted = _QUOTE_LINES.match(rest)
    if quoted is not None:
        own = rest[quoted.end() :].strip()
    elif "\n\n" in rest:  # the quote is the first paragraph, the reply the rest
        own = rest.split("\n\n", 1)[1].strip()
    else:
        return None  # "X wrote:" with nothing to tell the quote from the reply: not a marker
    return m.group(1), own


# An article's comments share its identity fields: its id is computed once (strings only, so a
# bad title fails as it does uncached). Failures are not cached.
_cached_article_id = lru_cache(maxsize=4096)(make_article_id)


def _comment_article_id(raw: dict[str, Any], source: str) -> str:
    if raw.get("article_id"):
        return str(raw["article_id"])
    url = _str_or_none(raw.get("article_url"))
    title = raw.get("article_title")
    if url or title:
        if title is None or (type(title) is str and len(title) <= _CACHED_CHARS):
            return _cached_article_id(url, source, None, title)
        return make_article_id(url, source, None, title)
    raise Rejected("schema.missing_field", "comment has no article_id, article_url or "
                   "article_title", field="article_id", stage=STAGE)  # fmt: skip


def _leading_mention(text: str) -> str | None:
    """The name of the "@name" a comment starts with, or None."""
    m = _LEADING_MENTION.match(text)
    return m.group(1) if m else None


# The compiled builder calls these (cached) Python parts of the reference itself.
_build_comment = CommentBuilder(
    SCHEMA_VERSION,
    __version__,
    _comment_article_id,
    _cached_article_id,
    _author,
    _cached_mentions,
    _leading_mention,
    parse_time,
    LANGUAGE_TEXT,
).build


def normalize_comment(
    raw: dict[str, Any],
    *,
    event_time: str | None = None,
    now: str | None = None,
    detect: bool = True,
) -> dict[str, Any]:
    """A clean comment (schemas/README.md "clean comment"); removed comments keep text "".

    The common comment (usual field types, a text with no rare artefact and no reply marker, no
    quote, not removed, no notes) is built by compiled code (native/src/records.rs), which
    declines any other; those take the reference, `_py_normalize_comment`."""
    now = now or utc_now()
    record = _build_comment(raw, event_time, now)
    if record is None:
        return _py_normalize_comment(raw, event_time=event_time, now=now, detect=detect)
    if detect and record["language"] is None:
        language = detect_language(record[LANGUAGE_TEXT])
        record["language"] = language
        if language is not None:
            del record[LANGUAGE_TEXT]
    return record


def _py_normalize_comment(
    raw: dict[str, Any],
    *,
    event_time: str | None = None,
    now: str | None = None,
    detect: bool = True,
) -> dict[str, Any]:
    """`normalize_comment` in Python: the reference for all comments, the path for the
    unusual ones."""
    now = now or utc_now()
    source = str(raw.get("source") or "unknown")
    aid = _comment_article_id(raw, source)
    removed = bool(raw.get("removed"))
    text = "" if removed else normalize_text(raw.get("text"))
    if not text and not removed:
        raise _reject_empty("comment text", "text")
    raw_author = raw.get("author")
    if not raw_author:
        author = None
    elif type(raw_author) is str and len(raw_author) <= _CACHED_CHARS:
        author = _author(raw_author)
    else:
        author = clean_author(normalize_text(raw_author)) or None
    number = raw.get("number")
    source_comment_id = _str_or_none(raw.get("source_comment_id"))
    local_id = source_comment_id or (None if number is None else str(number))
    if local_id is None:
        local_id = short_hash(f"{author or ''}\x1f{text}")
    quoted = _str_or_none(raw.get("quotes"))
    own = _own_text(text, normalize_text(raw.get("quoted_text"))) if quoted else text
    raw_mentions = raw.get("mentions")
    if not raw_mentions:
        mentions = []
    elif type(raw_mentions) is str and len(raw_mentions) <= _CACHED_CHARS:
        mentions = list(_cached_mentions(raw_mentions))
    elif (
        type(raw_mentions) is list
        and len(raw_mentions) <= 16
        and all(type(m) is str and len(m) <= 128 for m in raw_mentions)
    ):
        mentions = list(_cached_mentions(tuple(raw_mentions)))
    else:
        mentions = _mentions(raw_mentions)
    reply_to = None
    marker = reply_marker(text) if text else None
    if marker is not None and marker[1]:
        reply_to, marked_own = marker
        if not quoted:
            own = marked_own
        if reply_to not in mentions:
            mentions.insert(0, reply_to)
    elif text.startswith("@"):
        m = _LEADING_MENTION.match(text)
        if m:
            reply_to = m.group(1)
            if reply_to not in mentions:
                mentions.insert(0, reply_to)
    posted_at = parse_time(raw.get("posted_at"), "posted_at", now)
    captured_at = parse_time(raw.get("captured_at"), "captured_at", now)
    language = raw.get("language") or (None if own else "und")
    if language is None and detect:
        language = detect_language(own)
    record = {
        "schema_version": SCHEMA_VERSION,
        "comment_id": comment_id(aid, local_id),
        "article_id": aid,
        "source": source,
        "source_comment_id": source_comment_id,
        "number": number,
        "author": author,
        "text": text,
        "own_text": own,
        "quotes": comment_id(aid, quoted) if quoted else None,
        "reply_to_author": reply_to,
        "mentions": mentions,
        "removed": removed,
        "language": language,
        "word_count": len(text.split()),
        "content_hash": short_hash(text),
        "posted_at": posted_at,
        "event_time": posted_at or captured_at or event_time or now,
        "processed_at": now,
        "pipeline_version": __version__,
        "spam_suspect": False,
        "spam_cluster_size": 1,
        "tags": [],
        "notes": _notes(raw),
        # 1.2: set by the core's moderation step (pipeline.moderation.policy); approved until then
        "moderation": {"status": "approved", "toxicity": 0.0, "flags": []},
    }
    if language is None:
        record[LANGUAGE_TEXT] = own
    return record
