"""The bench's file-cache warm-up: what a run imports, read once before timing, never failing the bench."""

from __future__ import annotations

import sys

from baseline.bench.measure import WARM_MODULES, _import_modules, warm_file_cache


def test_warm_up_imports_what_a_run_imports_and_skips_what_is_missing() -> None:
    sys.modules.pop("colorsys", None)
    _import_modules(("colorsys", "no_such_library_here"))  # a missing optional library is not an error
    assert "colorsys" in sys.modules
    assert "torch" in WARM_MODULES and "baseline.run.pipeline" in WARM_MODULES


def test_warm_up_runs_in_a_throwaway_process() -> None:
    sys.modules.pop("this", None)
    seconds = warm_file_cache(("this",))  # the Zen of Python prints when imported: only in the child
    assert seconds > 0.0
    assert "this" not in sys.modules
