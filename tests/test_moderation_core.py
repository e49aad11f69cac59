"""Comment moderation in the core: every clean comment says whether a moderator should look at it
and why (issue 16). The flags carry their evidence, the policy comes from settings, a batch is
scored in one model call and gives the same answers as one comment at a time, and an author's
rejected comments count for their next comment even inside the same batch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import orjson
import pytest

from devtools.datasets import fox_comments
from devtools.paths import ROOT
from pipeline.contracts import validate_record
from pipeline.core import CLEAN, DLQ, Core, Meta, States
from pipeline.moderation import AuthorHistory, HistoryEvent, Rules
from pipeline.moderation.policy import ModerationContext
from pipeline.moderation.signals import WordMatcher, capitals, link_domains
from pipeline.moderation.toxicity import ToxicityModel
from pipeline.settings import Settings, SettingsError

T0_MS = 1_700_000_000_000


@pytest.fixture(scope="module")
def tagger():
    from pipeline.tagging import Tagger

    return Tagger.load()


def make_core(tagger, rules: Rules | None = None, **settings) -> Core:
    core = Core(Settings(**settings), States(), tagger)
    if rules is not None:
        core.moderation.rules = rules
    return core


def event(n: int, text: str, author: str | None = "reader", title: str = "An article") -> bytes:
    raw = {"schema_version": "1.2", "source": "foxnews", "article_title": title,
           "source_comment_id": str(n), "text": text}  # fmt: skip
    if author is not None:
        raw["author"] = author
    return orjson.dumps(raw)


def items(*texts: str, author: str | None = "reader", start: int = 0, title: str = "An article"):
    return [(event(start + i, t, author, title), Meta("raw.comments", 0, start + i, b"k", [],
             T0_MS + (start + i) * 1000)) for i, t in enumerate(texts)]  # fmt: skip


def moderation(result) -> dict:
    assert result.status == CLEAN, result.record
    validate_record("clean-comment", result.record)
    return result.record["moderation"]


def reasons(result) -> list[str]:
    return [f["reason"] for f in moderation(result)["flags"]]


def flag(result, reason: str) -> dict:
    return next(f for f in moderation(result)["flags"] if f["reason"] == reason)


# -- the model -------------------------------------------------------------------------------
def test_toxicity_scores_equal_the_packages_own_predict_prob_on_the_evaluation_comments():
    """The fast scorer re-implements the package's vectorizer on the numbers exported to
    toxicity-model.npz: it must give the same numbers, or the measured quality (make
    eval-moderation) would not be the model's. The package is a test dependency only."""
    from profanity_check import predict_prob

    texts = [c["text"] for c in fox_comments()]
    texts += ["Ça suffit, idiot ! Straße", "ÜBER DUMM", "", "   ", "a b c", "ｆｕｌｌ ｗｉｄｔｈ"]
    ours = np.array(ToxicityModel.load().score_many(texts))
    assert np.max(np.abs(ours - predict_prob(texts))) < 1e-9


def test_shipped_toxicity_model_equals_a_fresh_export_from_the_installed_package(tmp_path):
    """The npz and its notice cannot drift from the pinned alt-profanity-check: a new release
    of the package (or a change to the exporter) fails here until
    `python -m devtools.export_toxicity_model` is run and its output committed."""
    from devtools import export_toxicity_model as export

    npz, notice = export.write(tmp_path)
    with np.load(npz) as fresh, np.load(export.NPZ) as shipped:
        assert sorted(shipped.files) == sorted(fresh.files)
        for name in fresh.files:
            assert shipped[name].dtype == fresh[name].dtype, name
            assert np.array_equal(shipped[name], fresh[name]), name
    assert export.NOTICE.read_text(encoding="utf-8") == notice.read_text(encoding="utf-8")
    assert "MIT License" in notice.read_text(encoding="utf-8")


