"""STAC APIs: search with pystac-client, load with odc-stac, stage the city's area.

Sentinel-2 L2A and Landsat Collection 2 Level-2 from Earth Search (the
default), Microsoft Planetary Computer (asset URLs signed with SAS tokens,
re-signed before they expire) or any STAC API that serves Cloud-Optimized
GeoTIFFs.

How a scene is chosen (``scene.selection``):

1. search the collections over the city's box and date range (the local
   dates of the city, turned into UTC), the box split in two when it crosses
   the antimeridian;
2. keep acquisitions on the wanted local weekdays and hours;
3. group the items of one pass (one local day) and, for each pass, load only
   the class band (Sentinel-2 SCL, Landsat QA_PIXEL) at a coarse pixel over
   the city to measure its **cloud over the city** and how much of the city
   it images: a tile's ``eo:cloud_cover`` says nothing about a city that
   fills a tenth of it;
4. keep passes within ``max_cloud_fraction`` and ``min_coverage``; stage the
   least cloudy one, or a clear-pixel median of all of them.

Pixels are loaded by odc-stac (lazily, as Dask-backed xarray) onto the
city's UTM grid: nearest for class bands, average when coarsening
reflectance, bilinear otherwise. Items from other UTM zones, or from both
sides of the antimeridian, are reprojected onto it. Staging runs in strips of
rows, each loaded with freshly signed URLs, so memory stays flat and tokens
never expire mid-load.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time as clock
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pystac
import shapely
from pyproj import Transformer
from rasterio.features import geometry_mask

from baseline.core.scene import SENSOR_LANDSAT, SENSOR_S2, Scene
from baseline.errors import ConfigError, SourceError
from baseline.ingest.http import (
    Deadline,
    HttpPolicy,
    backoff_delays,
    gdal_env,
    http_session,
    public_url,
    request,
    retry_policy,
)
from baseline.ingest.selection import in_local_window
from baseline.ingest.signing import PlanetaryComputerSigner
from baseline.ingest.sources import AreaOfInterest
from baseline.ingest.staging import STAGE_SCALE, StagedMetadata, find_staged, stage_scene
from baseline.preprocess.masks import (
    CLOUD_MASK_CLEAR,
    CLOUD_MASK_CLOUD,
    QA_FILL,
    SCL_NODATA,
    class_band_unusable,
)

log = logging.getLogger(__name__)

SELECTION_GSD_M = 60.0  # pixel of the cloud-over-the-city measurement
STRIP_CHUNK = 1024


@dataclass(frozen=True)
class CollectionProfile:
    """How one collection's assets map onto the pipeline's bands.

    ``reflectance`` maps a common band name to the asset keys it may have
    (Earth Search and Planetary Computer name them differently);
    ``classes`` is the class band and its keys; ``scale``/``offset`` turn a
    stored value into reflectance where the Item's ``raster:bands`` does not say.
    """

    sensor: str
    reflectance: dict[str, tuple[str, ...]]
    classes: tuple[str, tuple[str, ...]]
    gsd_m: float
    scale: float
    offset: float


SENTINEL2 = CollectionProfile(
    SENSOR_S2,
    {"blue": ("blue", "B02"), "green": ("green", "B03"), "red": ("red", "B04"), "nir": ("nir", "B08")},
    ("scl", ("scl", "SCL")),
    10.0, 1e-4, 0.0,
)
LANDSAT = CollectionProfile(
    SENSOR_LANDSAT,
    {"blue": ("blue", "SR_B2"), "green": ("green", "SR_B3"), "red": ("red", "SR_B4"), "nir": ("nir08", "SR_B5")},
    ("qa_pixel", ("qa_pixel", "QA_PIXEL")),
    30.0, 2.75e-5, -0.2,
)


# s2cloudless's ten bands (all_bands=False), by L1C asset key on Planetary Computer style / Earth Search
S2CLOUDLESS_BANDS = {
    "B01": ("B01", "coastal"), "B02": ("B02", "blue"), "B04": ("B04", "red"), "B05": ("B05", "rededge1"),
    "B08": ("B08", "nir"), "B8A": ("B8A", "nir08"), "B09": ("B09", "nir09"), "B10": ("B10", "cirrus"),
    "B11": ("B11", "swir16"), "B12": ("B12", "swir22"),
}


def profile_for(collection: str) -> CollectionProfile:
    """The band profile of a collection id, by its family."""
    name = collection.lower()
    if name.startswith("sentinel-2") and "l2a" in name:
        return SENTINEL2
    if name.startswith("landsat") and ("c2-l2" in name or "c2l2" in name):
        return LANDSAT
    raise ConfigError(
        f"scene.stac.collections: {collection!r} is not a collection this source knows",
        hint="use a Sentinel-2 L2A collection (sentinel-2-l2a) or Landsat Collection 2 Level-2 (landsat-c2-l2)",
    )


@dataclass
class Acquisition:
    """The items of one pass over the city (one local day), and what was measured of it."""

    key: str
    items: list[pystac.Item]
    local_time: datetime
    cloud_fraction: float = float("nan")
    coverage: float = float("nan")
    l1c_items: list[pystac.Item] = field(default_factory=list)

    @property
    def acquired_at(self) -> datetime:
        return min(i.datetime for i in self.items if i.datetime is not None).astimezone(UTC)


class StacSource:
    """Scenes of the city from a STAC API, staged in ``folder``."""

    name = "stac"

    def __init__(self, spec: object, *, folder: Path, aoi: AreaOfInterest, show_progress: bool = True) -> None:
        self.spec = spec
        self.stac = spec.stac  # type: ignore[attr-defined]
        self.selection = spec.selection  # type: ignore[attr-defined]
        self.masks = spec.masks  # type: ignore[attr-defined]
        self.folder = Path(folder)
        self.aoi = aoi
        self.show_progress = show_progress
        self.policy = HttpPolicy.from_spec(spec.http)  # type: ignore[attr-defined]
        self.source = f"STAC API {public_url(self.stac.endpoint)}"
        profiles = [profile_for(c) for c in self.stac.collections]
        if len({p.sensor for p in profiles}) > 1:
            raise ConfigError("scene.stac.collections mixes sensors", hint="run Sentinel-2 and Landsat separately")
        self.profile = profiles[0]
        if self.masks.cloud == "s2cloudless" and self.profile.sensor != SENSOR_S2:
            raise ConfigError(
                "scene.masks.cloud 's2cloudless' works on Sentinel-2 only",
                hint="use cloud: classes (Landsat QA_PIXEL) for Landsat",
            )
        if self.selection.strategy == "median" and self.masks.cloud == "none":
            raise ConfigError("scene.selection.strategy 'median' needs a cloud mask", hint="set scene.masks.cloud: auto")
        self.gsd_m = float(self.stac.gsd_m or self.profile.gsd_m)
        self._signer: PlanetaryComputerSigner | None = None
        self._probe_session: object | None = None
        self._model_clouds: dict[str, tuple[np.ndarray, object]] = {}  # acquisition -> (s2cloudless mask, geobox)
        self._deadline = Deadline(self.policy.deadline_s, self.source)

    # -- the one public method -------------------------------------------------------------

    def scenes(self) -> list[Scene]:
        """Search, choose and stage; a scene staged before for the same request is reused."""
        deadline = self._deadline = Deadline(self.policy.deadline_s, self.source)
        self._configure_gdal()
        if self.stac.signing == "planetary-computer":
            self._signer = PlanetaryComputerSigner(self.stac.sas_endpoint, self.policy, deadline)
        items = self._search(deadline)
        acquisitions = self._group(self._in_time_windows(items))
        if not acquisitions:
            raise SourceError(
                f"{self.source}: no {', '.join(self.stac.collections)} acquisition over {self.aoi.bbox()} "
                f"{self._window_words()}",
                hint="widen scene.selection (dates, weekdays, local_hours)",
            )
        if self.masks.cloud == "s2cloudless":
            acquisitions = self._attach_l1c(acquisitions, deadline)
        kept = self._measure_and_keep(acquisitions, deadline)
        if self.selection.strategy == "median":
            return [self._stage(kept, deadline, composite=True)]
        best = min(kept, key=lambda a: (round(a.cloud_fraction, 4), -a.coverage, -a.acquired_at.timestamp()))
        return [self._stage([best], deadline, composite=False)]

    # -- search ----------------------------------------------------------------------------

    def _search(self, deadline: Deadline, collections: Sequence[str] | None = None) -> list[pystac.Item]:
        """Every item of the collections over the box and dates (two boxes across the antimeridian)."""
        from pystac_client import Client
        from pystac_client.errors import ClientTypeError
        from pystac_client.exceptions import APIError
        from pystac_client.stac_api_io import StacApiIO

        deadline.check("searching")
        io = StacApiIO(timeout=self.policy.timeout_s, max_retries=retry_policy(self.policy))
        west, south, east, north = self.aoi.bbox()
        boxes = [(west, south, 180.0, north), (-180.0, south, east, north)] if west > east else [self.aoi.bbox()]
        found: dict[str, pystac.Item] = {}
        try:
            client = Client.open(self.stac.endpoint, stac_io=io, timeout=self.policy.timeout_s)
            for box in boxes:
                search = client.search(
                    collections=list(collections or self.stac.collections), bbox=box, datetime=self._utc_range(),
                    max_items=self.selection.max_items, limit=min(100, self.selection.max_items),
                )
                for item in search.items():
                    found.setdefault(f"{item.collection_id}/{item.id}", item)
                    deadline.check("paging through search results")
        except APIError as exc:
            raise _api_error(exc, self.source) from None
        except ClientTypeError:
            raise SourceError(f"{self.source}: the landing page is not a STAC API catalog",
                              hint="check scene.stac.endpoint (the API root, e.g. .../v1)") from None
        log.info("%s: %d item(s) over the city %s", self.source, len(found), self._window_words())
        return sorted(found.values(), key=lambda i: (i.datetime or datetime.min.replace(tzinfo=UTC), i.id))

    def _utc_range(self) -> str | None:
        """The selection's local dates as an ISO interval in UTC (open ends as '..')."""
        tz = ZoneInfo(self.aoi.timezone)
        start = self.selection.start and datetime.combine(self.selection.start, time.min, tz).astimezone(UTC)
        end = self.selection.end and (datetime.combine(self.selection.end, time.min, tz) + timedelta(days=1)
                                      - timedelta(seconds=1)).astimezone(UTC)
        if start is None and end is None:
            return None
        fmt = "%Y-%m-%dT%H:%M:%SZ"
        return f"{start.strftime(fmt) if start else '..'}/{end.strftime(fmt) if end else '..'}"

    def _window_words(self) -> str:
        s = self.selection
        words = [f"from {s.start or 'any date'} to {s.end or 'now'}"]
        if s.weekdays:
            words.append(f"on {', '.join(s.weekdays)}")
        if s.local_hours:
            words.append(f"between {s.local_hours[0]:02d}:00 and {s.local_hours[1]:02d}:00 local time")
        return " ".join(words)

    def _in_time_windows(self, items: Sequence[pystac.Item]) -> list[pystac.Item]:
        """Items acquired on the wanted local weekdays and hours."""
        tz = ZoneInfo(self.aoi.timezone)
        return [item for item in items if item.datetime is not None
                and all(in_local_window(item.datetime, tz, self.selection.weekdays, self.selection.local_hours))]

    def _group(self, items: Sequence[pystac.Item]) -> list[Acquisition]:
        """One acquisition per collection and local day (the tiles of one pass)."""
        tz = ZoneInfo(self.aoi.timezone)
        groups: dict[str, Acquisition] = {}
        for item in items:
            local = item.datetime.astimezone(tz)
            key = f"{item.collection_id}-{local.date().isoformat()}"
            if key not in groups:
                groups[key] = Acquisition(key, [], local)
            groups[key].items.append(item)
        return list(groups.values())

    # -- choosing ---------------------------------------------------------------------------

    def _measure_and_keep(self, acquisitions: list[Acquisition], deadline: Deadline) -> list[Acquisition]:
        """Cloud over the city and coverage of each acquisition; those within the limits."""
        from odc.geo.geobox import GeoBox

        bounds = self._utm_bounds()
        coarse = GeoBox.from_bbox(bounds, self.aoi.crs, resolution=max(SELECTION_GSD_M, self.gsd_m))
        inside = self._aoi_mask(coarse)
        for acq in acquisitions:
            deadline.check(f"measuring cloud over the city on {acq.local_time.date()}")
            if self.masks.cloud == "none":
                in_image = self._load_strip(acq.items, [self._reflectance_keys(acq.items[0])[2]], coarse,
                                            "nearest")[0] > 0
                cloud = np.zeros_like(in_image)
            else:
                classes = self._load_strip(acq.items, [self._class_key(acq.items[0])], coarse, "nearest")[0]
                in_image, cloud = self._cloud(acq, classes, coarse)
            city = inside.sum()
            imaged = (in_image & inside).sum()
            acq.coverage = float(imaged / city) if city else 0.0
            acq.cloud_fraction = float((cloud & in_image & inside).sum() / imaged) if imaged else 1.0
            log.info("%s %s (local %s): cloud over the city %.1f%%, coverage %.1f%%", self.source, acq.key,
                     acq.local_time.strftime("%a %H:%M"), 100 * acq.cloud_fraction, 100 * acq.coverage)
        kept = [a for a in acquisitions if a.coverage >= self.selection.min_coverage
                and a.cloud_fraction <= self.selection.max_cloud_fraction]
        if not kept:
            seen = "; ".join(f"{a.key}: cloud {a.cloud_fraction:.0%}, coverage {a.coverage:.0%}" for a in acquisitions)
            raise SourceError(
                f"{self.source}: no acquisition is clear enough over the city "
                f"(max_cloud_fraction {self.selection.max_cloud_fraction}, min_coverage "
                f"{self.selection.min_coverage}); measured {seen}",
                hint="widen the dates, or raise scene.selection.max_cloud_fraction",
            )
        return kept

    def _cloud(self, acq: Acquisition, classes: np.ndarray, geobox: object) -> tuple[np.ndarray, np.ndarray]:
        """(in image, cloud) on ``geobox``: from the product's classes, or from s2cloudless."""
        in_image, cloud = self._decode_classes(classes)
        if self.masks.cloud == "s2cloudless":
            cloud = self._s2cloudless(acq, geobox) & in_image
        return in_image, cloud

    def _attach_l1c(self, acquisitions: list[Acquisition], deadline: Deadline) -> list[Acquisition]:
        """Pair each acquisition with the L1C items of the same pass (s2cloudless reads L1C bands)."""
        tz = ZoneInfo(self.aoi.timezone)
        by_day: dict[str, list[pystac.Item]] = {}
        for item in self._search(deadline, [self.stac.l1c_collection]):
            by_day.setdefault(item.datetime.astimezone(tz).date().isoformat(), []).append(item)
        paired = []
        for acq in acquisitions:
            acq.l1c_items = by_day.get(acq.local_time.date().isoformat(), [])
            if acq.l1c_items:
                paired.append(acq)
            else:
                log.warning("%s %s: no %s item of the same pass; s2cloudless cannot judge it, so it is left out",
                            self.source, acq.key, self.stac.l1c_collection)
        if not paired:
            raise SourceError(
                f"{self.source}: no {self.stac.l1c_collection} items match the {len(acquisitions)} "
                f"acquisition(s) found, and s2cloudless needs their L1C bands",
                hint="set scene.stac.l1c_collection to the endpoint's L1C collection, or use masks.cloud: classes",
            )
        return paired

    def _s2cloudless(self, acq: Acquisition, geobox: object) -> np.ndarray:
        """s2cloudless's cloud mask for ``acq`` sampled on ``geobox`` (computed once, at the selection pixel).

        The model reads ten L1C top-of-atmosphere bands at 60 m (its
        averaging and dilation are set for that pixel); the mask is then
        taken nearest-neighbour on any finer grid of the same CRS.
        """
        if acq.key not in self._model_clouds:
            from odc.geo.geobox import GeoBox
            from s2cloudless import S2PixelCloudDetector

            coarse = GeoBox.from_bbox(self._utm_bounds(), self.aoi.crs, resolution=SELECTION_GSD_M)
            item = acq.l1c_items[0]
            keys = [_asset_key(item, aliases, band, self.source) for band, aliases in S2CLOUDLESS_BANDS.items()]
            raw = self._load_strip(acq.l1c_items, keys, coarse, "bilinear")
            toa = np.empty(raw.shape, dtype=np.float32)
            for b, key in enumerate(keys):
                scale, offset, nodata = _scale_offset(item, key, SENTINEL2)
                toa[b] = np.where(raw[b] == nodata, 0.0, raw[b] * scale + offset)
            detector = S2PixelCloudDetector(threshold=self.masks.s2cloudless_threshold, average_over=2,
                                            dilation_size=1, all_bands=False)
            mask = detector.get_cloud_masks(np.clip(toa, 0, 1).transpose(1, 2, 0)[None])[0].astype(bool)
            self._model_clouds[acq.key] = (mask, coarse)
            log.info("%s %s: s2cloudless finds %.1f%% cloud over the box", self.source, acq.key, 100 * mask.mean())
        mask, coarse = self._model_clouds[acq.key]
        return _sample_nearest(mask, coarse, geobox)

    def _decode_classes(self, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(in image, cloud or shadow) from the class band."""
        if self.profile.sensor == SENSOR_S2:
            in_image = classes != SCL_NODATA
        else:
            in_image = (classes > 0) & ((classes.astype(np.uint32) >> QA_FILL) & 1 == 0)
        return in_image, class_band_unusable(self.profile.classes[0], classes) & in_image

    # -- staging ----------------------------------------------------------------------------

    def _stage(self, acquisitions: list[Acquisition], deadline: Deadline, *, composite: bool) -> Scene:
        """Write the chosen acquisition (or the composite of several) on the city's grid."""
        from odc.geo.geobox import GeoBox

        geobox = GeoBox.from_bbox(self._utm_bounds(), self.aoi.crs, resolution=self.gsd_m)
        rows, cols = geobox.shape.y, geobox.shape.x
        first = acquisitions[0]
        class_band = "cloud_mask" if self.masks.cloud == "s2cloudless" else self.profile.classes[0]
        names = ["blue", "green", "red", "nir"] + ([] if composite else [class_band])
        stage_key = self._stage_key(acquisitions, composite)
        scene_id = (f"{self.profile.sensor}-median-{acquisitions[0].local_time.date()}-"
                    f"{acquisitions[-1].local_time.date()}-{len(acquisitions)}" if composite
                    else first.key)
        staged = find_staged(self.folder, scene_id, stage_key)
        if staged is not None:
            log.info("%s: reusing %s staged earlier in %s", self.source, scene_id, self.folder)
            return staged
        lon, lat = self.aoi.centre
        sun_el, sun_az = _sun_angles(first.items[0], first.acquired_at, lon, lat)
        meta = StagedMetadata(
            scene_id=scene_id, sensor=self.profile.sensor, bands=tuple(names), acquired_at=first.acquired_at,
            sun_elevation_deg=sun_el, sun_azimuth_deg=sun_az, stage_key=stage_key,
            provenance=self._provenance(acquisitions, composite),
        )
        progress = _progress(rows, f"staging {scene_id}", self.show_progress)

        def read_rows(r0: int, r1: int) -> tuple[np.ndarray, np.ndarray]:
            deadline.check(f"reading rows {r0}-{r1} of {scene_id}")
            strip = geobox[r0:r1, :]
            if composite:
                return self._median_strip(acquisitions, strip)
            return self._single_strip(first, strip)

        log.info("%s: staging %s (%d x %d px at %g m) into %s", self.source, scene_id, cols, rows, self.gsd_m,
                 self.folder)
        try:
            return stage_scene(self.folder, meta, read_rows, crs=self.aoi.crs, transform=geobox.affine,
                               shape=(rows, cols), on_rows=progress.update)
        finally:
            progress.close()

    def _single_strip(self, acq: Acquisition, strip: object) -> tuple[np.ndarray, np.ndarray]:
        """Counts of blue, green, red, nir plus the class band for one strip of one acquisition."""
        keys = self._reflectance_keys(acq.items[0])
        class_key = self._class_key(acq.items[0])
        reflectance = self._reflectance(acq.items, keys, strip)
        classes = self._load_strip(acq.items, [class_key], strip, "nearest")[0]
        in_image = np.isfinite(reflectance).all(axis=0)
        if self.masks.cloud != "none":
            in_image &= self._decode_classes(classes)[0]
        counts = np.rint(np.nan_to_num(reflectance) / STAGE_SCALE).clip(1, 65535).astype(np.uint16)
        counts[:, ~in_image] = 0
        if self.masks.cloud == "s2cloudless":  # the model's mask replaces the product's classes
            cloud = self._cloud(acq, classes, strip)[1]
            classes = np.where(cloud, CLOUD_MASK_CLOUD, CLOUD_MASK_CLEAR)
        classes = np.where(in_image, classes, 0).astype(np.uint16)
        return np.concatenate([counts, classes[None]]), in_image

    def _median_strip(self, acquisitions: list[Acquisition], strip: object) -> tuple[np.ndarray, np.ndarray]:
        """Per-pixel median of the clear observations of every acquisition (NaN where none is clear)."""
        stack = []
        for acq in acquisitions:
            reflectance = self._reflectance(acq.items, self._reflectance_keys(acq.items[0]), strip)
            classes = self._load_strip(acq.items, [self._class_key(acq.items[0])], strip, "nearest")[0]
            in_image, cloud = self._cloud(acq, classes, strip)
            reflectance[:, ~in_image | cloud] = np.nan
            stack.append(reflectance)
        with np.errstate(all="ignore"), _quiet_all_nan():
            median = np.nanmedian(np.stack(stack), axis=0)
        valid = np.isfinite(median).all(axis=0)
        counts = np.rint(np.nan_to_num(median) / STAGE_SCALE).clip(1, 65535).astype(np.uint16)
        counts[:, ~valid] = 0
        return counts, valid

    def _reflectance(self, items: list[pystac.Item], keys: list[str], strip: object) -> np.ndarray:
        """Reflectance (band, y, x) float32 of one acquisition over ``strip``; NaN where no data."""
        coarsening = self.gsd_m > self.profile.gsd_m * 1.01
        raw = self._load_strip(items, keys, strip, "average" if coarsening else "bilinear")
        out = np.empty(raw.shape, dtype=np.float32)
        for b, key in enumerate(keys):
            scale, offset, nodata = _scale_offset(items[0], key, self.profile)
            band = raw[b].astype(np.float32) * scale + offset
            band[raw[b] == nodata] = np.nan
            out[b] = band
        return out

    def _load_strip(self, items: list[pystac.Item], keys: list[str], geobox: object, resampling: str) -> np.ndarray:
        """Bands ``keys`` of one acquisition's items on ``geobox`` as (band, y, x), via odc-stac.

        The load is lazy (Dask-backed) and computed here; URLs are signed for
        this load only. A 403 from signed storage is answered by re-signing
        once with a fresh token.
        """
        import odc.stac
        import rasterio.errors

        resigned = False
        for attempt in range(self.policy.max_retries + 1):
            ds = odc.stac.load(
                items, bands=keys, geobox=geobox, resampling=resampling, groupby="solar_day",
                chunks={"x": STRIP_CHUNK, "y": STRIP_CHUNK}, patch_url=self._patch_url(items[0]),
                fail_on_error=True,
            )
            try:
                return ds[keys].to_array("band").isel(time=0).compute(scheduler="threads").values
            except (rasterio.errors.RasterioIOError, RuntimeError, OSError) as exc:
                text = str(exc)
                status = _http_status(text)
                log.debug("%s: read failed (attempt %d): %s", self.source, attempt + 1, text)
                if status in (401, 403) and self._signer is not None and not resigned:
                    log.info("%s: storage refused a signed URL (HTTP %s); re-signing", self.source, status)
                    self._signer.refresh(items[0].collection_id or "")
                    resigned = True
                    continue
                if (status == 429 or (status or 0) >= 500) and attempt < self.policy.max_retries:
                    hrefs = [a.href for i in items for k, a in i.assets.items() if k in keys]
                    self._wait_for_storage(_url_in(text) or hrefs, status, attempt)
                    continue
                raise _read_error(text, items, keys, self.source) from None
        raise AssertionError("unreachable")

    def _wait_for_storage(self, urls: str | list[str], status: int | None, attempt: int) -> None:
        """After GDAL gave up on a 429/5xx: wait as the storage says, then let the strip be read again.

        GDAL retries with its own jittered backoff but does not read
        ``Retry-After``, and it remembers a failed file. So the failing URLs
        are asked again through the source's HTTP session, which honours
        ``Retry-After`` (capped at ``backoff_max_s``) and backs off with
        jitter, until they answer; then GDAL is told to forget them.
        """
        log.info("%s: storage answered HTTP %s after GDAL's retries; waiting before reading again", self.source,
                 status)
        urls = [urls] if isinstance(urls, str) else urls
        session = self._probe_session or http_session(self.policy)
        self._probe_session = session
        clock.sleep(backoff_delays(self.policy)[attempt])
        for url in urls:
            signed = self._signer.sign(url, "") if self._signer is not None and "sig=" not in url else url
            request(session, "GET", signed, headers={"Range": "bytes=0-0"}, source=self.source,
                    doing=f"waiting for {public_url(url)} to answer", deadline=self._deadline)
        self._configure_gdal(forget=[u.split("?")[0] for u in urls])

    def _patch_url(self, item: pystac.Item) -> Callable[[str], str] | None:
        if self._signer is None:
            return None
        collection = item.collection_id or ""
        signer = self._signer
        return lambda href: signer.sign(href, collection)

    # -- helpers ----------------------------------------------------------------------------

    def _configure_gdal(self, forget: list[str] | None = None) -> None:
        """GDAL's HTTP timeouts and retries for every reading thread (odc-stac applies them).

        ``forget``: URLs whose failed answers GDAL must not serve again from
        its cache (GDAL remembers an error for a file until told otherwise).
        """
        import odc.stac

        options = gdal_env(self.policy)
        if forget:
            options["CPL_VSIL_CURL_NON_CACHED"] = ":".join(f"/vsicurl/{u}" for u in forget)
        odc.stac.configure_rio(**options)

    def _reflectance_keys(self, item: pystac.Item) -> list[str]:
        return [_asset_key(item, aliases, band, self.source) for band, aliases in self.profile.reflectance.items()]

    def _class_key(self, item: pystac.Item) -> str:
        return _asset_key(item, self.profile.classes[1], self.profile.classes[0], self.source)

    def _utm_bounds(self) -> tuple[float, float, float, float]:
        """The AOI box in the city's CRS (its densified outline's bounds)."""
        return _ring_utm(self.aoi).bounds

    def _aoi_mask(self, geobox: object) -> np.ndarray:
        """True for pixels of ``geobox`` inside the AOI outline."""
        return geometry_mask([_ring_utm(self.aoi)], out_shape=(geobox.shape.y, geobox.shape.x),  # type: ignore[attr-defined]
                             transform=geobox.affine, invert=True)  # type: ignore[attr-defined]

    def _stage_key(self, acquisitions: list[Acquisition], composite: bool) -> str:
        ident = {
            "endpoint": public_url(self.stac.endpoint), "aoi": self.aoi.bbox(), "crs": self.aoi.crs.to_string(),
            "gsd": self.gsd_m, "composite": composite, "masks": self.masks.cloud,
            "items": sorted(f"{i.collection_id}/{i.id}@{i.properties.get('updated', '')}"
                            for a in acquisitions for i in a.items),
        }
        return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:24]

    def _provenance(self, acquisitions: list[Acquisition], composite: bool) -> dict[str, object]:
        return {
            "source": "stac",
            "endpoint": public_url(self.stac.endpoint),
            "collections": list(self.stac.collections),
            "signing": self.stac.signing,
            "strategy": "median" if composite else "least-cloudy",
            "acquisitions": [
                {
                    "key": a.key,
                    "acquired_at_utc": a.acquired_at.isoformat(),
                    "acquired_at_local": a.local_time.isoformat(),
                    "timezone": self.aoi.timezone,
                    "cloud_fraction_over_city": round(a.cloud_fraction, 4),
                    "coverage_of_city": round(a.coverage, 4),
                    "items": [i.id for i in a.items],
                }
                for a in acquisitions
            ],
        }


