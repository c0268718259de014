"""Publish one run: tables, report, then the manifest, in that order.

The manifest is written last and lists every output's checksum, so it is the
mark of a complete run: a run killed while publishing leaves no manifest (or
the previous run's, whose checksums no longer match), and the next run
publishes again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import geopandas as gpd

from baseline import __version__
from baseline.core.geoparquet import write_geoparquet
from baseline.core.hashing import sha256_file
from baseline.publish.manifest import write_manifest
from baseline.publish.report import write_report
from baseline.publish.report_pdf import write_report_pdf
from baseline.publish.tables import publish_tables


def _model_entry(card: dict[str, Any]) -> dict[str, Any]:
    evaluation = card.get("evaluation") or {}
    return {
        "name": card["name"],
        "version": card["version"],
        "task": card["task"],
        "precision": evaluation.get("precision"),
        "recall": evaluation.get("recall"),
        "f1": evaluation.get("f1"),
        "weights_sha256": card.get("weights_sha256"),
    }


def _trucks_note(trucks: gpd.GeoDataFrame, city: gpd.GeoDataFrame) -> str:
    """The report's line on Sentinel-2 trucks: relative traffic per road length, not a count of vehicles."""
    road_km = float(city["road_length_km"].iloc[0]) if len(city) and "road_length_km" in city else 0.0
    rate = f", {len(trucks) / road_km:.2f} per road-km" if road_km > 0 else ""
    return (f"Sentinel-2: {len(trucks)} moving truck(s) seen on the roads{rate} (trucks_s2.parquet). This is "
            "relative traffic from the 10 m bands' timing: only large moving vehicles show, so it is not a count "
            "of vehicles")


def publish_run(
    out: Path,
    *,
    config: Any,
    run_key: str,
    buildings: gpd.GeoDataFrame,
    vehicles: gpd.GeoDataFrame,
    indicators: Any,
    context: Any,
    aoi: Any,
    scenes: list[Any],
    cards: list[dict[str, Any]],
    timings: dict[str, float],
    city: Any,
    failed_tiles: list[dict[str, Any]] | None = None,
    inference: list[str] | None = None,
    trucks: gpd.GeoDataFrame | None = None,
    trucks_model: dict[str, Any] | None = None,
    extra_models: list[dict[str, Any]] | None = None,
) -> dict[str, Path]:
    """Write every output of a run into ``out``; return them by name.

    ``config`` is the :class:`~baseline.config.RunConfig`, ``indicators`` the
    aggregate stage's :class:`~baseline.aggregate.Indicators`, ``context`` the
    :class:`~baseline.context.osm.MapContext`, ``cards`` the models' cards;
    ``failed_tiles`` lists tiles that failed (they count as no coverage) and
    goes into the manifest and the report's notes; ``inference`` says how the
    networks ran on the workers (device, precision, layout), for the manifest;
    ``trucks`` are moving trucks seen in a Sentinel-2 scene (``trucks_s2.parquet``),
    reported as relative traffic, never as a vehicle count, and ``trucks_model``
    the manifest entry of the network that found them; ``extra_models`` are
    manifest entries of other networks the run used (the Sentinel-2 area path's).
    """
    failed_tiles = failed_tiles or []
    notes = list(indicators.notes)
    if failed_tiles:
        notes.append(
            f"{len(failed_tiles)} tile(s) failed and count as area without coverage: "
            + ", ".join(f["tile_id"] for f in failed_tiles) + " (see manifest.json, extra.failed_tiles)"
        )
    t0 = time.perf_counter()
    out = Path(out)
    outputs = dict(
        publish_tables(
            out, buildings, vehicles, indicators.city, indicators.h3, indicators.district,
            run_id=run_key, code_version=__version__,
        )
    )
    if trucks is not None:
        outputs["trucks_s2.parquet"] = write_geoparquet(trucks, out / "trucks_s2.parquet")
        notes.append(_trucks_note(trucks, indicators.city))
    models = [_model_entry(c) for c in cards] + list(extra_models or [])
    models += [trucks_model] if trucks is not None and trucks_model else []
    car_parc = indicators.city.iloc[0] if len(indicators.city) else None
    if config.publish.report:
        outputs["report.html"] = write_report(
            out,
            buildings=buildings,
            vehicles=vehicles,
            indicators_city=indicators.city,
            indicators_h3=indicators.h3,
            roads=context.carriageways,
            aoi=gpd.GeoSeries([aoi], crs=context.crs),
            context={
                "title": f"City baseline: {city.display_name}",
                "city_name": city.display_name,
                "timezone": city.timezone,
                "run_id": run_key,
                "config_hash": config.config_hash(),
                "code_version": __version__,
                "scene_ids": [s.scene_id for s in scenes],
                "privacy_min_vehicles": config.aggregate.min_vehicles_per_cell,
                "notes": notes,
                "models": models,
                "car_parc": None if car_parc is None else {
                    "value": car_parc.get("car_parc_registered"),
                    "year": car_parc.get("car_parc_year"),
                    "source": car_parc.get("car_parc_source"),
                    "note": car_parc.get("car_parc_note"),
                    "illustrative": car_parc.get("car_parc_illustrative"),
                },
            },
        )
        if config.publish.pdf:
            pdf = write_report_pdf(outputs["report.html"])
            if pdf is not None:
                outputs["report.pdf"] = pdf
    timings["publish"] = round(time.perf_counter() - t0, 2)
    outputs["manifest.json"] = write_manifest(
        out,
        config=config.model_dump(mode="json"),
        config_hash=config.config_hash(),
        code_version=__version__,
        models=models,
        inputs=[{"scene_id": s.scene_id, "sensor": s.sensor, "href": str(s.href), "sha256": s.checksum,
                 **({"provenance": s.provenance} if getattr(s, "provenance", None) else {})} for s in scenes],
        stage_timings_s=timings,
        outputs={p.name: sha256_file(p) for name, p in outputs.items()},
        extra={"run_digest": run_key, "notes": notes, "failed_tiles": failed_tiles, "inference": inference or []},  # not "*_key": keys ending so are redacted
    )
    return outputs
