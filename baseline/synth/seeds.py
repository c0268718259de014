"""Lists of render seeds as the scripts take them: ``2025-2031``, ``2025,2026`` or ``7,101-105``."""

from __future__ import annotations

import argparse

from baseline.errors import InvalidValueError


def parse_seed_list(text: str) -> list[int]:
    """The seeds ``text`` names, in order; "" names none.

    Each comma-separated part is a seed or an inclusive range ``a-b`` with
    ``a <= b``. Anything else is an :class:`~baseline.errors.InvalidValueError`
    (a ``ValueError``) that quotes the part, so a mistyped list stops the
    script before it renders anything.
    """
    seeds: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        first, dash, last = part.partition("-")
        try:
            a, b = int(first), int(last) if dash else int(first)
        except ValueError:
            raise InvalidValueError("seed list", text, f"seeds or ranges like 7,101-105 ({part!r} is neither)") from None
        if a < 0 or b < a:
            raise InvalidValueError("seed list", text, f"non-negative seeds, ranges low to high ({part!r} is not)")
        seeds.extend(range(a, b + 1))
    return seeds


def seed_list_arg(text: str) -> list[int]:
    """:func:`parse_seed_list` as an argparse ``type`` (its error becomes argparse's usage error)."""
    try:
        return parse_seed_list(text)
    except InvalidValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def seed_list_text(seeds: list[int]) -> str:
    """The shortest text :func:`parse_seed_list` reads back as ``seeds`` (runs as ranges): for cards and logs."""
    parts: list[str] = []
    i = 0
    while i < len(seeds):
        j = i
        while j + 1 < len(seeds) and seeds[j + 1] == seeds[j] + 1:
            j += 1
        parts.append(str(seeds[i]) if i == j else f"{seeds[i]}-{seeds[j]}")
        i = j + 1
    return ",".join(parts)