def test_scoring_imports_neither_sklearn_nor_joblib():
    """The runtime reads the npz with numpy alone: scikit-learn, scipy and joblib stay out of the
    worker (and out of requirements-runtime.lock)."""
    code = (
        "import sys\n"
        "import pipeline.core\n"
        "from pipeline.moderation.toxicity import ToxicityModel\n"
        "model = ToxicityModel.load()\n"
        "assert 0.5 < model.score_many(['you stupid idiot', 'thanks'])[0] <= 1\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib',"
        " 'profanity_check'}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_a_batch_is_scored_like_its_comments_one_by_one():
    model = ToxicityModel.load()
    texts = [c["text"] for c in fox_comments()[:300]]
    assert model.score_many(texts) == pytest.approx([model.score(t) for t in texts], abs=1e-12)


def test_core_batch_and_single_record_processing_give_the_same_moderation(tagger):
    texts = ["you are a pathetic idiot", "Thanks for the article", "SHOUTING ABOUT EVERYTHING NOW",
             "read http://example.org/a now", "what an idiot you are, moron"]  # fmt: skip
    batch = make_core(tagger).process_batch("comments", items(*texts), States())
    single_core = make_core(tagger)
    single = [single_core.process("comments", p, m) for p, m in items(*texts)]
    assert [moderation(r) for r in batch] == [moderation(r) for r in single]


# -- flags and evidence ----------------------------------------------------------------------
def test_toxic_comment_is_flagged_with_its_score_and_the_thresholds(tagger):
    core = make_core(tagger, moderation_toxic_review=0.5, moderation_toxic_reject=0.99999)
    (r,) = core.process_batch("comments", items("go to hell, you scum"), States())
    f = flag(r, "toxic")
    assert f["score"] == moderation(r)["toxicity"] > 0.5
    assert f["evidence"] == {"threshold": 0.5, "reject_threshold": 0.99999}
    assert moderation(r)["status"] == "review"


def test_very_toxic_comment_is_rejected(tagger):
    (r,) = make_core(tagger).process_batch("comments", items("fuck you"), States())
    assert moderation(r)["status"] == "rejected"


def test_banned_word_rejects_and_names_the_word_on_word_boundaries_case_insensitively(tagger):
    rules = Rules.seed().with_list("banned_words", ["Scum", "go to hell"])
    core = make_core(tagger, rules)
    texts = ("What SCUM. Go To Hell, please", "A scumbag", "Nice and calm discussion here")
    rs = core.process_batch("comments", items(*texts), States())
    assert flag(rs[0], "banned_word")["evidence"] == {"words": ["go to hell", "scum"]}
    assert moderation(rs[0])["status"] == "rejected"
    assert "banned_word" not in reasons(rs[1])  # "scum" inside "scumbag" is not the word


def test_suspect_word_sends_to_review_or_is_only_a_flag_per_setting(tagger):
    rules = Rules.seed().with_list("suspect_words", ["migrants"])
    text = "The migrants arrived yesterday in town"
    (r,) = make_core(tagger, rules).process_batch("comments", items(text), States())
    assert flag(r, "suspect_word")["evidence"] == {"words": ["migrants"]}
    assert moderation(r)["status"] == "review"
    core = make_core(tagger, rules, moderation_suspect_words="flag")
    (r,) = core.process_batch("comments", items(text), States())
    assert moderation(r)["status"] == "approved" and reasons(r) == ["suspect_word"]


def test_links_are_flagged_with_their_domains(tagger):
    text = "See https://www.Example.com/a?b=1 and bit.ly/xyz for the facts"
    (r,) = make_core(tagger).process_batch("comments", items(text), States())
    assert flag(r, "links")["evidence"] == {"domains": ["example.com", "bit.ly"]}
    assert moderation(r)["status"] == "approved"  # links are only a flag by default
    (r,) = make_core(tagger, moderation_links="review").process_batch(
        "comments", items(text), States()
    )
    assert moderation(r)["status"] == "review"
    assert link_domains("I was at the U.S. embassy. It rained.") == []


def test_shouting_needs_mostly_capitals_and_enough_letters(tagger):
    rs = make_core(tagger).process_batch(
        "comments",
        items("THIS IS A DISGRACE AND EVERYONE KNOWS IT", "NO WAY", "I met the CEO"),
        States(),
    )
    assert flag(rs[0], "shouting")["evidence"] == {"ratio": 1.0, "letters": 33}
    assert "shouting" not in reasons(rs[1]) and "shouting" not in reasons(rs[2])
    assert capitals("ÉNORME SCANDALE À PARIS")[0] == 1.0


def test_author_on_the_premoderation_list_goes_to_review(tagger):
    rules = Rules.seed().with_list("premod_authors", ["Troll42"])
    (r,) = make_core(tagger, rules).process_batch(
        "comments", items("A perfectly polite remark here", author="troll42"), States()
    )
    assert flag(r, "premod_author")["evidence"] == {"author": "troll42"}
    assert moderation(r)["status"] == "review"


def test_spam_cluster_and_repeat_post_come_from_the_dedup_signals(tagger):
    core = make_core(tagger)
    text = "Buy cheap watches at my shop today"
    states = States()
    first = core.process_batch("comments", items(text, author="a", title="One"), states)
    other = core.process_batch("comments", items(text, author="b", start=1, title="Two"), states)
    again = core.process_batch("comments", items(text, author="a", start=2, title="Three"), states)
    assert reasons(first[0]) == []
    assert flag(other[0], "spam")["evidence"] == {"cluster_size": 2}
    assert "repeat_post" not in reasons(other[0])  # another author: spam, not a repeat
    assert flag(again[0], "repeat_post")["evidence"] == {
        "first_comment_id": first[0].record["comment_id"]
    }


# -- history ---------------------------------------------------------------------------------
def test_rejected_comments_count_for_the_same_authors_later_comments_in_the_same_batch(tagger):
    core = make_core(tagger, moderation_history_review=2)
    texts = ("fuck you", "you are an idiot, fuck off", "A calm and polite comment", "Fine")
    rs = core.process_batch("comments", items(*texts, author="angry"), States())
    assert [moderation(r)["status"] for r in rs[:2]] == ["rejected", "rejected"]
    assert moderation(rs[2])["status"] == "review"
    evidence = flag(rs[2], "recent_history")["evidence"]
    assert evidence["counts"] == {"rejected": 2} and evidence["threshold"] == 2
    # every non-approved comment has its history event on its result (the shell sends it)
    events = [r.history_event for r in rs]
    assert all(isinstance(e, HistoryEvent) for e in events)
    assert [e.status for e in events] == ["rejected", "rejected", "review", "review"]
    assert core.moderation.history.count("angry", T0_MS / 1000 + 10) == {
        "rejected": 2, "review": 2}  # fmt: skip


def test_history_handed_in_by_the_shell_counts_within_the_horizon_only(tagger):
    history = AuthorHistory(horizon_s=3600)
    t0 = T0_MS / 1000
    history.add(HistoryEvent("x", "c-old", t0 - 7200, "rejected"))  # beyond the horizon
    history.add(HistoryEvent("x", "c-1", t0 - 60, "rejected"))
    core = make_core(tagger, moderation_history_review=2)
    core.moderation = ModerationContext(Rules.seed(), history)
    (r,) = core.process_batch("comments", items("Polite words only here", author="x"), States())
    assert moderation(r)["status"] == "approved"
    history.add(HistoryEvent("x", "c-2", t0 - 30, "review"))
    (r,) = core.process_batch("comments", items("Polite words again", author="x", start=5),
                              States())  # fmt: skip
    assert flag(r, "recent_history")["evidence"]["counts"] == {"rejected": 1, "review": 1}


def test_history_counts_only_for_authors_holding_enough_events():
    """`held` bounds `count` from above without reading times: the core skips the count (and the
    event time parse) for authors who cannot reach the threshold."""
    history = AuthorHistory(horizon_s=60)
    assert history.held("x") == 0 and not history.has("x")
    history.add(HistoryEvent("x", "c-1", 0.0, "review"))
    history.add(HistoryEvent("x", "c-1", 5.0, "rejected"))  # the same comment again: one event
    history.add(HistoryEvent("x", "c-2", 500.0, "review"))
    assert history.held("x") == 2
    assert history.count("x", 500.0) == {"review": 1}


def test_anonymous_and_removed_comments_leave_no_history(tagger):
    core = make_core(tagger)
    (r,) = core.process_batch("comments", items("fuck you", author=None), States())
    assert moderation(r)["status"] == "rejected" and r.history_event is None
    removed = orjson.dumps({"schema_version": "1.2", "source": "bbc", "article_title": "T",
                            "number": 3, "removed": True, "text": ""})  # fmt: skip
    (r,) = core.process_batch("comments", [(removed, Meta("raw.comments"))], States())
    assert moderation(r) == {"status": "approved", "toxicity": 0.0, "flags": []}


# -- rules -----------------------------------------------------------------------------------
def test_word_matcher_is_rebuilt_only_when_the_rules_change():
    matcher = WordMatcher()
    rules = Rules.seed().with_list("banned_words", ["scum"])
    matcher.sync(rules)
    matcher.sync(rules)
    assert matcher.builds == 1
    assert matcher.find("you SCUM") == {"banned_words": ["scum"]}
    newer = rules.with_list("banned_words", ["rat"])
    matcher.sync(newer)
    assert matcher.builds == 2
    assert matcher.find("you SCUM, you rat") == {"banned_words": ["rat"]}
    assert matcher.find("pirate ratio") == {}


def test_a_rules_change_between_batches_changes_the_next_comments_status(tagger):
    core = make_core(tagger)
    (r,) = core.process_batch("comments", items("Such a weasel move"), States())
    assert moderation(r)["status"] == "approved"
    core.moderation.rules = core.moderation.rules.with_list("banned_words", ["weasel"])
    (r,) = core.process_batch("comments", items("Such a weasel move", start=1), States())
    assert moderation(r)["status"] == "rejected"


def test_a_failing_moderation_makes_a_dead_letter_not_a_crash(tagger, monkeypatch):
    core = make_core(tagger)
    real = core.moderator.moderate

    def fragile(records, context, repeat_of=None):
        if any("boom" in r["text"] for r in records):
            raise RuntimeError("boom")
        return real(records, context, repeat_of)

    monkeypatch.setattr(core.moderator, "moderate", fragile)
    rs = core.process_batch("comments", items("fine comment here", "boom goes this"), States())
    assert rs[0].status == CLEAN and rs[1].status == DLQ
    assert rs[1].record["error_code"] == "internal"


# -- settings --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"NEWSPIPE_MODERATION_TOXIC_REVIEW": "1.5"}, "must be at most 1"),
        ({"NEWSPIPE_MODERATION_TOXIC_REVIEW": "0.9", "NEWSPIPE_MODERATION_TOXIC_REJECT": "0.5"},
         "must be at least"),
        ({"NEWSPIPE_MODERATION_LINKS": "block"}, "is not one of review, flag"),
        ({"NEWSPIPE_MODERATION_HISTORY_REVIEW": "0"}, "must be above zero"),
    ],
)  # fmt: skip
def test_bad_moderation_settings_are_refused_by_name(env, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_history_counts_what_a_scan_of_every_event_counts():
    """Counting by binary search gives what looking at each held event gives, through
    re-added comments, changed statuses, exclusions and expiry."""
    import random

    from pipeline.moderation.history import AuthorHistory, HistoryEvent

    rng = random.Random(11)
    history = AuthorHistory(horizon_s=100.0)
    held: dict[tuple[str, str], tuple[float, str]] = {}
    for step in range(3000):
        author = rng.choice("abc")
        cid = f"c{rng.randrange(400)}"
        t = float(rng.randrange(step // 3, step // 3 + 60))
        status = rng.choice(("review", "rejected"))
        history.add(HistoryEvent(author, cid, t, status))
        held[(author, cid)] = (t, status)
        if step % 500 == 499:
            history.expire()
            cutoff = history.watermark - 100.0
            held = {k: v for k, v in held.items() if v[0] >= cutoff}
        now, exclude = float(rng.randrange(0, step // 3 + 80)), rng.choice((None, cid))
        expected: dict[str, int] = {}
        for (who, c), (when, what) in held.items():
            if who == author and c != exclude and now - 100.0 <= when <= now:
                expected[what] = expected.get(what, 0) + 1
        assert history.count(author, now, exclude=exclude) == expected
    assert len(history) == len(held)


def test_the_cores_own_history_is_swept_with_its_state():
    from pipeline.core import Core
    from pipeline.moderation.history import HistoryEvent

    core = Core(Settings())
    horizon = core.moderation.history.horizon_s
    core.moderation.history.add(HistoryEvent("a", "c1", 1000.0, "review"))
    core.moderation.history.add(HistoryEvent("a", "c2", 1000.0 + horizon + 10, "review"))
    core.expire()
    assert len(core.moderation.history) == 1
