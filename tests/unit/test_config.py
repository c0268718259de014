"""Run config: strict fields, resolved paths, and errors that name the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from baseline.config import load_config
from baseline.errors import ConfigError, InputFileError

REPO = Path(__file__).resolve().parents[2]


def test_demo_config_loads_and_resolves_paths():
    config = load_config(REPO / "configs" / "demo-helsinki.yaml")
    assert config.city == "helsinki"
    assert config.scene.path == (REPO / ".cache" / "scenes" / "demo-helsinki").resolve()
    assert config.publish.out.is_absolute()
    assert config.scene.render_if_missing.seed == 7
    assert len(config.config_hash()) == 64


def test_unknown_key_names_the_field(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncity: helsinki\nscene: {path: s}\ndetect: {batch_sise: 4}\n")
    with pytest.raises(ConfigError, match=r"detect\.batch_sise"):
        load_config(path)


def test_out_of_range_value(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncity: helsinki\nscene: {path: s}\naggregate: {h3_resolution: 22}\n")
    with pytest.raises(ConfigError, match="h3_resolution"):
        load_config(path)


def test_building_flips_takes_only_mirror_groups(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\ncity: helsinki\nscene: {path: s}\ndetect: {building_flips: 3}\n")
    with pytest.raises(ConfigError, match=r"detect\.building_flips"):
        load_config(path)
    path.write_text("name: x\ncity: helsinki\nscene: {path: s}\ndetect: {building_flips: 4}\n")
    assert load_config(path).detect.building_flips == 4


def test_wrong_schema_version(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("schema_version: 9\nname: x\ncity: helsinki\nscene: {path: s}\n")
    with pytest.raises(ConfigError, match="schema_version 9"):
        load_config(path)


def test_missing_file():
    with pytest.raises(InputFileError, match="config file not found"):
        load_config("no/such.yaml")
