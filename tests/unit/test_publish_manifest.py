"""write_manifest: provenance that round-trips, is written atomically and never holds a secret."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from baseline.errors import InputFileError, OutputError
from baseline.publish import read_manifest, redact_secrets, sha256_file, write_manifest

SECRETS = ("hunter2", "tok-123", "sk-live-abc", "AKIAEXAMPLE", "s3cr3t", "sigvalue")


def _config() -> dict:
    return {
        "city": "helsinki",
        "output": Path("runs/demo"),
        "imagery": {
            "source": "sentinelhub",
            "client_id": "public-client",
            "client_secret": "s3cr3t",
            "token": "tok-123",
            "stac": {"url": "https://user:hunter2@stac.example/search?limit=5&sig=sigvalue"},
        },
        "storage": [{"aws_access_key": "AKIAEXAMPLE", "region": "eu-north-1"}],
        "Api_Key": "sk-live-abc",
        "key_count": 3,
        "privacy": {"min_vehicles": 5},
    }


def _write(out_dir: Path, **overrides) -> Path:
    kwargs = dict(
        config=_config(),
        config_hash="ab" * 32,
        code_version="0.1.0+g1234567",
        models=[{"name": "vehicles-centernet", "version": "1.0", "sha256": "cd" * 32}],
        inputs=[{"scene_id": "helsinki-s7-vhr", "href": "scenes/vhr.tif", "sha256": "ef" * 32}],
        stage_timings_s={"ingest": 1.23456, "detect": np.float64(10.5)},
        outputs={"vehicles.parquet": "01" * 32, "buildings.parquet": "02" * 32},
        extra={"acquired_at": datetime(2024, 6, 14, 9, 30, tzinfo=UTC), "password": "hunter2"},
    )
    kwargs.update(overrides)
    return write_manifest(out_dir, **kwargs)


def test_manifest_round_trips(tmp_path):
    path = _write(tmp_path)
    assert path == tmp_path / "manifest.json"
    manifest = read_manifest(tmp_path)
    assert manifest == read_manifest(path)
    assert manifest["config_hash"] == "ab" * 32
    assert manifest["code_version"] == "0.1.0+g1234567"
    assert manifest["models"][0] == {"name": "vehicles-centernet", "version": "1.0", "sha256": "cd" * 32}
    assert manifest["inputs"] == [{"scene_id": "helsinki-s7-vhr", "href": "scenes/vhr.tif", "sha256": "ef" * 32}]
    assert manifest["stage_timings_s"] == {"ingest": 1.235, "detect": 10.5}
    assert list(manifest["outputs"]) == ["buildings.parquet", "vehicles.parquet"]
    assert manifest["config"]["city"] == "helsinki"
    assert manifest["config"]["output"] == "runs/demo"
    assert manifest["config"]["privacy"] == {"min_vehicles": 5}
    assert manifest["extra"]["acquired_at"] == "2024-06-14T09:30:00+00:00"
    assert "python" in manifest["environment"] and "numpy" in manifest["environment"]["libraries"]
    assert datetime.fromisoformat(manifest["created_at_utc"]).tzinfo is not None


def test_no_secret_reaches_the_file(tmp_path):
    text = _write(tmp_path).read_text()
    for secret in SECRETS:
        assert secret not in text, secret
    config = json.loads(text)["config"]
    assert config["imagery"]["client_secret"] == "***"
    assert config["imagery"]["token"] == "***"
    assert config["storage"][0]["aws_access_key"] == "***"
    assert config["Api_Key"] == "***"
    assert config["imagery"]["client_id"] == "public-client"  # not a secret
    assert config["key_count"] == 3  # "key" not at the end
    url = config["imagery"]["stac"]["url"]
    assert url.startswith("https://user:***@stac.example/search?") and "limit=5" in url and "sig=***" in url
    assert json.loads(text)["extra"]["password"] == "***"


def test_redact_secrets_does_not_touch_its_input():
    config = _config()
    redacted = redact_secrets(config)
    assert config["imagery"]["token"] == "tok-123"
    assert redacted["imagery"]["token"] == "***"


def test_sha256_file_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).bytes(3 * (1 << 20) + 17)  # spans several chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    with pytest.raises(InputFileError, match="file not found"):
        sha256_file(tmp_path / "missing.bin")


def test_inputs_must_carry_their_checksum(tmp_path):
    with pytest.raises(OutputError, match="input #0 lacks sha256"):
        _write(tmp_path, inputs=[{"scene_id": "a", "href": "a.tif"}])
    assert not (tmp_path / "manifest.json").exists()


def test_unserialisable_value_is_an_output_error_and_keeps_the_old_manifest(tmp_path):
    _write(tmp_path)
    before = (tmp_path / "manifest.json").read_bytes()
    with pytest.raises(OutputError, match="cannot be written as JSON"):
        _write(tmp_path, extra={"callback": object()})
    assert (tmp_path / "manifest.json").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_read_manifest_reports_bad_files(tmp_path):
    with pytest.raises(InputFileError, match="file not found"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InputFileError, match="not valid JSON"):
        read_manifest(tmp_path)
