"""Clean text fields are plain text: no tags, no script URLs, no event handlers, however the
markup was hidden (case, nesting, entities encoded twice), while text that only looks like markup
survives. Vectors from common XSS filter-evasion lists, in every text field a reader sees."""

from __future__ import annotations

import re

import pytest

from pipeline.normalize import normalize_article, normalize_comment
from pipeline.normalize.text import normalize_text

NOW = "2026-11-26T10:00:00Z"
VECTORS = [
    "&lt;script&gt;alert(1)&lt;/script&gt;",
    "<script>alert(1)</script>",
    "<ScRiPt SRC=//evil.example/x.js></sCrIpT>",
    "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;",  # encoded twice
    "&#60;script&#62;alert(1)&#60;/script&#62;",
    "<scr<script>ipt>alert(1)</script>",
    "<<script>script>alert(1)<</script>/script>",
    "<img src=x onerror=alert(1)>",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<img/src=x/onerror=alert(1)>",
    "<svg/onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    "<body onload=alert(1)>",
    '<iframe src="javascript:alert(1)"></iframe>',
    '<a href="javascript:alert(1)">click</a>',
    '<a href="&#106;avascript:alert(1)">click</a>',
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<x onmouseover=alert(1)>hover me",
    "<details open ontoggle=alert(1)>",
    '<object data="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="></object>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    "<style>@import 'javascript:alert(1)';</style>",
    "<input autofocus onfocus=alert(1)>",
    "javascript:alert(document.cookie)",
    "JaVaScRiPt:alert(1)",
]
ACTIVE = re.compile(
    r"<\s*/?\s*[a-z][\w:-]*[\s/>]|\bon[a-z]+\s*=|(?:java|vb)script\s*:", re.IGNORECASE
)


@pytest.mark.parametrize("vector", VECTORS)
def test_no_active_markup_survives_normalization(vector: str) -> None:
    out = normalize_text(f"Before {vector} after")
    assert not ACTIVE.search(out), out
    assert normalize_text(out) == out  # still idempotent


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("a < b and c > d", "a < b and c > d"),
        ("I <3 this team", "I <3 this team"),
        ("R&amp;D spending", "R&D spending"),
        ('He said "no" twice', 'He said "no" twice'),
        ("Shares of <TXN.N> rose", "Shares of <TXN.N> rose"),
        ("Kick-off at 10:30, see https://example.com/a?x=1&amp;y=2",
         "Kick-off at 10:30, see https://example.com/a?x=1&y=2"),
        ("Tips: use a script: it helps", "Tips: use a script: it helps"),
    ],
)  # fmt: skip
def test_text_that_only_looks_like_markup_is_kept(text: str, kept: str) -> None:
    assert normalize_text(text) == kept


@pytest.mark.parametrize("vector", VECTORS[:12])
def test_titles_captions_comments_and_authors_come_out_plain(vector: str) -> None:
    article = normalize_article(
        {
            "schema_version": "1.0", "source": "t", "url": "https://example.com/a",
            "title": f"Storm {vector} hits coast", "standfirst": f"Summary {vector}",
            "body": f"First paragraph {vector}.\n\nSecond paragraph.",
            "captions": [f"Photo {vector}"], "author": f"Jane {vector} Doe",
        },
        now=NOW,
    )  # fmt: skip
    comment = normalize_comment(
        {
            "schema_version": "1.0", "source": "t", "article_url": "https://example.com/a",
            "source_comment_id": "1", "author": f"troll{vector}",
            "text": f"Look {vector} at this",
        },
        now=NOW,
    )  # fmt: skip
    texts = [article["title"], article.get("standfirst") or "", article["body"],
             *article.get("captions", []), str(article.get("author") or ""),
             comment["text"], comment.get("own_text") or "",
             comment.get("author") or ""]  # fmt: skip
    for text in texts:
        assert not ACTIVE.search(text), text
    assert article["title"].startswith("Storm") and article["title"].endswith("hits coast")
