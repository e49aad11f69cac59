"""HTML pages: main text and metadata by trafilatura, the rest by a few lxml look-ups.

trafilatura finds the article text well but returns comments as one flat string (no authors,
times or boundaries), so comment sections are read by a small parser of common markup instead:
elements with class token `comment` (or `id="comment-N"`, or schema.org `Comment` microdata),
their `*author*` element, `<time datetime>` and `comment-body`/`-content`/`-text` element.
"""

from __future__ import annotations

import re
from typing import Any

import lxml.html
import trafilatura

from pipeline.contracts import SCHEMA_VERSION
from pipeline.extract.base import Page, register_format
from pipeline.extract.quotes import mark_quotes
from pipeline.ids import article_id
from pipeline.normalize.authors import clean_author
from pipeline.normalize.times import parse_found_time

_LOOKS_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body|article|div|p)\b", re.IGNORECASE)
_PUBLISHED = (
    "//meta[@property='article:published_time']/@content",
    "//meta[@name='pubdate' or @name='publishdate' or @name='date']/@content",
    "//meta[@itemprop='datePublished']/@content",
    "//article//time[@datetime]/@datetime",
)
_CANONICAL = ("//link[@rel='canonical']/@href", "//meta[@property='og:url']/@content")
_COMMENT_ITEMS = (
    "//*[contains(concat(' ', normalize-space(@class), ' '), ' comment ')]"
    " | //*[starts-with(@id, 'comment-')]"
    " | //*[contains(@itemtype, 'schema.org/Comment')]"
)
_COMMENT_TEXT = (
    ".//*[contains(@class, 'comment-body') or contains(@class, 'comment-content')"
    " or contains(@class, 'comment-text') or @itemprop='text']"
)
_COMMENT_AUTHOR = ".//*[contains(@class, 'author') or @itemprop='author']"
# inside the author block, the name itself when the markup says which element it is (WordPress
# `<cite class="fn">` / `<b class="fn">`, schema.org `itemprop="name"`)
_AUTHOR_NAME = (
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' fn ')]",
    ".//*[@itemprop='name']",
)
# furniture inside an author block: WordPress' "says:", reply/report links, screen-reader text
_AUTHOR_FURNITURE = (
    ".//*[contains(concat(' ', normalize-space(@class), ' '), ' says ')"
    " or contains(@class, 'reply') or contains(@class, 'report')"
    " or contains(@class, 'screen-reader-text')] | .//img | .//script | .//style"
)
_COMMENT_TIME = (
    ".//time/@datetime | .//*[@itemprop='dateCreated']/@content",
    # older WordPress themes print the date only as the permalink's text
    ".//*[contains(@class, 'commentmetadata') or contains(@class, 'comment-metadata')]/a[1]",
)


def _first(tree: Any, xpaths: tuple[str, ...] | str) -> str | None:
    for xpath in (xpaths,) if isinstance(xpaths, str) else xpaths:
        found = tree.xpath(xpath)
        for value in found:
            text = value if isinstance(value, str) else value.text_content()
            if text and text.strip():
                return text.strip()
    return None


def _paragraphs_of(element: Any) -> str:
    paragraphs = element.xpath(".//p")
    parts = [p.text_content() for p in paragraphs] if paragraphs else [element.text_content()]
    return "\n\n".join(" ".join(p.split()) for p in parts if p.strip())


def _author(item: Any) -> str | None:
    """The comment's author name: the named element of its author block, else the block's text
    without its furniture, then `clean_author` for what themes print as plain text."""
    blocks = item.xpath(_COMMENT_AUTHOR)
    if not blocks:
        return None
    block = blocks[0]
    name = _first(block, _AUTHOR_NAME)
    if name is None:
        block = lxml.html.fromstring(lxml.html.tostring(block))  # a copy: the page stays whole
        for furniture in block.xpath(_AUTHOR_FURNITURE):
            if furniture.getparent() is not None:
                furniture.drop_tree()
        name = block.text_content()
    return clean_author(" ".join(name.split())) or None


