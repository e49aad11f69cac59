"""Where the repository keeps the files its demo, tests, evaluations and benchmarks read.

The one place these paths are named (see data/README.md for what each file is and its licence).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
SEED = DATA / "seed" / "000_ab5b4fd25105b7c2.txt"
FOX_COMMENTS = DATA / "fox-news-comments" / "fox-news-comments.json"
AG_NEWS = DATA / "ag-news" / "test.csv"
IPTC_MEDIA_TOPICS = DATA / "iptc-media-topics" / "mediatopics-en-GB.json"
EXTRACTION_PAGES = DATA / "extraction-pages" / "newspaper4k"
FIXTURES = ROOT / "tests" / "fixtures"
SCHEMAS = ROOT / "schemas"
SCHEMA_EXAMPLES = SCHEMAS / "examples"
