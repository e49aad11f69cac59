"""Regenerate pipeline/data/taxonomy.json from the IPTC Media Topics release in data/.

The tagger ships a compact copy (no retired concepts, only the fields it uses) so it runs
offline and does not read data/ at run time.

Usage: python scripts/build_taxonomy.py [--src PATH] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "data" / "iptc-media-topics" / "mediatopics-en-GB.json"
OUT = ROOT / "pipeline" / "data" / "taxonomy.json"
ATTRIBUTION = "IPTC Media Topics, (c) IPTC, CC BY 4.0"
LEVEL_KEYS = [f"Level{i}/NewsCode" for i in range(1, 7)]


def build(raw: dict[str, dict]) -> dict:
    """Keep live concepts with code, label, level, parent and definition."""
    concepts: dict[str, dict] = {}
    for code, entry in sorted(raw.items()):
        if entry.get("RetiredDate"):
            continue
        path = [entry[k] for k in LEVEL_KEYS if entry.get(k)]
        if not path or path[-1] != code:
            continue
        concepts[code] = {
            "label": entry["Name (en-GB)"],
            "level": len(path),
            "parent": path[-2] if len(path) > 1 else None,
            "definition": entry.get("Definition (en-GB)") or "",
        }
    # A live concept whose parent is retired would dangle: drop it rather than mis-attach.
    changed = True
    while changed:
        changed = False
        for code in list(concepts):
            parent = concepts[code]["parent"]
            if parent is not None and parent not in concepts:
                del concepts[code]
                changed = True
    return {
        "attribution": ATTRIBUTION,
        "source": "IPTC Media Topics, October 2023 release (en-GB), https://iptc.org/standards/media-topics/",
        "licence": "https://creativecommons.org/licenses/by/4.0/",
        "concepts": concepts,
    }


def main() -> None:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--src", type=Path, default=SRC)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    data = build(json.loads(args.src.read_text(encoding="utf-8")))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(data, ensure_ascii=False, indent=0, sort_keys=False) + "\n", encoding="utf-8"
    )
    top = sum(1 for c in data["concepts"].values() if c["level"] == 1)
    print(f"wrote {args.out} ({len(data['concepts'])} concepts, {top} top-level)")


if __name__ == "__main__":
    main()
