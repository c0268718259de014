"""The code digest that keys a run: it moves with any change to the sources."""

from __future__ import annotations

from pathlib import Path

from baseline.core.hashing import code_digest


def test_code_digest_changes_with_a_source_edit_and_not_otherwise(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("X = 1\n")
    (tmp_path / "pkg" / "notes.txt").write_text("ignored")
    first = code_digest(tmp_path / "pkg")
    assert code_digest(tmp_path / "pkg") == first
    (tmp_path / "pkg" / "notes.txt").write_text("still ignored")
    assert code_digest(tmp_path / "pkg") == first
    (tmp_path / "pkg" / "a.py").write_text("X = 2\n")
    assert code_digest(tmp_path / "pkg") != first


def test_the_installed_package_has_a_digest() -> None:
    assert len(code_digest()) == 64
