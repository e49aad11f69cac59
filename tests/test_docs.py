"""The generated references match the code, and the hand-written docs link to pages that exist."""

from __future__ import annotations

import argparse
import re
from dataclasses import fields

import pytest

from devtools import docgen
from pipeline.cli import build_parser
from pipeline.settings import Settings

ROOT = docgen.ROOT


@pytest.mark.parametrize("page", sorted(docgen.PAGES))
def test_the_committed_page_is_what_the_code_generates(page: str) -> None:
    committed = docgen.PAGES[page].read_text()
    assert committed == docgen.pages()[page], (
        f"docs/{page}.md is stale: run python -m devtools.docgen"
    )


def test_every_setting_is_in_configuration_md_with_a_meaning() -> None:
    text = docgen.PAGES["configuration"].read_text()
    for name in Settings.env_names():
        row = next((line for line in text.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"{name} is missing from docs/configuration.md"
        assert not row.rstrip().endswith("|  |"), f"{name} has no meaning in the table"


def test_every_settings_field_has_a_comment_to_generate_from() -> None:
    comments = docgen.field_comments(docgen.SETTINGS_PY.read_text())
    assert [f.name for f in fields(Settings) if not comments.get(f.name)] == []


def test_every_command_and_option_is_in_cli_md() -> None:
    text = docgen.PAGES["cli"].read_text()
    for path, sub in docgen._subcommands(build_parser()):
        assert f"## newspipe {' '.join(path)}\n" in text, f"newspipe {' '.join(path)} is missing"
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}" in text, f"{option} of newspipe {' '.join(path)} is missing"


def test_the_broker_variables_outside_settings_are_documented() -> None:
    text = docgen.PAGES["configuration"].read_text()
    source = (ROOT / "devtools" / "broker.py").read_text()
    for name in set(re.findall(r"NEWSPIPE_BROKER_[A-Z_]+", source)):
        assert f"`{name}`" in text


@pytest.mark.parametrize(
    "doc",
    ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", *(f"docs/{p.name}" for p in
                                                        sorted((ROOT / "docs").glob("*.md")))],
)  # fmt: skip
def test_relative_links_point_to_files_that_exist(doc: str) -> None:
    path = ROOT / doc
    if not path.is_file():
        pytest.fail(f"{doc} is missing")
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text()):
        assert (path.parent / target).exists(), f"{doc} links to {target}, which does not exist"


def test_every_alert_rule_has_a_procedure_in_operations_md() -> None:
    rules = re.findall(r"- alert: (\w+)", (ROOT / "deploy/prometheus/alerts.yml").read_text())
    text = (ROOT / "docs/operations.md").read_text()
    assert len(rules) >= 6
    assert [r for r in rules if f"### {r}\n" not in text] == []


def test_the_records_shown_in_consumers_md_match_their_schemas() -> None:
    import json

    import jsonschema

    text = (ROOT / "docs/consumers.md").read_text()
    blocks = [json.loads(b) for b in re.findall(r"```json\n(.*?)\n```", text, re.S)]
    schemas = {
        "article_id" : "clean-article", "comment_id": "clean-comment",
        "error_code": "dead-letter", "window": "trend",
    }  # fmt: skip
    seen = set()
    for record in blocks:
        kind = next(
            k
            for f, k in schemas.items()
            if f in record and (f != "article_id" or "comment_id" not in record)
        )
        schema = json.loads((ROOT / "schemas" / f"{kind}.schema.json").read_text())
        jsonschema.validate(record, schema)
        seen.add(kind)
    assert seen == set(schemas.values())


def documented_commands() -> list[tuple[str, str]]:
    """(file, command) for every `newspipe ...` line in a code block of the docs."""
    out = []
    files = ["README.md", "CONTRIBUTING.md", "deploy/README.md", *(
        f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]  # fmt: skip
    for name in files:
        blocks = re.findall(r"```[a-z]*\n(.*?)```", (ROOT / name).read_text(), re.S)
        for block in blocks:
            joined = re.sub(r"\\\n\s*", " ", block)
            for line in joined.splitlines():
                line = line.strip().removeprefix("$ ")
                line = re.sub(r"^(NEWSPIPE_\w+=\S+\s+)+", "", line).replace(".venv/bin/", "")
                output = re.match(r"newspipe( [a-z]+)*: ", line)  # what a command printed
                if line.startswith("newspipe ") and "<" not in line and not output:
                    out.append((name, line.split("  #", 1)[0].strip()))
    return out


def test_every_command_the_docs_show_parses(capsys) -> None:
    import shlex

    commands = documented_commands()
    assert len(commands) > 30
    bad = []
    for name, command in commands:
        try:
            build_parser().parse_args(shlex.split(command)[1:])
        except SystemExit as exc:
            if exc.code != 0:
                bad.append(f"{name}: {command}")
    capsys.readouterr()
    assert bad == []