def _comments(tree: Any) -> list[dict[str, Any]]:
    """Comments of a page's comment section, in page order (nested items count once each)."""
    comments: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for position, item in enumerate(tree.xpath(_COMMENT_ITEMS), start=1):
        body = item.xpath(_COMMENT_TEXT)
        if not body or body[0] in seen:
            continue
        seen.add(body[0])
        comment: dict[str, Any] = {"text": _paragraphs_of(body[0])}
        digits = re.search(r"\d+", item.get("id") or "")
        comment["source_comment_id"] = digits.group(0) if digits else str(position)
        author = _author(item)
        if author:
            comment["author"] = author
        posted, note = parse_found_time(_first(item, _COMMENT_TIME), "posted_at")
        if posted:
            comment["posted_at"] = posted
        if note:
            comment["notes"] = [note]
        comments.append(comment)
    return comments


def _body(text: str, title: str | None) -> str:
    """trafilatura's lines are paragraphs: blank-line separated, the repeated headline dropped."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    if lines and title and lines[0] == title.strip():
        lines.pop(0)
    return "\n\n".join(lines)


def _parse(html: str, url: str | None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    tree = lxml.html.fromstring(html)
    doc = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True
    )
    meta = doc.as_dict() if doc is not None and hasattr(doc, "as_dict") else dict(doc or {})
    title = meta.get("title") or _first(tree, ("//h1", "//title"))
    canonical = _first(tree, _CANONICAL)
    article: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "source": "html"}
    page_url = canonical or url or meta.get("url")
    if page_url:
        article["url"] = page_url
    if title:
        article["title"] = title
    if meta.get("description"):
        article["standfirst"] = meta["description"]
    article["body"] = _body(meta.get("text") or "", title)
    figcaptions = (" ".join(f.text_content().split()) for f in tree.xpath("//figcaption"))
    captions = [c for c in figcaptions if c]
    if captions:
        article["captions"] = captions
    # a page prints its date however it likes: read it leniently here, at extraction, and drop
    # (with a note) what cannot be read, so a date never costs the article (the event's own
    # `published_at`, sent by a producer, keeps the strict rule of normalization)
    published, note = parse_found_time(_first(tree, _PUBLISHED) or meta.get("date"), "published_at")
    if published:
        article["published_at"] = published
    if note:
        article["notes"] = [note]
    if meta.get("language") or tree.get("lang"):
        article["language"] = (meta.get("language") or tree.get("lang") or "").split("-")[0]
    return article, _comments(tree)


def fill_from_html(raw: dict[str, Any]) -> dict[str, Any]:
    """A raw article event that came as a whole page (`html`, no `body`) with title, body and
    the rest filled in by extraction; the event's own fields win. Others come back unchanged.

    Extraction runs before normalization (the core calls this), so `pipeline.normalize` never
    needs the extractor."""
    if not raw.get("html") or raw.get("body"):
        return raw
    extracted = extract_html(raw["html"], raw.get("url"))
    merged = dict(extracted)
    merged.update({k: v for k, v in raw.items() if v not in (None, "", [])})
    merged["body"] = extracted.get("body", "")
    notes = [*(extracted.get("notes") or []), *(raw.get("notes") or [])]
    if notes:
        merged["notes"] = notes
    return merged


def extract_html(html: str, url: str | None = None) -> dict[str, Any]:
    """A raw article event from a whole HTML page (the worker calls this for events with `html`)."""
    article, _ = _parse(html, url)
    return article


class Html:
    """HTML documents, recognised by their markup (not the file name)."""

    name = "html"

    def detect(self, text: str) -> bool:
        head = text.lstrip()[:2000]
        return head.startswith("<") and _LOOKS_HTML.search(head) is not None

    def extract(self, text: str, url: str | None, source: str | None) -> Page:
        article, comments = _parse(text, url)
        if source:
            article["source"] = source
        mark_quotes(comments)
        article["comment_count"] = len(comments)
        page_url = article.get("url")
        for comment in comments:
            comment.update(schema_version=SCHEMA_VERSION, source=article["source"])
            if page_url:
                comment["article_url"] = page_url
                comment["article_id"] = article_id(page_url)
            else:
                comment["article_title"] = article.get("title", "")
        return Page(article=article, comments=comments)


register_format(Html())
