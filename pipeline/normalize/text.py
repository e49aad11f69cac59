"""`normalize_text`: one canonical form for every text field, cheap on the common (ASCII) path.

Order matters: entity remnants are decoded first (they can hide non-ASCII, e.g. `#151;` is an em
dash), ftfy runs only when the decoded text is non-ASCII *and* looks like mojibake (ftfy on every
text would cost several times the rest), then markup and line escapes go,
invisible characters are removed with one `str.translate`, NFC, and whitespace is collapsed last.
Curly quotes and dashes are kept: folding them to ASCII loses meaning and changes quotes in body.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import ftfy
from ftfy.badness import is_bad
from newspipe_native import normalize_plain

# ftfy only repairs encoding here: the other steps are ours, and quote uncurling / width folding
# would undo the "no ASCII folding" rule.
_FTFY = ftfy.TextFixerConfig(
    unescape_html=False,
    uncurl_quotes=False,
    fix_character_width=False,
    fix_latin_ligatures=False,
    fix_line_breaks=False,
    normalization=None,
    explain=False,
)

# Entities that lost their "&" (AG News: "it #39;s", "#36;10 million", "AT amp;T"): AG News
# replaced "&" with a space, so one space directly before a remnant is that lost "&".
# These two patterns are the definition (and the tests' reference); `_sub_remnants` applies
# them anchored on the remnant itself, where the leading ` ?` made the regex engine try and fail
# at every character of a text.
_NUMERIC_REMNANT = re.compile(r" ?(?<!&)#(x[0-9a-fA-F]{1,6}|[0-9]{1,7});")
_NAMED_REMNANT = re.compile(r" ?(?<![&\w;])(quot|amp|lt|gt|apos|nbsp|mdash|ndash|hellip);")


class _Remnant(NamedTuple):
    """One kind of remnant as `_sub_remnants` finds it."""

    core: re.Pattern[str]  # the remnant itself, its name or number as group 1
    refused: Callable[[str], Any]  # the characters the lookbehind refuses right before it
    prefix: str  # what goes before group 1 in the restored entity


_NUMERIC = _Remnant(
    re.compile(r"#(x[0-9a-fA-F]{1,6}|[0-9]{1,7});"), re.compile("&").fullmatch, "&#"
)
_NAMED = _Remnant(
    re.compile(r"(quot|amp|lt|gt|apos|nbsp|mdash|ndash|hellip);"),
    re.compile(r"[&\w;]").fullmatch,
    "&",
)

# Markup that survives unescaping (AG News carries `&lt;A HREF=...&gt;`). Only real tag names are
# removed, so Reuters ticker symbols like `<TXN.N>` stay.
_BLOCK_TAGS = "p|div|br|li|ul|ol|tr|td|th|table|h[1-6]|blockquote|hr|section|article|header|footer"
_INLINE_TAGS = "a|b|i|u|s|em|strong|font|span|img|sup|sub|small|big|abbr|cite|code|q|tt|center"
_BLOCK_TAG = re.compile(rf"</?(?:{_BLOCK_TAGS})(?:\s[^<>]*)?/?>", re.IGNORECASE)
_INLINE_TAG = re.compile(rf"</?(?:{_INLINE_TAGS})(?:\s[^<>]*)?/?>|<!--.*?-->", re.IGNORECASE)

# Active markup never survives, whatever it is nested in or however often it was entity-encoded
# (decoding runs first, to a fixed point): script-like elements go with their content, elements
# that load or run something go as tags, and so does any tag carrying an event handler or a
# script URL. Text that only looks like markup (`a < b`, `<3`, `<TXN.N>`) stays.
_ACTIVE_BLOCK = re.compile(
    # an unclosed script or style runs to the end of the text, as a browser reads it
    r"<(script|style|template|noscript|xml|textarea|title)\b[^>]*>.*?(?:</\1\s*>|$)"
    r"|<(iframe|object|svg|math)\b[^>]*>.*?</\2\s*>",
    re.IGNORECASE | re.DOTALL,
)
# In a text that held active markup nothing tag-shaped is trusted: any other element goes too
# (MathML/SVG wrappers of a payload), and so does a `<` opening a name that no `>` closes (what
# removal leaves of a split tag, "<scr<script>...</script>ipt>").
_ANY_TAG = re.compile(r"</?[a-z][a-z0-9-]*(?:[\s/][^<>]*)?>", re.IGNORECASE)
_DANGLING_OPEN = re.compile(r"<(?=/?[a-z][^<>]*(?:<|$))", re.IGNORECASE)
_ACTIVE_TAGS = (
    "script|style|template|noscript|xml|iframe|frame|frameset|object|embed|applet|svg|math|form|"
    "input|button|textarea|select|option|link|meta|base|video|audio|source|track|marquee|html|"
    "head|body|title|details|dialog|isindex|keygen|image|animate|set|use|foreignobject"
)
_ACTIVE_TAG = re.compile(rf"</?(?:{_ACTIVE_TAGS})\b[^<>]*>?", re.IGNORECASE)
_HANDLER_TAG = re.compile(
    r"<[a-z][\w:-]*[\s/][^<>]*?(?:\bon[a-z]+\s*=|(?:java|vb)script\s*:|data\s*:\s*text/html)[^<>]*>?",
    re.IGNORECASE,
)
_SCRIPT_URL = re.compile(r"\b(?:java|vb|live)script\s*:", re.IGNORECASE)

# `\` is a line escape in AG News / RSS dumps ("A second\team"); `\\` a paragraph break, `\$`
# an escaped dollar. `\_` is kept: it is the shrug emoticon in comments, not an escape.
_PARA_ESCAPE = re.compile(r"\\{2,}")
_LINE_ESCAPE = re.compile(r"\\(?![_$])")

# Cheap check before ftfy: C1 controls, the classic UTF-8-as-cp1252/latin-1 lead bytes, U+FFFD.
_MOJIBAKE_HINT = re.compile("[\x80-\x9f\ufffd]|[ÂÃÅÐÑâ][\x80-\xbf\u0152-\u0178\u2018-\u203a\u20ac]")

_ASCII_CTRL = re.compile("[\x00-\x08\x0b-\x1f\x7f]")


def _removal_table() -> dict[int, str | None]:
    """Invisible characters to delete and odd whitespace to map, as one translate table."""
    table: dict[int, str | None] = {}
    controls = [*range(0x00, 0x09), *range(0x0E, 0x1C), 0x7F, *range(0x80, 0x85)]
    controls += range(0x86, 0xA0)
    for cp in controls:
        table[cp] = None  # C0/C1 control characters (not \t \n \v \f \r, not NEL)
    for cp in (0x09, 0x1C, 0x1D, 0x1E, 0x1F):
        table[cp] = " "
    for cp in (0x0B, 0x0C, 0x0D, 0x85, 0x2028):
        table[cp] = "\n"
    table[0x2029] = "\n\n"
    for cp in (0x00AD, 0x034F, 0x061C, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x180E, 0x200B, 0x200C,
               0x200D, 0x200E, 0x200F, 0x2060, 0x2061, 0x2062, 0x2063, 0x2064, 0x206A, 0x206B,
               0x206C, 0x206D, 0x206E, 0x206F, 0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB):  # fmt: skip
        table[cp] = None  # zero-width and invisible format characters
    for cp in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]:
        table[cp] = None  # bidi embeddings/overrides/isolates (invisible, "Trojan source")
    for cp in range(0xD800, 0xE000):
        table[cp] = None  # lone surrogates cannot be encoded as UTF-8 JSON
    return table


_TABLE = _removal_table()
_ASCII_TABLE = {k: v for k, v in _TABLE.items() if k < 0x80}


def _unrefused(s: str, kind: _Remnant) -> Iterator[tuple[re.Match[str], int]]:
    """Each remnant of `kind` the pattern's lookbehind lets through, with where its match
    starts: a space right before it is part of the match (the regex's greedy ` ?`). No
    remnant's tail starts another one, so skipping a refused one cannot skip a match."""
    for m in kind.core.finditer(s):
        start = m.start()
        before = s[start - 1] if start else ""
        if not before or not kind.refused(before):
            yield m, start - 1 if before == " " else start


def _sub_remnants(s: str, kind: _Remnant) -> str:
    """`_NUMERIC_REMNANT.sub(r"&#\1;", s)` or `_NAMED_REMNANT.sub(r"&\1;", s)` (by `kind`)."""
    out: list[str] = []
    last = 0
    for m, start in _unrefused(s, kind):
        out += (s[last : max(start, last)], kind.prefix, m.group(1), ";")
        last = m.end()
    if not out:
        return s
    out.append(s[last:])
    return "".join(out)


def _has_remnant(s: str, kind: _Remnant) -> bool:
    """Whether `_NUMERIC_REMNANT` or `_NAMED_REMNANT` (by `kind`) finds anything in `s`."""
    return next(_unrefused(s, kind), None) is not None


def _decode_entities(s: str) -> str:
    """Decode entities and their `&`-less remnants until nothing changes (double encodings)."""
    while True:
        fixed = _sub_remnants(s, _NUMERIC) if "#" in s else s
        fixed = _sub_remnants(fixed, _NAMED) if ";" in fixed else fixed
        if "&" in fixed:
            fixed = html.unescape(fixed)
        if fixed == s:
            return s
        s = fixed


def _collapse_whitespace(s: str) -> str:
    """Single spaces, single newlines for line breaks, one blank line between paragraphs."""
    if "\n" not in s:
        return " ".join(s.split())
    out: list[str] = []
    blank = False
    for line in s.split("\n"):
        line = " ".join(line.split())
        if not line:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        out.append(line)
    return "\n".join(out)


def _one_pass(s: str) -> str:
    if "&" in s or ";" in s:
        s = _decode_entities(s)
    ascii_only = s.isascii()
    if not ascii_only and _MOJIBAKE_HINT.search(s) and is_bad(s):
        s = ftfy.fix_text(s, _FTFY)
        ascii_only = s.isascii()
    if "<" in s:
        inert = _ACTIVE_TAG.sub("", _HANDLER_TAG.sub("", _ACTIVE_BLOCK.sub("", s)))
        if inert != s:
            inert = _DANGLING_OPEN.sub("", _ANY_TAG.sub("", inert))
        s = _INLINE_TAG.sub("", _BLOCK_TAG.sub("\n\n", inert))
    if ":" in s and _SCRIPT_URL.search(s):
        s = _SCRIPT_URL.sub("", s)
    if "\\" in s:
        s = _LINE_ESCAPE.sub(" ", _PARA_ESCAPE.sub("\n\n", s.replace("\\$", "$")))
    if ascii_only:
        if not s.isprintable() and ("\r" in s or _ASCII_CTRL.search(s)):
            s = s.replace("\r\n", "\n").translate(_ASCII_TABLE)
    else:
        s = s.replace("\r\n", "\n").translate(_TABLE)
        if not unicodedata.is_normalized("NFC", s):
            s = unicodedata.normalize("NFC", s)
    return _collapse_whitespace(s)


def _may_rewrite(s: str) -> bool:
    """Could another pass change `s`? Plain `in` tests first: a regex scan costs 10x more."""
    if "&" in s or "<" in s or "\\" in s:
        return True
    if ":" in s and _SCRIPT_URL.search(s):
        return True
    if ";" in s and (_has_remnant(s, _NUMERIC) or _has_remnant(s, _NAMED)):
        return True
    return not s.isascii() and _MOJIBAKE_HINT.search(s) is not None


def normalize_text(s: str | None) -> str:
    """The canonical form of a text field; idempotent (property-tested), "" for None.

    Most texts need only invisible-character removal and whitespace collapsing, which compiled
    code does (native/src/text.rs); it declines any text a rarer pass might change, and those
    take the reference path, `_py_normalize_text`."""
    if not s:
        return ""
    out = normalize_plain(s)
    return _py_normalize_text(s) if out is None else out


def _py_normalize_text(s: str | None) -> str:
    """`normalize_text` in Python: the reference for all texts, the path for the rare ones."""
    if not s:
        return ""
    out = _one_pass(s)
    # Removing markup or an escape can reveal a new entity ("&am<b>p;"): rerun only in that case.
    for _ in range(4):
        if not _may_rewrite(out):
            break
        again = _one_pass(out)
        if again == out:
            break
        out = again
    return out
