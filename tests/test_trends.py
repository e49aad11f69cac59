"""The batch's trend counts: one count per clean record, top-level topic and event minute."""

from __future__ import annotations

from pipeline.trends import BatchCounts

SPORT = {"code": "medtop:15000000", "label": "sport", "level": 1}
FOOTBALL = {"code": "medtop:20001065", "label": "football", "level": 2}
POLITICS = {"code": "medtop:11000000", "label": "politics", "level": 1}


def rec(event_time: str, *tags: dict) -> dict:
    return {"event_time": event_time, "tags": list(tags)}


def test_each_record_counts_once_per_top_level_topic_and_event_minute() -> None:
    counts = BatchCounts()
    counts.add("comments", rec("2026-05-01T10:05:10Z", SPORT, FOOTBALL))
    counts.add("comments", rec("2026-05-01T10:05:59Z", SPORT, POLITICS))
    counts.add("comments", rec("2026-05-01T10:06:00Z", SPORT))
    counts.add("articles", rec("2026-05-01T10:05:30Z", SPORT))
    minute = 1777629900.0  # 2026-05-01T10:05:00Z
    assert sorted(counts.drain()) == [
        ("articles|medtop:15000000", minute, "sport", 1),
        ("comments|medtop:11000000", minute, "politics", 1),
        ("comments|medtop:15000000", minute, "sport", 2),
        ("comments|medtop:15000000", minute + 60, "sport", 1),
    ]
    assert counts.drain() == []  # drained: the next batch starts from nothing


def test_a_topic_listed_twice_counts_once_and_untagged_records_count_nothing() -> None:
    counts = BatchCounts()
    inherited = {**SPORT, "inherited": True}
    counts.add("comments", rec("2026-05-01T10:05:10Z", inherited, SPORT, FOOTBALL))
    counts.add("comments", rec("2026-05-01T10:05:10Z"))
    counts.add("comments", rec("2026-05-01T10:05:10Z", FOOTBALL))
    counts.add("comments", {"event_time": "not a time", "tags": []})  # never read: no topic
    assert [(key, n) for key, _, _, n in counts.drain()] == [("comments|medtop:15000000", 1)]
