"""BBC News pages captured as text (2013-2014 layout): comments with "rate this" widgets."""

from __future__ import annotations

import re

from pipeline.extract.base import TextRules, register_text_source

_FOOTER = re.compile(r"^BBC © \d{4}\b", re.MULTILINE)

RULES = register_text_source(
    TextRules(
        source="bbc",
        detect=lambda text: _FOOTER.search(text) is not None,
        furniture=(r"More [\w ]{1,40} stories", r"BBC © \d{4}.*"),
        footer_start=(r"Page \d+ of \d+", r"More [\w ]{1,40} stories", r"BBC © \d{4}.*"),
    )
)
