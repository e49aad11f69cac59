"""Behaviour of the IPTC topic tagger (pure core: no Kafka needed)."""

from __future__ import annotations

import json

import pytest

from devtools.paths import IPTC_MEDIA_TOPICS, SEED
from pipeline.tagging import Tagger, Taxonomy
from pipeline.tagging.taxonomy import TAXONOMY_PATH

IPTC_SRC = IPTC_MEDIA_TOPICS

POLITICS = "medtop:11000000"
ECONOMY = "medtop:04000000"
SPORT = "medtop:15000000"
WIDGET_LINES = {"rate this", "comment number"}


@pytest.fixture(scope="module")
def tagger() -> Tagger:
    return Tagger.load()


def seed_article() -> tuple[str, str]:
    """Headline and body of the seed page: everything before "More on This Story"."""
    lines = SEED.read_text(encoding="utf-8").split("\n")
    cut = next(i for i, line in enumerate(lines) if line.strip() == "More on This Story")
    kept = [
        line
        for line in lines[:cut]
        if line.strip() and not any(w in line.lower() for w in WIDGET_LINES)
    ]
    return kept[0], "\n".join(kept[1:])


def test_taxonomy_has_17_top_level_topics_and_no_retired_concepts() -> None:
    tax = Taxonomy.load()
    assert len(tax.top_level()) == 17
    raw = json.loads(IPTC_SRC.read_text(encoding="utf-8"))
    retired = {code for code, c in raw.items() if c.get("RetiredDate")}
    assert retired, "the source release has retired concepts to exclude"
    assert not retired & set(tax.concepts)
    shipped = json.loads(TAXONOMY_PATH.read_text(encoding="utf-8"))
    assert shipped["attribution"] == "IPTC Media Topics, (c) IPTC, CC BY 4.0"
    assert all(tax[c.parent].level == c.level - 1 for c in tax.concepts.values() if c.parent)


def test_tags_have_the_event_shape(tagger: Tagger) -> None:
    tags = tagger.tag_article(
        "Yankees beat Red Sox",
        "Jeter homers twice",
        "The pitcher struck out ten in the ninth inning.",
    )
    assert tags
    for t in tags:
        assert set(t) == {"code", "label", "level", "score", "evidence", "inherited"}
        assert t["code"].startswith("medtop:") and t["code"] in tagger.taxonomy
        assert isinstance(t["label"], str) and t["label"]
        assert isinstance(t["level"], int) and t["level"] >= 1
        assert 0.0 <= t["score"] <= 1.0
        assert isinstance(t["evidence"], list) and 1 <= len(t["evidence"]) <= 5
        assert t["inherited"] is False
    scores = [t["score"] for t in tags]
    assert scores == sorted(scores, reverse=True)


def test_seed_article_gets_politics_with_diplomacy_and_economy(tagger: Tagger) -> None:
    title, body = seed_article()
    tags = tagger.tag_article(title, None, body)
    codes = {t["code"] for t in tags}
    assert POLITICS in codes
    assert ECONOMY in codes
    politics_subs = {
        t["code"] for t in tags if t["level"] >= 2 and POLITICS in tagger.taxonomy.chain(t["code"])
    }
    assert "medtop:20000638" in politics_subs  # international relations


def test_sports_text_gets_sport_with_a_discipline(tagger: Tagger) -> None:
    tags = tagger.tag_article(
        "Federer beats Hewitt to reach Wimbledon final",
        None,
        "The top seed won in straight sets on Centre Court.",
    )
    assert tagger.top_level(tags) == SPORT
    assert any(t["code"] == "medtop:20001085" for t in tags)  # tennis


def test_comment_inherits_article_tags_marked_inherited(tagger: Tagger) -> None:
    article = tagger.tag_article("Oil prices hit record as OPEC cuts output", None, "Crude rose.")
    tags = tagger.tag_comment("Great, now I pay more.", article)
    assert {t["code"] for t in tags} == {t["code"] for t in article}
    assert all(t["inherited"] for t in tags)
    assert not any(t["inherited"] for t in article), "inheriting must not mutate the article tags"


