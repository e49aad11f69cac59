"""Settings are typed and checked once: every bad NEWSPIPE_* variable is named in one line, and
the code that uses them reads the same defaults the table documents."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields, replace

import pytest

from pipeline.core import Core
from pipeline.dedup.deduper import Deduper
from pipeline.settings import CHOICES, Settings, SettingsError


def test_defaults_are_valid_and_round_trip_through_the_environment() -> None:
    s = Settings()
    assert Settings.from_env(s.to_env()) == s


def test_values_are_converted_to_the_field_types() -> None:
    s = Settings.from_env(
        {
            "NEWSPIPE_BATCH_SIZE": "500",
            "NEWSPIPE_BATCH_TIMEOUT_S": "0.25",
            "NEWSPIPE_DROP_NEAR_DUPLICATES": "yes",
            "NEWSPIPE_STORE": "rocksdb://",
            "NEWSPIPE_STATE_DIR": "/tmp/x",
        }
    )
    assert (s.batch_size, s.batch_timeout_s, s.drop_near_duplicates) == (500, 0.25, True)
    assert s.store == "rocksdb://" and str(s.state_dir) == "/tmp/x"


def test_every_bad_variable_is_named_with_its_value_in_one_error() -> None:
    env = {
        "NEWSPIPE_BATCH_SIZE": "abc",
        "NEWSPIPE_BATCH_TIMEOUT_S": "soon",
        "NEWSPIPE_DROP_NEAR_DUPLICATES": "maybe",
    }
    with pytest.raises(SettingsError) as err:
        Settings.from_env(env)
    assert err.value.problems == [
        "NEWSPIPE_DROP_NEAR_DUPLICATES=maybe: not a boolean (true/false)",
        "NEWSPIPE_BATCH_SIZE=abc: not an integer",
        "NEWSPIPE_BATCH_TIMEOUT_S=soon: not a number",
    ]


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("NEWSPIPE_STORE", "redis://", "is not one of memory://, rocksdb://"),
        ("NEWSPIPE_LOG_LEVEL", "loud", "is not one of debug, info, warning, error"),
        ("NEWSPIPE_KAFKA_SECURITY_PROTOCOL", "TLS", "is not one of PLAINTEXT"),
        ("NEWSPIPE_KAFKA_SASL_MECHANISM", "GSSAPI", "is not one of '', PLAIN"),
        ("NEWSPIPE_PROCESSING_GUARANTEE", "maybe_once", "is not one of at_least_once"),
        ("NEWSPIPE_PARTITIONS", "0", "must be above zero"),
        ("NEWSPIPE_BATCH_SIZE", "-5", "must be above zero"),
        ("NEWSPIPE_BATCH_TIMEOUT_S", "nan", "is not a finite number"),
        ("NEWSPIPE_TRANSACTION_INTERVAL_S", "-0.1", "must be zero or above"),
        ("NEWSPIPE_TRANSACTION_INTERVAL_S", "60", "must be at most 5"),
        ("NEWSPIPE_WEB_PORT", "70000", "is not a port number"),
        ("NEWSPIPE_NEAR_DUP_THRESHOLD", "1.5", "must be at most 1"),
    ],
)
def test_values_outside_their_range_or_choices_are_refused(name: str, value: str, says: str):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: value})
    (line,) = err.value.problems
    assert line.startswith(f"{name}={value}: ") and says in line, line


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(SettingsError, match="NEWSPIPE_STORE"):
        replace(Settings(), store="redis://")  # type: ignore[arg-type]


def test_enumerated_settings_default_to_one_of_their_choices() -> None:
    defaults = Settings()
    assert {name: getattr(defaults, name) in values for name, values in CHOICES.items()} == {
        name: True for name in CHOICES
    }
    assert set(CHOICES) <= {f.name for f in fields(Settings)}


def test_deduper_and_core_read_the_settings_not_their_own_fallbacks(monkeypatch) -> None:
    assert Deduper().threshold == Settings().near_dup_threshold
    monkeypatch.setenv("NEWSPIPE_NEAR_DUP_THRESHOLD", "0.55")
    monkeypatch.setenv("NEWSPIPE_COMMENT_HORIZON_S", "60")
    core = Core()
    assert core.deduper.threshold == 0.55 and core.deduper.comment_horizon_s == 60


def test_cli_turns_a_bad_setting_into_one_line_and_exit_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "topics", "list"],
        env={"NEWSPIPE_BATCH_SIZE": "abc", "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr == "newspipe: error: NEWSPIPE_BATCH_SIZE=abc: not an integer\n"


def test_batches_may_be_left_unpaced() -> None:
    assert Settings.from_env({"NEWSPIPE_TRANSACTION_INTERVAL_S": "0"}).transaction_interval_s == 0
