"""The canonical seed page (a captured BBC article with reader comments) -> one Page."""

from __future__ import annotations

import re

import pytest

from devtools.paths import SEED
from pipeline.contracts import SCHEMA_VERSION
from pipeline.extract import detect_format, extract_file
from pipeline.normalize import normalize_article, normalize_comment

NOW = "2026-11-26T10:00:00Z"
FURNITURE = [
    "rate this", "Comment number", "Jump to comments pagination",
    "This entry is now closed for comments", "More on This Story", "Korea crisis",
    "More Asia stories", "Page 1 of 2", "BBC ©", "Read more.", "best viewed", "style sheets",
]  # fmt: skip


@pytest.fixture(scope="module")
def page():
    return extract_file(SEED)


@pytest.fixture(scope="module")
def by_number(page):
    return {c["number"]: c for c in page.comments}


def _raw_comment(number: int) -> str:
    """The comment's text as in the file: lines after "Comment number N." up to the next widget."""
    text = SEED.read_text(encoding="utf-8")
    m = re.search(rf"Comment number {number}\.\n(.*?)\n\s*(?:• rate this|• Comment|\n\nPage)", text,
                  re.DOTALL)  # fmt: skip
    assert m
    return "\n".join(line.strip() for line in m.group(1).strip().splitlines())


def _all_text(record: object) -> list[str]:
    if isinstance(record, str):
        return [record]
    if isinstance(record, dict):
        return [t for v in record.values() for t in _all_text(v)]
    if isinstance(record, list):
        return [t for v in record for t in _all_text(v)]
    return []


def test_seed_is_detected_as_captured_text_from_bbc(page):
    assert detect_format(SEED.read_text(encoding="utf-8")) == "captured-text"
    assert page.article["source"] == "bbc"
    assert page.article["schema_version"] == SCHEMA_VERSION


def test_headline_becomes_title_and_caption_is_kept_out_of_body(page):
    article = page.article
    assert article["title"] == "South Korea proposes Kaesong talks with North"
    assert len(article["captions"]) == 1
    assert article["captions"][0].startswith("Visitors look at products made at Kaesong")
    assert "Visitors look at products" not in article["body"]
    assert article["body"].startswith("South Korea has offered working-level talks")
    assert article["body"].endswith("that affected 32,000 computers.")


def test_fact_box_is_extracted_with_its_four_items_and_not_left_in_body(page):
    (box,) = page.article["fact_boxes"]
    assert box["title"] == "Kaesong Industrial Zone"
    assert len(box["items"]) == 4
    assert box["items"][0].startswith("Launched in 2003, largely financed by the South")
    assert "•" not in page.article["body"]
    assert "Kaesong Industrial Zone" not in page.article["body"]
    assert "Launched in 2003" not in page.article["body"]


def test_subheading_stays_in_body_as_its_own_paragraph(page):
    assert "\n\nOperations suspended\n\n" in page.article["body"]


def test_pagination_is_read_from_the_footer(page):
    assert page.article["pagination"] == {"page": 1, "pages": 2}


def test_comments_are_numbered_37_down_to_18(page):
    assert [c["number"] for c in page.comments] == list(range(37, 17, -1))
    assert [c["source_comment_id"] for c in page.comments] == [str(n) for n in range(37, 17, -1)]
    assert page.article["comment_count"] == 20


def test_removed_comment_keeps_empty_text_and_is_flagged(by_number):
    assert by_number[30]["removed"] is True
    assert by_number[30]["text"] == ""
    assert sum(1 for c in by_number.values() if c["removed"]) == 1
    clean = normalize_comment(by_number[30], now=NOW)
    assert clean["removed"] is True and clean["text"] == "" and clean["own_text"] == ""


@pytest.mark.parametrize("number", [37, 35, 27, 23, 22, 18])
def test_comment_text_is_kept_intact_with_its_paragraphs(by_number, number):
    assert by_number[number]["text"] == _raw_comment(number)


def test_multi_paragraph_comment_keeps_blank_line_between_paragraphs(by_number):
    assert by_number[35]["text"].count("\n\n") == 1
    assert by_number[27]["text"].count("\n\n") == 2


def test_comment_repeating_an_earlier_one_is_marked_as_quoting_it(by_number):
    c29 = by_number[29]
    assert c29["quotes"] == "25"
    assert c29["quoted_text"] == by_number[25]["text"]
    assert all("quotes" not in c for n, c in by_number.items() if n != 29)


def test_quoting_comment_own_text_is_only_its_added_paragraph(page, by_number):
    clean = normalize_comment(by_number[29], now=NOW)
    article = normalize_article(page.article, now=NOW)
    assert clean["own_text"].startswith("On the other hand, if North Korea finally reunifies")
    assert clean["own_text"].endswith("that will frighten even China.")
    assert "wealthy country" not in clean["own_text"]
    assert clean["quotes"] == normalize_comment(by_number[25], now=NOW)["comment_id"]
    assert clean["article_id"] == article["article_id"]


def test_no_page_furniture_survives_in_any_text_field(page):
    texts = _all_text(page.article) + [t for c in page.comments for t in _all_text(c)]
    for phrase in FURNITURE:
        assert not [t for t in texts if phrase in t], phrase


def test_comments_name_their_article_and_share_its_id(page):
    article = normalize_article(page.article, now=NOW)
    ids = {normalize_comment(c, now=NOW)["article_id"] for c in page.comments}
    assert ids == {article["article_id"]}
    assert article["canonical_url"] is None


def test_url_given_to_the_extractor_is_the_article_identity(tmp_path):
    page = extract_file(SEED, url="https://www.bbc.co.uk/news/world-asia-23194513?ocid=x")
    article = normalize_article(page.article, now=NOW)
    assert article["canonical_url"] == "https://www.bbc.co.uk/news/world-asia-23194513"
    assert {c["article_id"] for c in page.comments} == {article["article_id"]}


def test_source_can_be_overridden():
    assert extract_file(SEED, source="archive").article["source"] == "archive"


def test_seed_normalizes_to_a_clean_english_article(page):
    article = normalize_article(page.article, now=NOW)
    assert article["language"] == "en"
    assert article["paragraphs"][0].startswith("South Korea has offered")
    assert (
        "The government wants talks to be held at the truce village of Panmunjom,"
        in (article["quotes"])
    )
    assert article["pagination"] == {"page": 1, "pages": 2}
    assert len(article["fact_boxes"][0]["items"]) == 4
