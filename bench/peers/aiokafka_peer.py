"""The aiokafka passthrough of bench/e2e.py (getmany, produce every record, wait for the acks,
commit) in its own process, so its CPU per event is counted like every other peer's."""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from job import emit  # noqa: E402

from bench.e2e import passthrough  # noqa: E402
from pipeline.settings import Settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--prefix", required=True, help="topic prefix: reads <prefix>raw.*")
    ap.add_argument("--out", required=True)
    ap.add_argument("--group", required=True, help="app id; the group is <id>-passthrough0")
    ap.add_argument("--total", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=600.0)
    args = ap.parse_args(argv)
    settings = replace(Settings.from_env(), broker=f"kafka://{args.bootstrap}",
                       topic_prefix=args.prefix, app_id=args.group)  # fmt: skip
    emit(asyncio.run(passthrough(settings, args.out, args.total, args.timeout)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