# -- module helpers ---------------------------------------------------------------------------


def _ring_utm(aoi: AreaOfInterest) -> shapely.Polygon:
    """The AOI's lon/lat box as a densified polygon in the city's CRS (continuous across 180 degrees)."""
    west, south, east, north = aoi.bbox()
    if west > east:
        east += 360.0
    n = 32
    xs = np.concatenate([np.linspace(west, east, n), np.full(n, east), np.linspace(east, west, n), np.full(n, west)])
    ys = np.concatenate([np.full(n, south), np.linspace(south, north, n), np.full(n, north),
                         np.linspace(north, south, n)])
    xs = np.where(xs > 180.0, xs - 360.0, xs)
    ux, uy = Transformer.from_crs(4326, aoi.crs, always_xy=True).transform(xs, ys)
    return shapely.Polygon(np.column_stack([ux, uy]))


def _sample_nearest(mask: np.ndarray, coarse: object, fine: object) -> np.ndarray:
    """``mask`` on the ``coarse`` geobox, read at the pixel centres of ``fine`` (same CRS), nearest."""
    ct, ft = coarse.affine, fine.affine  # type: ignore[attr-defined]
    rows, cols = fine.shape.y, fine.shape.x  # type: ignore[attr-defined]
    c = np.floor((ft.c + (np.arange(cols) + 0.5) * ft.a - ct.c) / ct.a).astype(int)
    r = np.floor((ft.f + (np.arange(rows) + 0.5) * ft.e - ct.f) / ct.e).astype(int)
    c = np.clip(c, 0, mask.shape[1] - 1)
    r = np.clip(r, 0, mask.shape[0] - 1)
    return mask[np.ix_(r, c)]


