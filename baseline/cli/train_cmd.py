"""``baseline train buildings|vehicles``: train a shipped-model kind from labelled scenes.

Data folders are scene folders written by ``baseline synth`` or any labelled
raster folder (one image GeoTIFF + ``buildings``/``vehicles`` labels in the
same CRS; see :mod:`baseline.train.data`). Writes ``model.safetensors``,
``card.json``, ``MODEL_CARD.md`` and ``metrics.json`` into ``--out``, which
should be ``models/<name>/<version>``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

EPILOG = """\b
Folder layout accepted by --data/--val:
  SCENE/vhr.tif + vhr.json + truth/{buildings,vehicles}.parquet   (baseline synth)
  FOLDER/<one image>.tif + buildings.(geojson|gpkg|parquet) and/or vehicles.(...)
         + optional meta.json {sun_elevation_deg, sun_azimuth_deg, band_time_offsets_s}
\b
Examples:
  baseline train buildings --data .cache/train/s101 .cache/train/s102 --val .cache/train/s106 \\
      --out models/buildings-unet/1.3.0-mine --epochs 16    # a new version: runs use the newest
  baseline train buildings --init-from models/buildings-unet/1.2.0 --data my_labels/ --val my_held_out/ \
      --out models/buildings-unet/1.2.0-mine --epochs 10 --lr 5e-4   # fine-tune the shipped model
  baseline train vehicles --data .cache/train/s10[1-5] --val .cache/train/s106 \\
      --out models/vehicles-centernet/1.1.0-mine
  baseline train vehicles --rescore --data .cache/train/s101 --val .cache/train/s106 .cache/train/s107 \\
      --out models/vehicles-centernet/1.0.0      # re-measure the card's rates, weights untouched
"""


class _ManyValues(click.Option):
    """An option that takes one or more values: ``--data A B C`` (until the next option)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("multiple", True)
        super().__init__(*args, **kwargs)

    def add_to_parser(self, parser, ctx):  # noqa: ANN001 (click's private parser types)
        super().add_to_parser(parser, ctx)
        for name in self.opts:
            opt = parser._long_opt.get(name) or parser._short_opt.get(name)
            if opt is None:
                continue
            original = opt.process

            def process(value, state, _original=original):  # noqa: ANN001
                values = [value]
                while state.rargs and not state.rargs[0].startswith("-"):
                    values.append(state.rargs.pop(0))
                for v in values:
                    _original(v, state)

            opt.process = process


