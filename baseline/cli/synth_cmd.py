"""``baseline synth``: render a synthetic scene of a real city map, with exact ground truth.

Thin layer over :func:`baseline.synth.render_scene` and
:func:`baseline.synth.write_scene`: parses options, shows progress on stderr
and prints a short summary. Heavy imports happen inside the command so that
``baseline --help`` stays fast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from baseline.errors import InvalidValueError

if TYPE_CHECKING:
    from baseline.synth import RenderResult

EPILOG = """\b
Examples:
  baseline synth --city helsinki --out scenes/helsinki
      the default scene: central Helsinki at 0.3 m, 2024-06-14 09:30 UTC, sun computed
  baseline synth --city helsinki --out scenes/h-s7 --seed 7 --clouds 0.2
      another scene of the same map: other traffic, heights and 20% cloud
  baseline synth --city helsinki --out scenes/h-low --sun-elevation 25 --sun-azimuth 220
      a low afternoon sun: long shadows towards the north-east
  baseline synth --city helsinki --out scenes/h-dense --seed 2027 --dense-parking
      kerbs and car parks nearly full, cars bumper to bumper
  baseline synth --city helsinki --out scenes/h-crop --bbox 385700,6672000,386000,6672300
      only a 300 m square (UTM metres, EPSG:32635), for quick looks and training chips
  baseline synth --city helsinki --out scenes/kalasatama \\
      --buildings ../shared/data/helsinki_3d_buildings/helsinki_3d_lod2_buildings_wgs84.geojson
      real footprints with measured heights (column auto-detected), any CRS

\b
Writes vhr.tif (COG: blue, green, red, NIR x 10000), s2.tif (COG: B02 B03 B04
B08 SCL at 10 m), their STAC Items vhr.json and s2.json, truth/*.parquet
(GeoParquet), preview.png and render.json; see docs/contracts.md.
"""


def _bbox(text: str | None) -> tuple[float, float, float, float] | None:
    if text is None:
        return None
    try:
        parts = tuple(float(v) for v in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4:
        raise InvalidValueError("bbox", text, "four numbers xmin,ymin,xmax,ymax in the scene's UTM metres")
    return parts  # type: ignore[return-value]


@click.command("synth", epilog=EPILOG)
@click.option("--city", default="helsinki", show_default=True, help="City whose OpenStreetMap extract is drawn.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Scene folder to write (created; files in it are replaced).")
@click.option("--gsd", type=float, default=0.3, show_default=True, help="VHR ground sampling distance, metres.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed: same seed, same pixels.")
@click.option("--sun-elevation", type=float, default=None, help="Sun elevation, degrees in (0, 90] [default: from --time].")
@click.option("--sun-azimuth", type=float, default=None, help="Sun azimuth, compass degrees [default: from --time].")
@click.option("--time", "when", default="2024-06-14T09:30:00Z", show_default=True,
              help="Acquisition instant, ISO 8601 (UTC if no offset).")
@click.option("--clouds", type=float, default=0.0, show_default=True, help="Fraction of the scene under cloud, 0 to 1.")
@click.option("--buildings", "buildings_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Footprints to draw instead of the OSM buildings (GeoJSON, GeoPackage, GeoParquet; any CRS).")
@click.option("--height-column", default=None,
              help="Height column of --buildings [default: first of height_m, height, measured_height_m, HEIGHT].")
@click.option("--bbox", default=None, help="Render only xmin,ymin,xmax,ymax (UTM metres) of the scene.")
@click.option("--no-vehicles", is_flag=True, help="Draw no vehicles (the same scene, empty of traffic).")
@click.option("--dense-parking", is_flag=True,
              help="Fill kerbs and car parks almost completely, cars bumper to bumper (the packed-car test case).")
def synth(city: str, out_dir: Path, gsd: float, seed: int, sun_elevation: float | None, sun_azimuth: float | None,
          when: str, clouds: float, buildings_path: Path | None, height_column: str | None, bbox: str | None,
          no_vehicles: bool, dense_parking: bool) -> None:
    """Render a synthetic VHR + Sentinel-2 scene of a real city map, with exact truth."""
    from baseline.synth import STEPS, RenderParams, parse_time, render_scene, write_scene

    started = time.perf_counter()
    params = RenderParams(
        city=city, seed=seed, gsd_m=gsd, time=parse_time(when), sun_elevation_deg=sun_elevation,
        sun_azimuth_deg=sun_azimuth, clouds=clouds, buildings_path=buildings_path,
        height_column=height_column, bbox=_bbox(bbox), vehicles=not no_vehicles,
        parking="dense" if dense_parking else "usual",
    )
    with _progress(len(STEPS) + 1) as advance:
        result = render_scene(params, progress=advance)
        advance("write")
        files = write_scene(result, out_dir)
    _summary(result, files, out_dir, time.perf_counter() - started)


command = synth


class _progress:
    """A rich progress bar on stderr, advanced once per rendering step.

    Shown only when stderr is a terminal, and wiped if the render fails, so an
    error stays the one line ``main()`` prints.
    """

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        console = Console(stderr=True)
        self.bar = Progress(SpinnerColumn(), TextColumn("synth: {task.description:<11}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                            console=console, disable=not console.is_terminal)
        self.task = self.bar.add_task("start", total=total)
        self.started = False

    def __enter__(self) -> _progress:
        self.bar.start()
        return self

    def __call__(self, step: str) -> None:
        if self.started:
            self.bar.advance(self.task)
        self.started = True
        self.bar.update(self.task, description=step)

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.bar.update(self.task, completed=self.bar.tasks[0].total, description="done")
        else:
            self.bar.live.transient = True
        self.bar.stop()


def _summary(result: RenderResult, files: dict[str, Path], out_dir: Path, seconds: float) -> None:
    c = result.counts()
    g = result.vhr_grid
    click.echo(
        f"scene {result.scene_id()}: {c['buildings']} buildings, {c['vehicles']} vehicles "
        f"({c['on_road']} on the road: {c['moving']} moving, {c['queued']} queued; "
        f"{c['parked']} parked: {c['kerb']} at kerbs, {c['car_park']} in car parks; {c['large']} large)"
    )
    click.echo(
        f"sun {result.sun_elevation_deg:.1f} deg elevation, {result.sun_azimuth_deg:.1f} deg azimuth "
        f"({result.sun_source}); cloud cover {result.cloud_cover_pct:.1f}%"
    )
    click.echo(f"wrote {len(files)} files to {out_dir}: {', '.join(sorted(files))}")
    click.echo(f"vhr.tif {g.width}x{g.height} px at {g.gsd:g} m ({g.crs.to_string()}); {seconds:.1f} s")
