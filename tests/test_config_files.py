"""config_files.py: the settings file's keys are checked and its paths resolved against it."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.config.files import read_settings_file
from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import ConfigError


def test_paths_in_the_file_are_relative_to_it_and_absolute_ones_stay(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "app.yaml"
    path.parent.mkdir()
    path.write_text(
        "prompts_dir: prompts\ncache_dir: /var/cache/sa\n"
        "reference:\n  roles: r.json\n  catalogues: [a.json, /x/b.json]\n"
    )
    data = read_settings_file(path, Settings)
    assert data["prompts_dir"] == str(tmp_path / "conf" / "prompts")
    assert data["cache_dir"] == "/var/cache/sa"
    assert data["reference"] == {
        "roles": str(tmp_path / "conf" / "r.json"),
        "catalogues": [str(tmp_path / "conf" / "a.json"), "/x/b.json"],
    }
    assert read_settings_file(tmp_path / "missing.yaml", Settings) == {}


def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- model\n")
    with pytest.raises(ConfigError, match="must hold a mapping of settings"):
        read_settings_file(path, Settings)
