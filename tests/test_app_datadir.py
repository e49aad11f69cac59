"""Faust's table files stay apart per app id, so two apps can share a state directory."""

from __future__ import annotations

from pathlib import Path

from pipeline.app import create_app, faust_datadir
from pipeline.settings import Settings


def test_each_app_id_keeps_its_trend_tables_in_its_own_directory(tmp_path: Path):
    one = Settings(app_id="news-a", state_dir=str(tmp_path), store="rocksdb://")
    two = Settings(app_id="news-b", state_dir=str(tmp_path), store="rocksdb://")
    dirs = {Path(create_app(s).conf.tabledir) for s in (one, two)}
    assert len(dirs) == 2
    for settings in (one, two):
        tables = Path(create_app(settings).conf.tabledir)
        assert tables.is_relative_to(faust_datadir(settings))
        # and apart from the app's own stage state, which the corruption handling may set aside
        assert not tables.is_relative_to(tmp_path / settings.app_id)
