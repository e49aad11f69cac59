"""Page extraction: a captured page (text or HTML) -> one raw article event + raw comment events.

Pure (no Kafka). Formats and sources register themselves; importing this package imports every
module of `pipeline.extract.sources`, so adding a source is adding one file there.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from pipeline.extract import captured_text as _captured_text  # noqa: F401 - registers the format
from pipeline.extract import html as _html  # noqa: F401 - registers the format
from pipeline.extract import sources as _sources
from pipeline.extract.base import FORMATS, TEXT_SOURCES, Page, TextRules
from pipeline.extract.html import extract_html

for _module in pkgutil.iter_modules(_sources.__path__):
    importlib.import_module(f"{_sources.__name__}.{_module.name}")


def detect_format(text: str) -> str:
    """The name of the first registered format that recognises the content."""
    return next(fmt.name for fmt in FORMATS if fmt.detect(text))


def extract_text(
    text: str, fmt: str | None = None, url: str | None = None, source: str | None = None
) -> Page:
    """Extract a page given as text; `fmt` ("html", "captured-text") or None to detect it."""
    name = fmt or detect_format(text)
    for candidate in FORMATS:
        if candidate.name == name:
            return candidate.extract(text, url, source)
    raise ValueError(f"unknown page format {fmt!r}; known: {[f.name for f in FORMATS]}")


def extract_file(path: Path, source: str | None = None, url: str | None = None) -> Page:
    """Extract a saved page; the format is detected from its content, not its name."""
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    return extract_text(text, None, url=url, source=source)


__all__ = [
    "FORMATS",
    "TEXT_SOURCES",
    "Page",
    "TextRules",
    "detect_format",
    "extract_file",
    "extract_html",
    "extract_text",
]