def _asset_key(item: pystac.Item, aliases: Sequence[str], band: str, source: str) -> str:
    for key in aliases:
        if key in item.assets:
            return key
    raise SourceError(
        f"{source}: item {item.id!r} has no asset for band {band!r} (looked for {', '.join(aliases)}; "
        f"it has {', '.join(sorted(item.assets))})",
        hint="the collection is not in the layout this source reads; check scene.stac.collections",
    )


def _scale_offset(item: pystac.Item, key: str, profile: CollectionProfile) -> tuple[float, float, float]:
    """(scale, offset, nodata) of an asset: its ``raster:bands`` when given, else the collection's defaults.

    Sentinel-2 L2A from processing baseline 04.00 (25 January 2022) stores
    reflectance + 0.1 (BOA_ADD_OFFSET -1000); Planetary Computer items say so
    only in ``s2:processing_baseline``, Earth Search in ``raster:bands``.
    """
    asset = item.assets[key].to_dict()
    bands = asset.get("raster:bands") or []
    first = bands[0] if bands else {}
    scale = float(first.get("scale", profile.scale))
    offset = first.get("offset")
    if offset is None:
        offset = profile.offset
        baseline = str(item.properties.get("s2:processing_baseline", ""))
        if profile.sensor == SENSOR_S2 and re.fullmatch(r"\d+(\.\d+)?", baseline) and float(baseline) >= 4.0:
            offset = -0.1
    nodata = first.get("nodata", 0)
    return scale, float(offset), float(nodata)


