"""Typed errors survive the trip from a Dask worker: type, message, exit code and fields intact."""

from __future__ import annotations

import pickle

import pytest

from baseline import errors
from baseline.errors import (
    BaselineError,
    InputFileError,
    InvalidValueError,
    TileFailuresError,
    UnknownCityError,
)


@pytest.mark.parametrize(
    "err",
    [
        InputFileError("/data/vhr.tif", "cannot read the pixels", hint="copy it again"),
        InvalidValueError("precision", "int4", "auto, fp32, bf16 or fp16"),
        UnknownCityError("atlantis", ["helsinki"]),
        TileFailuresError("2 of 8 tiles failed", hint="rerun"),
    ],
)
def test_errors_pickle_with_type_message_and_fields(err):
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is type(err)
    assert str(back) == str(err)
    assert back.exit_code == err.exit_code
    assert back.__dict__ == err.__dict__


def test_every_error_class_is_a_baseline_error_with_an_exit_code():
    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BaselineError)]
    assert len(classes) > 8
    assert all(isinstance(c.exit_code, int) and c.exit_code > 0 for c in classes)
    assert errors.PARTIAL_EXIT_CODE not in {c.exit_code for c in classes}
