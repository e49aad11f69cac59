"""Reading topics back for people: `newspipe show` (used by `make demo`) and the tests."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from pipeline import kafka_io
from pipeline.kafka_io import assign_from_beginning
from pipeline.settings import Settings


async def read_topics(
    settings: Settings,
    topics: list[str],
    *,
    until: Any = None,
    timeout: float = 30.0,
    idle: float = 2.0,
    isolation_level: str = "read_committed",
) -> dict[str, list[dict[str, Any]]]:
    """Read every record of `topics` from the beginning, without a consumer group.

    Stops when `until(records)` is true and nothing new arrived for `idle` seconds, or at `timeout`.
    """
    consumer = kafka_io.consumer(
        settings,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level=isolation_level,
    )
    await consumer.start()
    out: dict[str, list[dict[str, Any]]] = {t: [] for t in topics}
    try:
        await assign_from_beginning(consumer, topics)
        deadline = time.monotonic() + timeout
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=200, max_records=5000)
            for tp, messages in batch.items():
                for msg in messages:
                    record = orjson.loads(msg.value)
                    record["_kafka"] = {
                        "partition": msg.partition,
                        "offset": msg.offset,
                        "key": msg.key.decode() if msg.key else None,
                        "timestamp": msg.timestamp,
                    }
                    out[tp.topic].append(record)
                    last_new = time.monotonic()
            done = until(out) if until else True
            if done and time.monotonic() - last_new >= idle:
                break
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return out


def render(
    articles: list[dict[str, Any]], comments: list[dict[str, Any]], max_comments: int = 6
) -> None:
    """Print clean records so a person can check them at a glance."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    console = Console()
    for art in articles:
        lines = [
            f"[bold]{art['title']}[/bold]",
            f"id {art['article_id']}  source {art['source']}  "
            f"revision {art.get('revision')}  words {art.get('word_count')}",
        ]
        for cap in art.get("captions") or []:
            lines.append(f"[dim]caption:[/dim] {cap[:160]}")
        paras = art.get("paragraphs") or []
        lines.append(
            f"[dim]body:[/dim] {len(paras)} paragraphs; first: {paras[0][:160] if paras else ''}"
        )
        for box in art.get("fact_boxes") or []:
            lines.append(f"[dim]fact box:[/dim] {box['title']} ({len(box['items'])} items)")
            lines.extend(f"   • {item}" for item in box["items"])
        if art.get("pagination"):
            lines.append(f"[dim]pagination:[/dim] {art['pagination']}")
        tags = ", ".join(f"{t['label']} ({t['score']:.2f})" for t in art.get("tags") or [])
        lines.append(f"[dim]tags:[/dim] {tags or '-'}")
        mine = [c for c in comments if c.get("article_id") == art["article_id"]]
        removed = sum(1 for c in mine if c.get("removed"))
        lines.append(
            f"[dim]comments:[/dim] {len(mine)} ({len(mine) - removed} visible, {removed} removed)"
        )
        console.print(Panel("\n".join(lines), title="clean.articles", expand=False))
    table = Table(title="clean.comments (a few)")
    for col in ("no.", "removed", "quotes", "words", "moderation", "own text"):
        table.add_column(col)
    ordered = sorted(comments, key=lambda c: -(c.get("number") or 0))
    # the first few, plus every removed, quoting or flagged comment: the cases worth eyeballing
    shown = ordered[:max_comments] + [
        c
        for c in ordered[max_comments:]
        if c.get("removed") or c.get("quotes") or _moderation(c) != "approved"
    ]
    numbers = {c.get("comment_id"): c.get("number") for c in comments}
    for c in shown:
        text = " ".join((c.get("own_text") or c.get("text") or "").split())
        quotes = f"#{numbers.get(c['quotes'], '?')}" if c.get("quotes") else ""
        table.add_row(
            str(c.get("number")),
            "yes" if c.get("removed") else "",
            quotes,
            str(c.get("word_count")),
            _moderation(c),
            text[:90],
        )
    console.print(table)


def _moderation(comment: dict[str, Any]) -> str:
    """'review: toxic, links' (the status and the flags' reasons); records before 1.2 have none."""
    m = comment.get("moderation")
    if not m:
        return "-"
    reasons = ", ".join(dict.fromkeys(f.get("reason", "?") for f in m.get("flags") or []))
    status = str(m.get("status"))
    return f"{status}: {reasons}" if reasons else status


def render_dlq(letters: list[dict[str, Any]], max_rows: int = 50) -> None:
    """Dead letters by code, then the newest few, two lines each (where it came from and why;
    the start of its payload), so long messages stay readable in a narrow terminal."""
    from collections import Counter

    if not letters:
        print("dlq: no dead letters")
        return
    counts = Counter(d.get("error_code") for d in letters)
    print(f"dlq: {len(letters)} dead letters: "
          + ", ".join(f"{code} {n}" for code, n in counts.most_common()))  # fmt: skip
    newest = sorted(letters, key=lambda d: d.get("failed_at") or "", reverse=True)[:max_rows]
    if len(newest) < len(letters):
        print(f"(the newest {len(newest)})")
    for d in newest:
        payload = d.get("payload")
        if payload is None:
            payload = "(not UTF-8: payload_b64)" if d.get("payload_b64") else "(no payload)"
        cut = " [truncated]" if d.get("payload_truncated") else ""
        where = f"{d.get('original_topic')}[{d.get('partition')}]@{d.get('offset')}"
        print(f"{d.get('failed_at')}  {d.get('error_code')}  {where}  stage {d.get('stage')}: "
              f"{' '.join(str(d.get('error_message')).split())[:200]}")  # fmt: skip
        print(f"    payload ({d.get('payload_bytes')} bytes{cut}): "
              f"{' '.join(str(payload).split())[:100]}")  # fmt: skip


def render_trends(records: list[dict[str, Any]], max_rows: int = 40) -> None:
    """The latest count per (window, window start, stream, topic), one line each: the topic's
    newest record per key is the running count, so earlier ones are left out."""
    if not records:
        print("topic.trends: no counts yet")
        return
    latest: dict[tuple, dict[str, Any]] = {}
    for r in records:
        latest[(r.get("window"), r.get("window_start"), r.get("stream"), r.get("topic_code"))] = r

    def order(r: dict[str, Any]) -> tuple:
        return (r.get("window") or "", r.get("window_start") or "", r.get("stream") or "",
                -(r.get("count") or 0))  # fmt: skip

    rows = sorted(latest.values(), key=order)
    print(
        f"topic.trends: {len(rows)} counts"
        + (f" (the last {max_rows})" if len(rows) > max_rows else "")
    )
    for r in rows[-max_rows:]:
        print(f"{r.get('window'):>3} from {r.get('window_start')}  {r.get('stream'):<8} "
              f"{r.get('count'):>6}  {r.get('topic_label')} ({r.get('topic_code')})")  # fmt: skip
