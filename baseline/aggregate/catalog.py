"""Read a city's registered car parc from the data catalog (``data_catalog/cities/<city>.yaml``).

The catalog files belong to the run orchestrator; this module only reads the
``car_parc`` section, strictly: a missing field is an error that names the file
and the field, never a silent default, because the figure is quoted to planners.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from baseline.aggregate.types import CarParc
from baseline.errors import ConfigError, InputFileError, UnknownCityError

REQUIRED_CAR_PARC_FIELDS = ("value", "year", "source", "note", "illustrative")


def city_entry_path(catalog_dir: str | Path, city: str) -> Path:
    """Path of ``city``'s catalog entry; :class:`UnknownCityError` listing the known cities if absent."""
    cities = Path(catalog_dir) / "cities"
    path = cities / f"{city}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in cities.glob("*.yaml")) if cities.is_dir() else []
        raise UnknownCityError(city, known)
    return path


def read_city_entry(catalog_dir: str | Path, city: str) -> dict[str, Any]:
    """The parsed YAML mapping of ``city``'s catalog entry."""
    path = city_entry_path(catalog_dir, city)
    try:
        entry = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"not valid YAML ({exc})") from exc
    if not isinstance(entry, dict):
        raise ConfigError(f"{path}: expected a mapping of fields at the top level")
    return entry


def _field(section: Mapping[str, Any], name: str, kind: type, path: Path) -> Any:
    if name not in section or section[name] is None:
        raise ConfigError(
            f"{path}: car_parc has no field {name!r}",
            hint=f"car_parc needs {', '.join(REQUIRED_CAR_PARC_FIELDS)}",
        )
    value = section[name]
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{path}: car_parc.{name} = {value!r} is not allowed", hint="expected true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < 0:
            raise ConfigError(f"{path}: car_parc.{name} = {value!r} is not allowed", hint="expected a whole number")
        return int(value)
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{path}: car_parc.{name} must be non-empty text")
    return " ".join(value.split())


def load_car_parc(catalog_dir: str | Path, city: str) -> CarParc | None:
    """The registered car parc of ``city`` from ``catalog_dir/cities/<city>.yaml``.

    ``value: null`` says no registry count for the area is known yet: the
    entry must still say (``year``, ``source``, ``note``) what figure is
    wanted and where to get it, and the run then publishes no
    on-road-to-parc ratio (None here) rather than one from a guess.

    Raises :class:`UnknownCityError` when the catalog has no such city and
    :class:`ConfigError` when the entry has no ``car_parc`` or lacks one of
    ``value``, ``year``, ``source``, ``note``, ``illustrative``.
    """
    path = city_entry_path(catalog_dir, city)
    entry = read_city_entry(catalog_dir, city)
    section = entry.get("car_parc")
    if not isinstance(section, Mapping):
        raise ConfigError(
            f"{path}: no car_parc section",
            hint="add car_parc: {value, year, source, note, illustrative}",
        )
    if "value" in section and section["value"] is None:
        for name, kind in (("year", int), ("source", str), ("note", str)):
            _field(section, name, kind, path)
        return None
    value = _field(section, "value", int, path)
    if value == 0:
        raise ConfigError(f"{path}: car_parc.value is 0", hint="a registered car parc is a positive count")
    scope = section.get("scope", "city")
    return CarParc(
        value=value,
        year=_field(section, "year", int, path),
        source=_field(section, "source", str, path),
        note=_field(section, "note", str, path),
        illustrative=_field(section, "illustrative", bool, path),
        scope=str(scope),
    )