def _sun_angles(item: pystac.Item, when: datetime, lon: float, lat: float) -> tuple[float, float]:
    """Sun elevation and azimuth from the item (view extension or Sentinel-2 angles), else computed."""
    p = item.properties
    if "view:sun_elevation" in p and "view:sun_azimuth" in p:
        return float(p["view:sun_elevation"]), float(p["view:sun_azimuth"])
    if "s2:mean_solar_zenith" in p and "s2:mean_solar_azimuth" in p:
        return 90.0 - float(p["s2:mean_solar_zenith"]), float(p["s2:mean_solar_azimuth"])
    from baseline.synth.solar import solar_position

    sun = solar_position(when, lon, lat)
    return sun.elevation_deg, sun.azimuth_deg


def _http_status(text: str) -> int | None:
    match = re.search(r"HTTP response code: (\d{3})", text) or re.search(r"\b(40[134]|429|5\d\d)\b", text)
    return int(match.group(1)) if match else None


def _url_in(text: str) -> str | None:
    """The URL a GDAL error message names, if any."""
    match = re.search(r"(https?://[^\s,'\"]+)", text)
    return match.group(1).rstrip(".") if match else None


def _read_error(text: str, items: list[pystac.Item], keys: list[str], source: str) -> SourceError:
    status = _http_status(text)
    where = ", ".join(i.id for i in items)
    if status == 404:
        return SourceError(f"{source}: an asset ({', '.join(keys)}) of item(s) {where} is missing (HTTP 404)",
                           hint="the catalog lists a file the storage does not have; try another date")
    if status in (401, 403):
        return SourceError(f"{source}: the storage refused to serve item(s) {where} (HTTP {status})",
                           hint="asset URLs need signing: set scene.stac.signing, or check access rights")
    detail = f"HTTP {status}" if status else re.sub(r"https?://\S+", "<url>", text)[:200]
    return SourceError(f"{source}: cannot read the pixels of item(s) {where} ({detail})",
                       hint="the storage is failing or unreachable; retry later, or raise scene.http.max_retries")