def _common(f):
    options = [
        click.option("--data", "data", cls=_ManyValues, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Training folders (one or more)."),
        click.option("--val", "val", cls=_ManyValues, type=click.Path(exists=True, file_okay=False, path_type=Path),
                     help="Held-out folders scored after training; the scores go into the card."),
        click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Output folder, models/<name>/<version>."),
        click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True, help="Epochs."),
        click.option("--iters-per-epoch", type=click.IntRange(min=1), default=100, show_default=True,
                     help="Iterations (batches of random crops) per epoch."),
        click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Crops per batch [8 buildings, 16 vehicles]."),
        click.option("--crop", "crop_px", type=click.IntRange(min=32), default=None,
                     help="Crop side in model pixels [192 buildings, 128 vehicles]."),
        click.option("--lr", type=float, default=None, help="Peak learning rate of the one-cycle schedule."),
        click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--max-minutes", type=click.FloatRange(min=0.1), default=None,
                     help="Wall-time budget for the optimisation; the schedule anneals to fit it."),
        click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads (default: torch's)."),
        click.option("--sample-workers", type=click.IntRange(min=0), default=0, show_default=True,
                     help="Processes drawing training crops; 0 draws them on the training process "
                          "(reproducible batch for batch). On a GPU, one per spare CPU core keeps it fed."),
        click.option("--no-progress", is_flag=True, help="No progress bar."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@contextmanager
def _output_folder(out: Path, threads: int | None) -> Iterator[None]:
    """Set torch's CPU threads and make ``out``; a run that fails removes the folder if it made it,
    so no half-written model version is left behind."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    made = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except BaseException:
        if made:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _set_given(settings: object, **values: object) -> None:
    """Set the options the user gave on ``settings``; the ones left out keep the model kind's defaults."""
    for key, value in values.items():
        if value:
            setattr(settings, key, value)


def _report(card: dict) -> None:
    ev = card.get("evaluation") or {}
    t = card["training"]
    click.echo(f"wrote {card['name']}@{card['version']}: {t['iterations']} iterations in {t['seconds']:.0f} s")
    if ev:
        line = f"held-out: precision {ev.get('precision')}, recall {ev.get('recall')}, F1 {ev.get('f1')}"
        if ev.get("height_mae_m") is not None:
            line += f", height MAE {ev['height_mae_m']:.2f} m"
        click.echo(line)


@click.group("train", epilog=EPILOG)
def command() -> None:
    """Train the building or vehicle model from labelled scenes."""


@command.command("buildings", epilog=EPILOG)
@_common
@click.option("--encoder", default="tu-regnetx_002", show_default=True, help="segmentation-models-pytorch encoder (no pretrained weights).")
@click.option("--gsd", "gsd_m", type=float, default=0.3, show_default=True,
              help="Model input GSD in metres; data of any pixel size is resampled to it "
                   "(area average down, bilinear up), as a run reads imagery.")
@click.option("--space-to-depth", type=click.IntRange(min=1), default=2, show_default=True,
              help="Fold SxS input pixels into channels: maps come out at S x the input GSD.")
@click.option("--augment", type=click.Choice(["sensor", "basic"]), default="sensor", show_default=True,
              help="basic: flips/rotations and photometric jitter; sensor: also coarser GSD (up to twice the "
                   "model's), panchromatic, leaf-off vegetation and shadow fill.")
@click.option("--sun-planes/--no-sun-planes", default=False, show_default=True,
              help="Give the network the sun (where a metre of height casts its shadow) as two input planes; "
                   "scenes without sun angles get zeros, as 10% of training crops do. Off by default: on the "
                   "shipped model's data a 2,000-iteration fit with them measured no better (README).")
@click.option("--small-weight", type=click.FloatRange(min=0.0), default=0.0, show_default=True,
              help="Weigh the extent loss up by 1 + this on footprints under 60 m2 (kiosks, shelters, sheds) "
                   "and a pixel around them: they are a few output pixels each and most of what a fit misses.")
@click.option("--rescore", is_flag=True,
              help="Keep the weights in --out: only re-tune post-processing on --data and re-score on --val.")
@click.option("--keep-postprocess", is_flag=True,
              help="With --rescore: keep the card's post-processing as it is (e.g. one setting changed by hand) "
                   "and only re-score on --val.")
@click.option("--init-from", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Start from this model folder's weights (fine-tuning, e.g. the shipped model on your own "
                   "labels); its architecture, GSD and normalisation are kept.")
def buildings(data, val, out, epochs, iters_per_epoch, batch_size, crop_px, lr, device, seed, max_minutes, threads,
              sample_workers, no_progress, encoder, gsd_m, space_to_depth, augment, sun_planes, small_weight, rescore,
              keep_postprocess, init_from) -> None:
    """Building footprints + shadow/height heads (a U-Net)."""
    from baseline.errors import InvalidValueError
    from baseline.train.buildings import BuildingTrainSettings, finalise_buildings, train_buildings

    if keep_postprocess and not rescore:
        raise InvalidValueError("--keep-postprocess", True, "only with --rescore (a new fit is always tuned)")
    with _output_folder(out, threads):
        if rescore:
            _report(finalise_buildings(out, list(data), list(val) or None, device=device, tune=not keep_postprocess))
            return
        s = BuildingTrainSettings(epochs=epochs, iters_per_epoch=iters_per_epoch, seed=seed, encoder=encoder, gsd_m=gsd_m,
                                  space_to_depth=space_to_depth, max_minutes=max_minutes, augment=augment,
                                  sun_planes=sun_planes, small_weight=small_weight,
                                  init_from=str(init_from) if init_from else None, sample_workers=sample_workers)
        _set_given(s, batch_size=batch_size, crop_px=crop_px, lr=lr)
        _report(train_buildings(list(data), out, val=list(val) or None, settings=s, device=device, progress=not no_progress))


@command.command("vehicles", epilog=EPILOG)
@_common
@click.option("--rescore", is_flag=True,
              help="Keep the weights in --out: only re-score on --val and rewrite the card's rates.")
def vehicles(data, val, out, epochs, iters_per_epoch, batch_size, crop_px, lr, device, seed, max_minutes, threads,
             sample_workers, no_progress, rescore) -> None:
    """Vehicles as oriented boxes with class and band-timing motion (a CenterNet)."""
    from baseline.train.vehicles import VehicleTrainSettings, rescore_vehicles, train_vehicles

    with _output_folder(out, threads):
        if rescore:
            _report(rescore_vehicles(out, list(val), device=device))
            return
        s = VehicleTrainSettings(epochs=epochs, iters_per_epoch=iters_per_epoch, seed=seed, max_minutes=max_minutes,
                                 sample_workers=sample_workers)
        _set_given(s, batch_size=batch_size, crop_px=crop_px, lr=lr)
        _report(train_vehicles(list(data), out, val=list(val) or None, settings=s, device=device, progress=not no_progress))