def test_comment_with_weak_evidence_adds_no_own_tag(tagger: Tagger) -> None:
    article = tagger.tag_article("Oil prices hit record as OPEC cuts output", None, "Crude rose.")
    tags = tagger.tag_comment("the game was on tv last night", article)
    assert all(t["inherited"] for t in tags)
    assert tagger.tag_comment("Merkel would never say NO", None) == []


def test_comment_with_strong_evidence_gets_own_tags_without_article(tagger: Tagger) -> None:
    tags = tagger.tag_comment(
        "The quarterback threw three touchdowns and the Patriots won the Super Bowl", None
    )
    assert tagger.top_level(tags) == SPORT
    assert all(not t["inherited"] for t in tags)


def test_terms_match_whole_words_only(tagger: Tagger) -> None:
    assert [m["term"] for m in tagger.explain("a ban on imports")] == ["ban", "imports"]
    assert not any(m["term"] == "ban" for m in tagger.explain("a banana import"))
    terms = {m["term"] for m in tagger.explain("golfers bought bananas and a playstation")}
    assert "golfers" in terms and "playstation" in terms
    assert not any(t.startswith("ban") for t in terms)
    assert tagger.explain("subankruptcy") == []  # no match inside a longer word
    assert [m["term"] for m in tagger.explain("Bankruptcy filing")] == ["bankruptcy"]


def test_evidence_lists_the_matched_terms(tagger: Tagger) -> None:
    tags = tagger.tag_article("Microsoft patches Windows security flaw", None, "")
    top = next(t for t in tags if t["code"] == "medtop:13000000")
    assert {"microsoft", "Windows"} <= set(top["evidence"])
    explained = tagger.explain("Microsoft patches Windows")
    assert explained[0]["text"] == "Microsoft" and explained[0]["start"] == 0


def test_case_sensitive_terms_need_their_case(tagger: Tagger) -> None:
    assert {m["term"] for m in tagger.explain("the SEC probe")} == {"SEC"}
    assert not any(m["term"] == "SEC" for m in tagger.explain("a few sec later"))
    # the exact form must be a whole word of the original text: "IT" is not inside "WHITE"
    assert not any(m["term"] == "IT" for m in tagger.explain("it was a WHITE wedding"))
    assert any(m["term"] == "IT" for m in tagger.explain("it spending by IT departments"))


def test_source_section_prior_comes_from_data(tagger: Tagger) -> None:
    plain = tagger.tag_article("A quiet day", None, "Nothing much happened.")
    with_section = tagger.tag_article(
        "A quiet day", None, "Nothing much happened.", section="Sport"
    )
    assert plain == []
    assert tagger.top_level(with_section) == SPORT
    assert "section:sport" in with_section[0]["evidence"]


def test_tagger_is_loaded_once() -> None:
    assert Tagger.load() is Tagger.load()


def _tiny_tagger(tmp_path, lexicon: str) -> Tagger:
    (tmp_path / "terms.txt").write_text(lexicon, encoding="utf-8")
    return Tagger(Taxonomy.load(), lexicon_dir=tmp_path)


def _top_levels(tags: list) -> list[str]:
    return [t["code"] for t in tags if t["level"] == 1]


POLITICS, SPORT, CONFLICT = "medtop:11000000", "medtop:15000000", "medtop:16000000"


def test_equal_evidence_is_ordered_by_distinct_terms_not_by_code(tmp_path) -> None:
    # politics (11000000) sorts before sport (15000000) by code; both have evidence 2.0 here,
    # sport from two terms, politics from one
    tagger = _tiny_tagger(tmp_path, f"[{SPORT}]\ntry\t1\nscrum\t1\n[{POLITICS}]\nparliament\t2\n")
    tags = tagger.tag_article("Wales edge Scotland", None, "A late try after a scrum. Parliament")
    assert _top_levels(tags) == [SPORT, POLITICS]
    assert tags[0]["score"] == next(t["score"] for t in tags if t["code"] == POLITICS)


