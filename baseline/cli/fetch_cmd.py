"""``baseline fetch CONFIG``: ingest only: choose, fetch and stage the scenes a run would read."""

from __future__ import annotations

from pathlib import Path

import click

EPILOG = """\b
Examples:
  baseline fetch configs/beijing-2nd-ring-s2.yaml
      search Earth Search, measure cloud over the city for every pass in the
      window, stage the clearest into scene.path and say which and why
  baseline fetch configs/paris-planetary-computer.yaml --json chosen.json
      the same with signed Planetary Computer URLs; what was chosen as JSON
  baseline fetch configs/demo-helsinki.yaml
      a local source: list the scenes the run would read

A later `baseline run` of the same config finds the staged scene and fetches
nothing. Credentials (Sentinel Hub) come from SH_CLIENT_ID / SH_CLIENT_SECRET
and are never printed. Exit status 4 when a source fails (unreachable,
refusing, rate-limiting beyond the retries), 2 for a config error.
"""


@click.command("fetch", epilog=EPILOG)
@click.argument("config", type=click.Path(path_type=Path))
@click.option("--scene", "scene_dir", type=click.Path(path_type=Path), default=None,
              help="Folder to stage into (default: the config's scene.path).")
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write what was chosen (scenes and their provenance) to this JSON file.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def command(config: Path, scene_dir: Path | None, json_out: Path | None, quiet: bool) -> None:
    """Choose, fetch and stage the scenes CONFIG's scene section asks for; run nothing else."""
    import json
    from zoneinfo import ZoneInfo

    from rich.console import Console

    from baseline.config import load_config
    from baseline.config.catalog import load_city
    from baseline.core.atomic import write_text_atomic
    from baseline.ingest.sources import area_of_interest, open_source

    cfg = load_config(config)
    city = load_city(cfg.catalog, cfg.city)
    bbox = cfg.scene.aoi or city.aoi_bbox
    aoi = None if bbox is None else area_of_interest(bbox, city.timezone)
    folder = (scene_dir or cfg.scene.path).resolve()
    scenes = open_source(cfg.scene, folder=folder, aoi=aoi, show_progress=not quiet).scenes()
    console = Console(stderr=True, soft_wrap=True)
    rows = []
    for scene in scenes:
        local = scene.acquired_at.astimezone(ZoneInfo(city.timezone))
        chosen = list(scene.provenance.get("acquisitions", []))  # type: ignore[call-overload]
        cloud = ", ".join(f"{a['cloud_fraction_over_city']:.1%}" for a in chosen if "cloud_fraction_over_city" in a)
        console.print(
            f"[bold]{scene.scene_id}[/bold] {scene.sensor} {scene.gsd_m:g} m, {scene.shape[1]} x {scene.shape[0]} px, "
            f"{local:%Y-%m-%d %a %H:%M} local ({city.timezone})" + (f", cloud over the city {cloud}" if cloud else "")
        )
        console.print(f"  {scene.href}")
        rows.append({"scene_id": scene.scene_id, "sensor": scene.sensor, "gsd_m": scene.gsd_m,
                     "href": str(scene.href), "sha256": scene.checksum,
                     "acquired_at_utc": scene.acquired_at.isoformat(), "acquired_at_local": local.isoformat(),
                     "provenance": scene.provenance})
    if json_out is not None:
        write_text_atomic(json_out, json.dumps({"config": str(config), "scenes": rows}, indent=2) + "\n")
