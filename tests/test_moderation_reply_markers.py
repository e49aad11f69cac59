"""Reply markers of common comment systems: `reply_to_author` names who is answered and `own_text`
is what the commenter wrote (no marker, no quote), so moderation scores the commenter's own words
and not the comment they quote."""

from __future__ import annotations

import pytest

from pipeline.normalize import normalize_comment


def clean(text: str, **extra) -> dict:
    return normalize_comment({"schema_version": "1.2", "source": "x", "article_title": "T",
                              "text": text, **extra})  # fmt: skip


@pytest.mark.parametrize(
    ("text", "reply_to", "own"),
    [
        ("(In reply to: Groping was already illegal? -- californiamojo) It was not enforced.",
         "californiamojo", "It was not enforced."),
        ("(In reply to: a -- b -- Bob Jones) Agreed.", "Bob Jones", "Agreed."),
        ("(In reply to Bob) Yes indeed.", "Bob", "Yes indeed."),
        ("In reply to John Smith: that is wrong.", "John Smith", "that is wrong."),
        ("In reply to John Smith\n\nThat is wrong.", "John Smith", "That is wrong."),
        ("Replying to @bob_77 great point", "bob_77", "great point"),
        ("Replying to Mary Ann: no.", "Mary Ann", "no."),
        ('Bob wrote: "the law is bad" No, it is not.', "Bob", "No, it is not."),
        ("Bob Smith wrote:\n> the law is bad\n> really\n\nNo, it is not.", "Bob Smith",
         "No, it is not."),
        ("Bob wrote:\nthe law is bad\n\nNo, it is not.", "Bob", "No, it is not."),
    ],
)  # fmt: skip
def test_reply_marker_sets_reply_to_author_and_own_text_without_marker_and_quote(text, reply_to,
                                                                                 own):  # fmt: skip
    record = clean(text)
    assert record["reply_to_author"] == reply_to
    assert record["own_text"] == own
    assert record["text"] == text  # the whole text stays
    assert reply_to in record["mentions"]


def test_leading_at_mention_is_the_reply_and_stays_in_own_text():
    record = clean("@woetothegutless Groping people in public wasn't already illegal?")
    assert record["reply_to_author"] == "woetothegutless"
    assert record["own_text"] == record["text"]


@pytest.mark.parametrize(
    "text",
    [
        "I think what he wrote: nothing new",  # no quote follows
        "Inside the house it was cold",
        "Replying is pointless",
        "(in my opinion) this is fine",
        "Really? In reply to nobody.",
    ],
)
def test_ordinary_text_is_not_taken_for_a_reply_marker(text):
    record = clean(text)
    assert record["reply_to_author"] is None
    assert record["own_text"] == text


def test_the_seeds_quoted_comment_form_still_wins_for_own_text():
    quoted = "They should never have built it in the first place, it is a waste"
    record = clean(f'Bob wrote: "{quoted}" I agree.', quotes="12", quoted_text=quoted)
    assert record["quotes"] is not None
    assert quoted not in record["own_text"]
    assert record["reply_to_author"] == "Bob"
