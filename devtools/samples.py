"""Clean-record stand-ins built from the shared real texts, for dedup tests and the benchmark.

The dedup core consumes clean records (see schemas/README.md). These helpers produce just the
fields dedup reads (ids, text, content_hash, author, event_time, word_count) with a minimal
whitespace normalization, so dedup can be tested and measured on its own, independent of the
normalization stage's cost and progress.
"""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.ids import article_id, comment_id, short_hash

# In the past on purpose: the deduper ignores event times beyond wall clock + 1 h for its watermark.
BASE_TIME = datetime(2016, 5, 1, 10, 0, tzinfo=UTC)


_TAG = re.compile(r"<[^>]*>")
_NUM_ENTITY = re.compile(r"#(\d+);")


def strip_markup(text: str) -> str:
    """What normalization does to AG News' artefacts: backslash escapes, '#36;' remnants,
    entities and tags go. Shared markup boilerplate (a '-The Washington Post' font tag) would
    otherwise make unrelated short items look ~30% similar to the near-dup check."""
    text = _NUM_ENTITY.sub(lambda m: chr(int(m.group(1))), text.replace("\\", " "))
    return _TAG.sub(" ", html.unescape(text))


def iso(offset_s: float = 0.0) -> str:
    """An event_time string `offset_s` seconds after BASE_TIME."""
    return (BASE_TIME + timedelta(seconds=offset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_article(aid: str, title: str, body: str, *, offset_s: float = 0.0,
                  standfirst: str | None = None) -> dict[str, Any]:  # fmt: skip
    """A clean article as dedup sees it; content_hash over whitespace-normalized title + body."""
    title = " ".join(strip_markup(title).split())
    body = strip_markup(body)
    body_norm = "\n\n".join(" ".join(p.split()) for p in body.split("\n\n") if p.strip())
    return {
        "article_id": aid,
        "title": title,
        "standfirst": standfirst,
        "body": body,
        "content_hash": short_hash(title + "\n" + body_norm),
        "event_time": iso(offset_s),
    }


def clean_comment(raw: dict[str, Any], *, offset_s: float = 0.0) -> dict[str, Any]:
    """A clean comment from a raw comment event (devtools.datasets.fox_comments shape)."""
    aid = raw.get("article_id") or article_id(source=raw["source"], title=raw["article_title"])
    text = " ".join((raw.get("text") or "").split())
    return {
        "comment_id": comment_id(aid, str(raw["source_comment_id"])),
        "article_id": aid,
        "author": raw.get("author"),
        "text": text,
        "removed": bool(raw.get("removed", False)),
        "word_count": len(text.split()),
        "content_hash": short_hash(text),
        "event_time": iso(offset_s),
    }


# Short comments (3-7 words) in 16 languages, written for the language tests and
# devtools.language_eval (not from any data set).
SHORT_TEXTS = {
    "en": [
        "The mayor resigned after the vote.",
        "I totally agree with this comment.",
        "What a terrible decision by the court",
    ],
    "de": [
        "Die Regierung hat heute zugestimmt.",
        "Das finde ich wirklich gut so.",
        "Warum schreibt niemand über die Kosten?",
    ],
    "fr": [
        "Le gouvernement a perdu le vote hier.",
        "Je suis tout à fait d'accord.",
        "Quelle honte pour notre pays !",
    ],
    "es": [
        "El presidente visitó la ciudad ayer.",
        "Estoy totalmente de acuerdo contigo.",
        "¿Por qué nadie habla de esto?",
    ],
    "it": [
        "Il governo ha approvato la legge.",
        "Sono completamente d'accordo con te.",
        "Che vergogna per tutti noi!",
    ],
    "pt": [
        "O governo aprovou a nova lei ontem.",
        "Concordo plenamente com você.",
        "Que vergonha para o nosso país!",
    ],
    "nl": [
        "De regering heeft het plan goedgekeurd.",
        "Ik ben het helemaal met je eens.",
        "Wat een schande voor ons land!",
    ],
    "pl": [
        "Rząd przyjął nową ustawę wczoraj.",
        "Całkowicie się z tobą zgadzam.",
        "Co za wstyd dla naszego kraju!",
    ],
    "sv": [
        "Regeringen godkände lagen i går.",
        "Jag håller helt med dig.",
        "Vilken skam för vårt land!",
    ],
    "da": [
        "Regeringen vedtog loven i går.",
        "Jeg er helt enig med dig.",
        "Hvilken skam for vores land!",
    ],
    "tr": [
        "Hükümet yeni yasayı dün onayladı.",
        "Sana tamamen katılıyorum.",
        "Ülkemiz için ne büyük bir utanç!",
    ],
    "ru": [
        "Правительство вчера одобрило закон.",
        "Я полностью с вами согласен.",
        "Какой позор для нашей страны!",
    ],
    "ar": ["وافقت الحكومة على القانون أمس.", "أنا أتفق معك تماما.", "يا له من عار على بلدنا!"],
    "ja": [
        "政府は昨日新しい法律を承認した。",
        "私は完全に同意します。",
        "我が国にとって何という恥だ！",
    ],
    "zh": ["政府昨天批准了新法律。", "我完全同意你的看法。", "这对我们国家来说真是耻辱！"],
    "el": [
        "Η κυβέρνηση ενέκρινε τον νόμο χθες.",
        "Συμφωνώ απόλυτα μαζί σου.",
        "Τι ντροπή για τη χώρα μας!",
    ],
}
