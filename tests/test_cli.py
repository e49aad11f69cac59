"""The command line without a broker: every command's help, the commands that need no Kafka run
for real, and operator errors (a bad setting, an unreachable broker) are one line and an exit
code. tests/test_cli_kafka.py runs the commands that need the broker, as the README shows them."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from devtools import paths
from pipeline import cli


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def subcommands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple]:
    """Every command path of the parser: ("worker",), ("archive", "verify"), ..."""
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out.append((*prefix, name))
                out.extend(subcommands(sub, (*prefix, name)))
    return out


def parser_of(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = cli.build_parser()
    for name in path:
        action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = action.choices[name]
    return parser


COMMANDS = subcommands(cli.build_parser())
# commands that talk to Kafka, with arguments that reach the broker
KAFKA_CALLS = [
    ["topics", "create"],
    ["topics", "delete", "--yes"],
    ["ingest", str(paths.SEED)],
    ["show", "--timeout", "5"],
    ["show", "dlq", "--timeout", "5"],
    ["replay", "--from-dlq"],
    ["archive", "--dir", "ARCHIVE", "--idle-exit", "1"],
    ["worker"],
    ["moderation", "show"],
    ["moderation", "add", "banned_words", "x"],
]


def test_the_command_list_is_what_the_docs_describe() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert names == {"worker", "topics", "ingest", "show", "broker", "tag", "replay", "archive",
                     "archive verify", "moderation", "moderation show", "moderation add",
                     "moderation remove", "moderation set", "moderation reset"}  # fmt: skip


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_its_exit_codes(path: tuple[str, ...], capsys) -> None:
    with pytest.raises(SystemExit) as done:
        cli.main([*path, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: newspipe {' '.join(path)}")
    assert "exit codes:" in out and "  2   " in out


@pytest.mark.parametrize("path", [(), *COMMANDS], ids=lambda p: " ".join(p) or "newspipe")
def test_every_option_and_argument_has_help_text(path: tuple[str, ...]) -> None:
    parser = parser_of(path)
    missing = [
        a.dest
        for a in parser._actions
        if not isinstance(a, argparse._SubParsersAction | argparse._HelpAction)
        and a.dest != "version"
        and not a.help
    ]
    assert missing == []


def test_broker_help_shows_its_options(capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["broker", "--help"])
    out = capsys.readouterr().out
    for option in ("--port", "--controller-port", "--home", "fetch", "reset", "status: no broker"):
        assert option in out


def test_tag_prints_tags_with_level_score_and_evidence(capsys) -> None:
    text = "The central bank raised interest rates again as inflation kept rising"
    assert cli.main(["tag", text]) == 0
    out = capsys.readouterr().out
    assert "medtop:04000000  economy, business and finance  level 1  score" in out
    assert "evidence: central bank" in out


def test_tag_says_no_tags_for_text_without_topic_terms(capsys) -> None:
    assert cli.main(["tag", "zzz", "qqq"]) == 0
    assert capsys.readouterr().out.startswith("no tags")


def test_broker_status_without_a_broker_exits_3(tmp_path: Path, capsys) -> None:
    code = cli.main(["broker", "status", "--home", str(tmp_path), "--port", str(closed_port())])
    assert code == 3
    assert capsys.readouterr().out.strip() == "kafka not running"


def test_archive_verify_of_an_empty_folder_and_of_a_missing_one(tmp_path: Path, capsys) -> None:
    assert cli.main(["archive", "verify", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err
    code = cli.main(["archive", "verify", str(tmp_path)])
    out = capsys.readouterr().out
    assert f"{tmp_path}: 0 runs, 0 files, 0 records" in out
    assert code in (0, 1)


def test_replay_offline_runs_the_seed_page_through_the_core(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert cli.main(["replay", str(paths.SEED), "--offline", str(out)]) == 0
    written = {p.name for p in out.iterdir()}
    assert any(name.startswith("clean") for name in written), written


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_a_bad_setting_is_one_line_and_exit_2_for_every_command(
    path: tuple[str, ...], monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NEWSPIPE_BATCH_SIZE", "abc")
    args = {"topics": ["list"], "ingest": ["x"], "broker": ["status"], "tag": ["x"],
            "archive verify": ["."], "replay": ["x"], "moderation": ["show"],
            "moderation add": ["banned_words", "x"], "moderation remove": ["banned_words", "x"],
            "moderation set": ["banned_words", "--file", "x"],
            "moderation reset": ["banned_words"]}.get(" ".join(path), [])  # fmt: skip
    assert cli.main([*path, *args]) == 2
    err = capsys.readouterr().err
    assert err == "newspipe: error: NEWSPIPE_BATCH_SIZE=abc: not an integer\n"


@pytest.mark.parametrize("argv", KAFKA_CALLS, ids=" ".join)
def test_an_unreachable_broker_is_one_line_and_exit_1(
    argv: list[str], tmp_path: Path, monkeypatch, capsys
) -> None:
    port = closed_port()
    monkeypatch.setenv("NEWSPIPE_BROKER", f"kafka://127.0.0.1:{port}")
    argv = [str(tmp_path) if a == "ARCHIVE" else a for a in argv]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"newspipe: error: Kafka at 127.0.0.1:{port} (PLAINTEXT): ")
    assert "Traceback" not in err[0]


def test_topics_delete_without_a_terminal_asks_for_yes_and_deletes_nothing(
    monkeypatch, capsys
) -> None:
    # the broker is unreachable: had it tried to delete, the exit code would be 1
    monkeypatch.setenv("NEWSPIPE_BROKER", f"kafka://127.0.0.1:{closed_port()}")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False, raising=False)
    assert cli.main(["topics", "delete"]) == 2
    assert "not confirmed; nothing deleted (pass --yes" in capsys.readouterr().err


def test_topics_list_names_every_topic_the_app_creates_with_faust_changelogs(
    monkeypatch, capsys
) -> None:
    monkeypatch.setenv("NEWSPIPE_TOPIC_PREFIX", "p.")
    monkeypatch.setenv("NEWSPIPE_APP_ID", "app")
    assert cli.main(["topics", "list"]) == 0
    listed = capsys.readouterr().out.split()
    assert "p.raw.articles" in listed and "p.dlq" in listed and "p.app-state.comments" in listed
    assert "app-trends-1m-changelog" in listed and "app-trends-1h-changelog" in listed


@pytest.mark.parametrize(
    ("old", "new", "dest", "argv"),
    [
        ("--source", "--set-source", "set_source", ["ingest", "page.txt"]),
        ("--topic", "--to-topic", "topic", ["replay", "f.jsonl"]),
    ],
)
def test_old_flag_spellings_still_work_with_a_warning(old, new, dest, argv, capsys) -> None:
    parser = cli.build_parser()
    args = parser.parse_args([*argv, old, "x"])
    assert getattr(args, dest) == "x"
    assert f"warning: {old} is deprecated, use {new}" in capsys.readouterr().err
    args = parser.parse_args([*argv, new, "y"])
    assert getattr(args, dest) == "y"
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["replay", "f.jsonl", "--from", "2026-11-01T00:00:00Z"], "--from/--to select"),
        (["replay", "f.jsonl", "--code", "not_json"], "--code selects dead letters"),
        (["replay", "--from-dlq", "f.jsonl"], "give no SOURCES"),
        (["replay", "--from-dlq", "--to-topic", "x"], "goes back to the raw topic it came from"),
        (["replay"], "give SOURCES, --from-topic or --from-dlq"),
    ],
)
def test_replay_refuses_flags_that_do_not_apply(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "f.jsonl").write_text("{}\n")
    assert cli.main(argv) == 2
    assert says in capsys.readouterr().err
