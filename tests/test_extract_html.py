"""HTML pages: trafilatura for the main text, our parser for metadata and comment sections."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.extract import detect_format, extract_file, extract_html
from pipeline.extract.html import fill_from_html
from pipeline.normalize import normalize_article, normalize_comment

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "html"
WITH_COMMENTS = FIXTURES / "article_with_comments.html"
PLAIN = FIXTURES / "article_plain.html"
NOW = "2026-11-26T10:00:00Z"


@pytest.fixture(scope="module")
def page():
    return extract_file(WITH_COMMENTS)


def test_html_is_detected_from_content():
    assert detect_format(WITH_COMMENTS.read_text()) == "html"
    assert detect_format("Just a headline\n\nAnd a paragraph.") == "captured-text"


def test_title_standfirst_and_canonical_url_come_from_metadata(page):
    article = page.article
    assert article["title"] == "Harbour bridge reopens after storm repairs"
    assert article["standfirst"].startswith("The Harbour Bridge reopened to traffic on Tuesday")
    assert article["url"] == "https://www.coastalcourier.example/news/local/harbour-bridge-reopens"


def test_published_time_is_normalized_to_utc():
    clean = normalize_article(extract_file(WITH_COMMENTS).article, now=NOW)
    assert clean["published_at"] == "2024-03-12T08:30:00Z"
    assert clean["event_time"] == "2024-03-12T08:30:00Z"
    plain = normalize_article(extract_file(PLAIN).article, now=NOW)
    assert plain["published_at"] == "2023-07-10T14:05:00Z"  # RFC 2822 in the meta tag


def test_body_keeps_article_paragraphs_and_drops_page_furniture(page):
    body = page.article["body"]
    assert body.startswith("The Harbour Bridge reopened to traffic on Tuesday morning")
    assert body.count("\n\n") == 4
    for junk in ("Home", "Advertisement", "Buy cheap ferry", "Related stories", "Storm damage bill",
                 "All rights reserved", "About time!", "Comments (3)"):  # fmt: skip
        assert junk not in body


def test_figure_caption_is_a_caption_not_body(page):
    caption = "The bridge was closed for six weeks after the February storm"
    assert page.article["captions"] == [caption]
    assert "closed for six weeks" not in page.article["body"]


def test_comment_section_gives_three_comments_with_authors_and_times(page):
    comments = page.comments
    assert [c["author"] for c in comments] == ["harbourwatcher", "J. Mendes", "ferryfan"]
    assert [c["source_comment_id"] for c in comments] == ["1041", "1042", "1043"]
    assert comments[1]["posted_at"] == "2024-03-12T10:15:00Z"
    assert comments[1]["text"] == (
        "Credit to the engineers, they finished a week early.\n\nNow fix the sea wall properly."
    )
    assert {c["article_id"] for c in comments} == {normalize_article(page.article)["article_id"]}


def test_reply_comment_names_the_author_it_answers(page):
    clean = normalize_comment(page.comments[2], now=NOW)
    assert clean["reply_to_author"] == "harbourwatcher"
    assert clean["mentions"] == ["harbourwatcher"]


def test_page_without_comments_gives_none_and_keeps_subheading():
    page = extract_file(PLAIN)
    assert page.comments == []
    assert "\n\nExporters cautious\n\n" in page.article["body"]
    for junk in ("cookies", "Tractor finance", "Most read", "Share this", "Advertise"):
        assert junk not in page.article["body"]


def test_raw_event_with_html_is_filled_by_extraction_then_normalized():
    html = PLAIN.read_text()
    assert extract_html(html, None)["title"] == "Grain prices fall as harvest forecasts improve"
    raw = fill_from_html({"schema_version": "1.0", "source": "html", "html": html})
    clean = normalize_article(raw, now=NOW)
    assert clean["title"] == "Grain prices fall as harvest forecasts improve"
    assert clean["canonical_url"] == "https://farmbusiness.example/markets/grain-prices-fall-2023"
    assert "One good forecast does not make a harvest," in clean["quotes"]
    assert clean["language"] == "en"


WORDPRESS = FIXTURES / "wordpress_comments.html"


@pytest.fixture(scope="module")
def wordpress():
    return extract_file(WORDPRESS)


def test_wordpress_comment_authors_lose_says_reply_report_and_avatar_text(wordpress):
    # three walkers' markup: `<b class="fn">NAME <span class="says">says:</span></b>`,
    # `<cite class="fn">` beside the "says:" span, and a plain name after an avatar whose alt
    # text is "Avatar of NAME", followed by "says:" and a Report link
    authors = [c["author"] for c in wordpress.comments]
    assert authors == ["Rosie Tran", "Harbour Road Traders", "Dev Patel"]
    clean = [normalize_comment(c, now=NOW)["author"] for c in wordpress.comments]
    assert clean == authors


def test_comment_dates_in_page_shapes_become_utc(wordpress):
    # ISO with offset in <time datetime>, "November 18, 2019 at 7:45 pm" as the permalink text
    # of an older theme, and RFC 2822 in a datetime attribute
    posted = [c["posted_at"] for c in wordpress.comments]
    assert posted == ["2019-11-18T18:02:11Z", "2019-11-18T19:45:00Z", "2019-11-18T21:30:00Z"]


def test_a_gmt_page_date_is_read_instead_of_costing_the_article(wordpress):
    # the meta tag says "2019-11-18 17:19:53 GMT", which the strict producer rule refuses
    assert wordpress.article["published_at"] == "2019-11-18T17:19:53Z"
    clean = normalize_article(wordpress.article, now=NOW)
    assert clean["published_at"] == "2019-11-18T17:19:53Z"
    assert clean["notes"] == []


def test_an_unreadable_page_date_is_dropped_with_a_note():
    html = WORDPRESS.read_text().replace("2019-11-18 17:19:53 GMT", "sometime last week")
    html = html.replace('datetime="2019-11-18T17:19:53+00:00"', "")
    raw = fill_from_html({"schema_version": "1.1", "source": "html", "html": html})
    clean = normalize_article(raw, now=NOW)
    assert clean["published_at"] is None
    assert clean["body"].startswith("The city council voted on Monday evening")
    assert len(clean["notes"]) == 1
    assert "published_at" in clean["notes"][0] and "sometime last week" in clean["notes"][0]