def _api_error(exc: Exception, source: str) -> SourceError:
    status = getattr(exc, "status_code", None)
    text = re.sub(r"https?://\S+", lambda m: public_url(m.group(0)), str(exc))[:300]
    if status in (401, 403):
        return SourceError(f"{source}: access refused (HTTP {status})", hint="check the endpoint's credentials")
    if status == 404:
        return SourceError(f"{source}: not found (HTTP 404)", hint="check scene.stac.endpoint and the collections")
    if status == 429:
        return SourceError(f"{source}: still rate-limited after retries (HTTP 429)",
                           hint="wait, or raise scene.http.max_retries")
    if status is not None:
        return SourceError(f"{source}: HTTP {status} after retries: {text}", hint="the API is failing; retry later")
    return SourceError(f"{source}: cannot reach the API ({_network_cause(text)})",
                       hint="check scene.stac.endpoint and your network connection")


def _network_cause(text: str) -> str:
    """Plain words for why a connection failed, from a requests/urllib3 message."""
    causes = (
        ("NameResolutionError", "the host name does not resolve"),
        ("Name or service not known", "the host name does not resolve"),
        ("Connection refused", "the connection was refused"),
        ("timed out", "no answer in time"),
        ("Timeout", "no answer in time"),
        ("SSLError", "the TLS handshake failed"),
    )
    for needle, words in causes:
        if needle in text:
            return words
    return text[:160]


class _quiet_all_nan:
    """Silence numpy's 'All-NaN slice' warning (a pixel never clear is expected, and masked)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.filterwarnings("ignore", message="All-NaN slice")

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(*exc)


class _NoProgress:
    def update(self, n: int) -> None:  # noqa: D102 - a null progress bar
        pass

    def close(self) -> None:  # noqa: D102
        pass


def _progress(total: int, what: str, enabled: bool) -> object:
    if not enabled:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=what, unit="row", leave=False)