def test_equal_evidence_is_ordered_by_headline_evidence_first(tmp_path) -> None:
    # sport's one term is in the headline (3 x weight 1, square-rooted), politics has two body
    # terms whose weights add up to exactly the same evidence
    half = 3**0.5 / 2
    lexicon = f"[{SPORT}]\ntry\t1\n[{POLITICS}]\nminister\t{half!r}\nparliament\t{half!r}\n"
    tags = _tiny_tagger(tmp_path, lexicon).tag_article("Late try", None, "minister parliament")
    assert _top_levels(tags) == [SPORT, POLITICS]


def test_a_lone_ambiguous_word_ranks_below_real_evidence(tmp_path) -> None:
    lexicon = f"[{CONFLICT}]\n~force\t2\n[{POLITICS}]\nhousing minister\t1\n"
    tags = _tiny_tagger(tmp_path, lexicon).tag_article(
        "Rules force landlords to act", None, "The housing minister said the rules come in force."
    )
    assert _top_levels(tags)[0] == POLITICS
    # the same word with other evidence of its topic is not demoted
    lexicon = f"[{CONFLICT}]\n~force\t2\ntroops\t1\n[{POLITICS}]\nhousing minister\t1\n"
    tags = _tiny_tagger(tmp_path, lexicon).tag_article(
        "Force sends troops", None, "The housing minister said the troops would stay."
    )
    assert _top_levels(tags)[0] == CONFLICT


def test_a_text_with_only_an_ambiguous_word_is_still_tagged(tmp_path) -> None:
    tags = _tiny_tagger(tmp_path, f"[{CONFLICT}]\n~force\t2\n").tag_article("Force", None, "")
    assert _top_levels(tags) == [CONFLICT]


ARTS, CRIME, ECONOMY = "medtop:01000000", "medtop:02000000", "medtop:04000000"
# Short news stories written for these tests in the shape of real reports (headline, two or three
# sentences); each names the top-level topic a reader would file it under.
STORIES = {
    "taxi cartel": (
        ECONOMY,
        "Minicab drivers say licence rules protect a cartel",
        "Minicab drivers told councillors on Monday that the licence rules protect a cartel of "
        "established operators and keep newcomers off the ranks. The licensing committee will "
        "review the rules in the spring.",
    ),
    "force": (
        ECONOMY,
        "New rules force landlords to fix damp homes within two weeks",
        "Landlords will have to repair damp and mould within two weeks under rules announced on "
        "Tuesday. Tenants' groups welcomed the change, which comes into force in April.",
    ),
    "tv ratings": (
        ARTS,
        "Finale draws biggest TV audience of the year",
        "The final episode of the drama series drew 11 million viewers on Sunday night, the "
        "biggest television audience of the year, according to overnight ratings. The network "
        "said it had already commissioned a second season, and the show's stars thanked fans.",
    ),
    "celebrity lawsuit": (
        ARTS,
        "Actor sues studio over streaming profits",
        "The actor has sued the studio, saying his contract promised a share of box office "
        "receipts that the studio avoided by releasing the film on its streaming service. A "
        "hearing is set for June.",
    ),
    "film award": (
        ARTS,
        "Fishing drama takes best picture",
        "A low-budget drama about a fishing family won best picture on Sunday night. Its lead "
        "actress, in her first film role, was named best actress.",
    ),
    "pop star royalties": (
        ARTS,
        "Pop star sues former manager over unpaid royalties",
        "The singer has filed a lawsuit against her former manager, claiming he kept millions in "
        "royalties from her first three albums. The manager denies wrongdoing and said he would "
        "fight the case in court.",
    ),
}


@pytest.mark.parametrize("name", list(STORIES))
def test_real_shaped_stories_get_the_topic_a_reader_would_give(tagger: Tagger, name) -> None:
    expected, title, body = STORIES[name]
    assert tagger.top_level(tagger.tag_article(title, None, body)) == expected
