"""The run config: what ``baseline run CONFIG`` reads.

Every section forbids unknown keys and every field says what it is for, so a
typo is an error that names the field rather than a silent default. Paths are
resolved against the config file's folder. ``schema_version`` is checked first.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from baseline.errors import ConfigError, InputFileError

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RenderSpec(_Strict):
    """How to render the scene when ``scene.path`` does not exist yet."""

    city: str = Field("helsinki", description="City whose OSM extract is rendered.")
    seed: int = Field(7, description="Renderer seed; the shipped models never saw this one.")
    gsd_m: float = Field(0.3, gt=0, description="Very-high-resolution pixel size in metres.")
    time: datetime | None = Field(None, description="Acquisition instant (UTC); default: the renderer's.")
    sun_elevation_deg: float | None = Field(None, gt=0, le=90, description="Sun elevation; default from time and place.")
    sun_azimuth_deg: float | None = Field(None, ge=0, lt=360, description="Sun azimuth; default from time and place.")
    clouds: float = Field(0.0, ge=0, le=1, description="Cloud fraction to draw.")


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class HttpSpec(_Strict):
    """How remote sources talk HTTP: bounded waits, and retries that back off."""

    timeout_s: float = Field(20.0, gt=0, description="Connect and read timeout of one request, seconds.")
    max_retries: int = Field(4, ge=0, description="Retries of a request answered 429 or 5xx, or cut off.")
    backoff_s: float = Field(0.5, ge=0, description="First wait before a retry; doubles each time, with jitter.")
    backoff_max_s: float = Field(20.0, gt=0, description="Longest single wait, also the cap on a server's Retry-After.")
    deadline_s: float = Field(
        300.0, gt=0, description="Give up on a source after this long in all (search, signing, reading), seconds."
    )


class SelectionSpec(_Strict):
    """Which acquisitions a remote source may use, and how one is chosen."""

    start: date | None = Field(None, description="First acquisition date (inclusive, local time of the city).")
    end: date | None = Field(None, description="Last acquisition date (inclusive).")
    max_cloud_fraction: float = Field(
        0.5, ge=0, le=1, description="Drop acquisitions cloudier than this, measured over the city (not the tile)."
    )
    min_coverage: float = Field(0.5, gt=0, le=1, description="Drop acquisitions that image less of the city than this.")
    weekdays: list[Weekday] | None = Field(None, description="Keep acquisitions on these local weekdays, e.g. [mon, tue].")
    local_hours: tuple[Annotated[int, Field(ge=0, le=24)], Annotated[int, Field(ge=0, le=24)]] | None = Field(
        None,
        description="Keep acquisitions whose local hour h has start <= h < end, e.g. [7, 10] for the morning rush "
        "([22, 2] wraps past midnight).",
    )
    strategy: Literal["least-cloudy", "median"] = Field(
        "least-cloudy",
        description="least-cloudy: the one clearest acquisition over the city; median: a clear-pixel median "
        "composite of every kept acquisition (Sentinel-2 and Landsat only).",
    )
    max_items: int = Field(200, ge=1, description="Read at most this many search results.")


class StacSpec(_Strict):
    """A STAC API (Earth Search, Microsoft Planetary Computer, or any other)."""

    endpoint: str = Field("https://earth-search.aws.element84.com/v1", description="STAC API root URL.")
    collections: list[str] = Field(["sentinel-2-l2a"], min_length=1, description="Collections to search.")
    signing: Literal["none", "planetary-computer"] = Field(
        "none", description="planetary-computer: sign asset URLs with SAS tokens, re-signed before they expire."
    )
    sas_endpoint: str = Field(
        "https://planetarycomputer.microsoft.com/api/sas/v1/token",
        description="Token service for signing='planetary-computer' (GET <sas_endpoint>/<collection>).",
    )
    gsd_m: float | None = Field(None, gt=0, description="Pixel size to stage at; default the collection's finest band.")
    l1c_collection: str = Field(
        "sentinel-2-l1c", description="Sentinel-2 L1C collection whose bands s2cloudless reads (masks.cloud)."
    )


class SentinelHubSpec(_Strict):
    """Sentinel Hub Process API (sentinelhub-py). Credentials come from the environment, never the config."""

    base_url: str = Field("https://services.sentinel-hub.com", description="Sentinel Hub deployment URL.")
    token_url: str | None = Field(
        None, description="OAuth token URL; default the deployment's (<base_url>/auth/realms/main/...)."
    )
    collection: str = Field(
        "sentinel-2-l2a",
        description="sentinel-2-l2a, landsat-ot-l2, or byoc-<id> / batch-<id> for a very-high-resolution collection.",
    )
    profile: str | None = Field(None, description="sentinelhub-py config profile holding the credentials.")
    gsd_m: float | None = Field(None, gt=0, description="Pixel size to request; default 10 m (S2), 30 m (Landsat).")


class MaskSpec(_Strict):
    """Which pixels are usable."""

    cloud: Literal["auto", "classes", "s2cloudless", "none"] = Field(
        "auto",
        description="auto/classes: the product's own classes (Sentinel-2 SCL, Landsat QA_PIXEL); "
        "s2cloudless: Sentinel Hub's cloud probability model on Sentinel-2 bands; none: keep every pixel.",
    )
    s2cloudless_threshold: float = Field(0.4, gt=0, lt=1, description="Cloud probability above which a pixel is cloud.")


class SceneSpec(_Strict):
    """Where the imagery comes from (DESIGN.md, ingest)."""

    source: Literal["local", "archive", "stac", "sentinelhub"] = Field(
        "local",
        description="local: COG + STAC sidecars (the demo); archive: folders of GeoTIFF/COG/JP2 with STAC Items "
        "or vendor metadata; stac: a STAC API; sentinelhub: the Sentinel Hub Process API.",
    )
    path: Path = Field(
        ...,
        description="local/archive: the folder read; stac/sentinelhub: where fetched scenes are staged "
        "(relative to the config file).",
    )
    aoi: tuple[float, float, float, float] | None = Field(
        None, description="Area to fetch as [west, south, east, north] in degrees; default the city's catalog AOI."
    )
    render_if_missing: RenderSpec | None = Field(
        None, description="Render the scene with these settings when the folder has no imagery."
    )
    selection: SelectionSpec = SelectionSpec()
    masks: MaskSpec = MaskSpec()
    stac: StacSpec = StacSpec()
    sentinelhub: SentinelHubSpec = SentinelHubSpec()
    http: HttpSpec = HttpSpec()


class PreprocessSpec(_Strict):
    """Cutting the scene into chips on the Dask cluster."""

    tile_px: int = Field(2048, ge=256, description="Side of a tile of the city grid, in pixels (unit of work).")
    whole_window: list[Literal["buildings", "vehicles"]] = Field(
        ["vehicles"], description="Detectors that see a tile's whole window (the tile and its halo, cropped to valid "
        "pixels) in one pass: every pixel computed once, no chip seams. The others cut the model card's overlapping "
        "chips, whose blended overlaps the building model's post-processing was tuned on: whole windows made the "
        "building figures slightly worse (README: Performance). Needs the device memory for a whole window.",
    )
    chip_px: int = Field(512, ge=64, description="Side of a model chip in pixels, at the model's GSD, where the "
                         "model card gives none (detectors not in whole_window).")
    overlap_px: int = Field(96, ge=0, description="Overlap between neighbouring chips, pixels.")
    max_cloud_fraction: float = Field(0.9, ge=0, le=1, description="Skip chips cloudier than this.")


class JobqueueSpec(_Strict):
    """A SLURM or PBS batch cluster (dask-jobqueue): what each job asks the scheduler for."""

    jobs: int = Field(1, ge=1, description="Batch jobs to start; each runs `processes` Dask workers.")
    queue: str | None = Field(None, description="Partition (SLURM) or queue (PBS).")
    account: str | None = Field(None, description="Account or project charged.")
    walltime: str = Field("02:00:00", description="Wall-clock limit per job, HH:MM:SS.")
    cores: int = Field(8, ge=1, description="CPU cores per job.")
    memory: str = Field("32GiB", description="Memory per job.")
    processes: int = Field(1, ge=1, description="Dask worker processes per job (one per GPU is usual).")
    gpus: int = Field(0, ge=0, description="GPUs per job; workers then declare a GPU resource.")
    job_extra_directives: list[str] = Field(
        default_factory=list, description="Extra #SBATCH/#PBS lines, e.g. '--constraint=a100'."
    )
    job_script_prologue: list[str] = Field(
        default_factory=list, description="Shell lines run before the worker starts, e.g. 'source .venv/bin/activate'."
    )
    interface: str | None = Field(None, description="Network interface the workers and scheduler use (e.g. ib0).")


class ClusterSpec(_Strict):
    """The Dask cluster the run uses."""

    kind: Literal["local", "cuda", "slurm", "pbs"] = Field(
        "local",
        description="local: process workers on this machine; cuda: one worker per GPU (dask-cuda); "
        "slurm/pbs: batch jobs (dask-jobqueue). Ignored when `address` is set.",
    )
    address: str | None = Field(None, description="Existing scheduler address; default: start a cluster of `kind`.")
    host: str = Field("127.0.0.1", description="Where a started scheduler listens; loopback unless told otherwise.")
    n_workers: int = Field(2, ge=1, description="Local process workers.")
    threads_per_worker: int = Field(1, ge=1, description="Threads per worker (torch threads too).")
    memory_limit: str = Field("6GiB", description="Memory limit per local worker.")
    gpus_per_worker: int = Field(
        0, ge=0, description="GPU resource each local worker declares; >0 (or detect.device cuda) sends tiles only to GPU workers."
    )
    tiles_per_gpu: int = Field(
        1, ge=1,
        description="Tiles a GPU worker runs at once, on its threads (threads_per_worker at least this), sharing "
        "its GPU and models: each GPU worker declares this many GPU resources and each tile asks for one. Raise it "
        "where one GPU worker serves a whole GPU (kind cuda, jobqueue): the CPU post-processing, not the GPU, "
        "bounds a tile (docs/performance.md).",
    )
    jobqueue: JobqueueSpec = JobqueueSpec()
    timeout_s: float = Field(120.0, gt=0, description="How long to wait for the scheduler and the first worker.")
    max_failed_fraction: float = Field(
        0.0, ge=0, lt=1,
        description="Publish when at most this fraction of tiles failed after retries (those tiles count as no "
        "coverage, and the run exits with status 8); above it nothing is published and the status is 7.",
    )


class DetectSpec(_Strict):
    """Which models run, and how."""

    buildings_model: str = Field("buildings-unet", description="Model name under models/.")
    buildings_version: str | None = Field(None, description="Model version; default the newest.")
    vehicles_model: str = Field("vehicles-centernet", description="Model name under models/.")
    vehicles_version: str | None = Field(None, description="Model version; default the newest.")
    batch_size: int = Field(8, ge=1, description="Chips per inference batch (with whole windows a batch holds one).")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where models run.")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="Numeric precision: auto is bf16 where the device runs it natively, else fp32."
    )
    channels_last: bool = Field(True, description="Run networks in channels-last memory layout (faster convolutions).")
    building_flips: Literal[1, 2, 4, 8] = Field(
        1, description="Average the building maps over this many mirror images of each chip (test-time augmentation). "
        "4 took the demo from 30 to 53 s on 2 CPU cores; it found more buildings (count error about 2 points "
        "smaller on three renders) but moved heights either way (README)."
    )
    building_score_min: float | None = Field(
        None, ge=0, le=1, description="Drop buildings scored below this; default keeps every instance found."
    )
    vehicle_score_min: float | None = Field(
        None, ge=0, le=1, description="Drop vehicles scored below this; default the model card's calibrated threshold."
    )
    surface_model: Path | None = Field(
        None, description="Raster of height above ground (an nDSM), or a DSM when ground_model is given; each "
        "building then takes the median inside its footprint (its image height stays where the raster has none; "
        "relative to the config file).",
    )
    ground_model: Path | None = Field(
        None, description="DTM on the surface model's grid, subtracted from it (relative to the config file).",
    )


class ClassifySpec(_Strict):
    """On-road versus parked."""

    max_heading_difference_deg: float = Field(
        30.0, ge=0, le=90, description="A vehicle on a carriageway counts as on the road when aligned within this."
    )


class AggregateSpec(_Strict):
    """Indicators."""

    h3_resolution: int = Field(9, ge=0, le=15, description="H3 resolution of the cell table.")
    min_vehicles_per_cell: int = Field(10, ge=0, description="Cells with fewer vehicles publish no vehicle figures.")
    min_valid_fraction: float = Field(0.5, ge=0, le=1, description="Cells less valid than this publish nothing.")


class PublishSpec(_Strict):
    """Outputs."""

    out: Path = Field(Path("runs/demo"), description="Run folder, relative to the config file.")
    report: bool = Field(True, description="Write report.html.")
    pdf: bool = Field(False, description="Also print report.pdf with headless Chromium, when present.")


class RunConfig(_Strict):
    """A whole run: which city, which imagery, how to process and publish."""

    schema_version: Literal[1] = Field(SCHEMA_VERSION, description="Config schema version.")
    name: str = Field(..., description="Run name, used in ids and the report.")
    city: str = Field(..., description="City in data_catalog/cities/.")
    catalog: Path = Field(Path("../data_catalog"), description="Data catalog folder, relative to the config file.")
    osm: Path | None = Field(None, description="OSM extract for road context; default: the city's catalog entry.")
    scene: SceneSpec
    preprocess: PreprocessSpec = PreprocessSpec()
    cluster: ClusterSpec = ClusterSpec()
    detect: DetectSpec = DetectSpec()
    classify: ClassifySpec = ClassifySpec()
    aggregate: AggregateSpec = AggregateSpec()
    publish: PublishSpec = PublishSpec()

    def resolved(self, base: Path) -> RunConfig:
        """Copy with every relative path made absolute against ``base``."""

        def fix(p: Path | None) -> Path | None:
            return None if p is None else (p if p.is_absolute() else (base / p).resolve())

        return self.model_copy(
            update={
                "catalog": fix(self.catalog),
                "osm": fix(self.osm),
                "scene": self.scene.model_copy(update={"path": fix(self.scene.path)}),
                "publish": self.publish.model_copy(update={"out": fix(self.publish.out)}),
                "detect": self.detect.model_copy(update={"surface_model": fix(self.detect.surface_model),
                                                         "ground_model": fix(self.detect.ground_model)}),
            }
        )

    def config_hash(self) -> str:
        """sha256 of the config's canonical JSON (after resolution): names the run's inputs."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def _format_validation(path: Path, exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: field {where!r}: {first['msg']}{more}"


def load_config(path: str | Path) -> RunConfig:
    """Read, validate and resolve a YAML run config."""
    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "config file not found", hint="see configs/ for examples")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputFileError(path, f"not valid YAML ({exc})") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    version = raw.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        raise ConfigError(
            f"{path}: schema_version {version!r} is not supported",
            hint=f"this citybaseline reads schema_version {SCHEMA_VERSION}",
        )
    try:
        config = RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_format_validation(path, exc)) from None
    return config.resolved(path.parent.resolve())
