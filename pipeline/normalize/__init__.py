"""Text normalization and raw -> clean records (a pure core: no Kafka, no Faust)."""

from pipeline.normalize.boilerplate import is_boilerplate
from pipeline.normalize.language import detect_language
from pipeline.normalize.records import direct_quotes, normalize_article, normalize_comment
from pipeline.normalize.text import normalize_text
from pipeline.normalize.times import parse_found_time, parse_time, utc_now

__all__ = [
    "detect_language",
    "direct_quotes",
    "is_boilerplate",
    "normalize_article",
    "normalize_comment",
    "normalize_text",
    "parse_found_time",
    "parse_time",
    "utc_now",
]
