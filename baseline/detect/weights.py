"""The one model loader: models by name and version, safetensors only.

Layout: ``models/<name>/<version>/model.safetensors`` + ``card.json`` (+ the
human ``MODEL_CARD.md``). The loader never unpickles anything: a folder that
holds only a ``.pt``/``.pth``/``.bin``/``.ckpt``/``.pkl`` file, or a
``model.safetensors`` that is not one, is refused with :class:`ModelError`. The
weights file carries its architecture block in its metadata, and the loader
checks it against the card and then loads the tensors strictly into the network
the card describes, so a card that does not match its weights cannot load.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from baseline.core.atomic import atomic_path, write_text_atomic
from baseline.core.hashing import sha256_file
from baseline.detect.cards import architecture_key, check_card, render_markdown
from baseline.detect.nets import build_network
from baseline.errors import ModelError

WEIGHTS_FILE = "model.safetensors"
CARD_FILE = "card.json"
CARD_MD_FILE = "MODEL_CARD.md"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")
MODELS_DIR_ENV = "BASELINE_MODELS_DIR"


def default_models_dir() -> Path:
    """``$BASELINE_MODELS_DIR`` when set, else ``models/`` at the repository root."""
    env = os.environ.get(MODELS_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "models"


@dataclass
class LoadedModel:
    """A network in eval mode on the CPU, with its card.

    ``path`` is the version folder; :attr:`gsd_m`, :attr:`bands`, :attr:`mean`
    and :attr:`std` say how to prepare its input.
    """

    name: str
    version: str
    card: dict[str, Any]
    network: nn.Module
    path: Path

    @property
    def task(self) -> str:
        return str(self.card["task"])

    @property
    def gsd_m(self) -> float:
        return float(self.card["input"]["gsd_m"])

    @property
    def output_stride(self) -> int:
        """Input pixels per output pixel (2 for a space-to-depth building net)."""
        return int(self.card["architecture"]["config"].get("space_to_depth", 1))

    @property
    def output_gsd_m(self) -> float:
        return self.gsd_m * self.output_stride

    @property
    def bands(self) -> tuple[str, ...]:
        return tuple(self.card["input"]["bands"])

    @property
    def sun_planes(self) -> tuple[str, ...]:
        """Constant planes the network takes after the bands (:mod:`baseline.detect.sun_planes`), if any."""
        return tuple(self.card["input"].get("sun_planes", ()))

    @property
    def in_channels(self) -> int:
        """Channels of the network's input: the bands, then the sun planes."""
        return len(self.bands) + len(self.sun_planes)

    @property
    def mean(self) -> list[float]:
        return [float(v) for v in self.card["input"]["mean"]]

    @property
    def std(self) -> list[float]:
        return [float(v) for v in self.card["input"]["std"]]

    @property
    def postprocess(self) -> dict[str, Any]:
        return dict(self.card.get("postprocess", {}))

    @property
    def label(self) -> str:
        """``name@version``, as written in run manifests."""
        return f"{self.name}@{self.version}"


def _version_key(version: str) -> tuple:
    parts = re.split(r"[.\-_]", version.lstrip("v"))
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in parts)


def list_versions(name: str, models_dir: str | Path | None = None) -> list[str]:
    """Versions of model ``name`` present under ``models_dir``, oldest first."""
    folder = Path(models_dir or default_models_dir()) / name
    if not folder.is_dir():
        return []
    return sorted((p.name for p in folder.iterdir() if p.is_dir() and (p / CARD_FILE).exists()), key=_version_key)


def load_model(name: str, version: str | None = None, models_dir: str | Path | None = None) -> LoadedModel:
    """Load model ``name`` at ``version`` (default: the newest) from ``models_dir``."""
    root = Path(models_dir or default_models_dir())
    versions = list_versions(name, root)
    if not versions:
        known = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        raise ModelError(
            f"no model {name!r} under {root}",
            hint=f"models present: {', '.join(known) or '(none)'}; train one with `baseline train`",
        )
    if version is None:
        version = versions[-1]
    elif version not in versions:
        raise ModelError(f"model {name!r} has no version {version!r}", hint=f"versions: {', '.join(versions)}")
    loaded = load_model_dir(root / name / version)
    if (loaded.name, loaded.version) != (name, version):
        raise ModelError(
            f"{loaded.path}: card says {loaded.name}@{loaded.version}, folder says {name}@{version}"
        )
    return loaded


def _refuse_non_safetensors(folder: Path) -> None:
    pickles = [p.name for p in folder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES]
    if not (folder / WEIGHTS_FILE).exists():
        found = f"found {', '.join(pickles)}; " if pickles else ""
        raise ModelError(
            f"{folder}: no {WEIGHTS_FILE}",
            hint=f"{found}only safetensors weights are loaded (pickled checkpoints can run code)",
        )


def _read_card(folder: Path) -> dict[str, Any]:
    try:
        card = json.loads((folder / CARD_FILE).read_text())
    except FileNotFoundError:
        raise ModelError(f"{folder}: no {CARD_FILE}", hint="every model version needs its card") from None
    except json.JSONDecodeError as exc:
        raise ModelError(f"{folder / CARD_FILE}: not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise ModelError(f"{folder / CARD_FILE}: expected a JSON object")
    check_card(card, str(folder / CARD_FILE))
    return card


def _read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    head = path.read_bytes()[:8] if path.stat().st_size >= 8 else b""
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise ModelError(f"{path}: this is a pickled/zip torch checkpoint, not safetensors", hint="refusing to load it")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelError(f"{path}: not a readable safetensors file ({exc})") from None
    return tensors, metadata


def load_model_dir(folder: str | Path) -> LoadedModel:
    """Load the model version stored in ``folder`` (card + safetensors), checking they match."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder")
    _refuse_non_safetensors(folder)
    card = _read_card(folder)
    weights = folder / WEIGHTS_FILE
    tensors, metadata = _read_tensors(weights)
    stored = metadata.get("architecture")
    if stored is None or json.loads(stored) != json.loads(architecture_key(card)):
        raise ModelError(
            f"{folder}: the card's architecture does not match the weights'",
            hint=f"card: {architecture_key(card)}; weights: {stored}",
        )
    expected = card.get("weights_sha256")
    if expected and expected != sha256_file(weights):
        raise ModelError(f"{weights}: sha256 differs from the card's", hint="the file was changed after training")
    network = build_network(card["architecture"]["name"], dict(card["architecture"]["config"]))
    state = network.state_dict()
    tensors = {k: v.to(state[k].dtype) if k in state else v for k, v in tensors.items()}
    try:
        network.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0:2]
        raise ModelError(f"{weights}: weights do not fit architecture {card['architecture']['name']!r}: {' '.join(first)}") from None
    network.eval()
    return LoadedModel(str(card["name"]), str(card["version"]), card, network, folder)


def save_model(network: nn.Module, card: dict[str, Any], folder: str | Path, *, half: bool = True) -> Path:
    """Write ``network``'s weights (float16 when ``half``), ``card.json`` and ``MODEL_CARD.md`` to ``folder``.

    The card gains ``weights_sha256`` and ``weights_dtype``; the weights file's
    metadata carries the card's architecture block. Returns ``folder``.
    """
    folder = Path(folder)
    check_card(card, str(folder / CARD_FILE))
    if getattr(network, "_baseline_bn_folded", False):
        raise ModelError(
            f"{folder}: the network has its batch norms folded for inference and no longer fits its architecture",
            hint="save or train a network as loaded (load_model_dir again), not one passed through runtime.model_on",
        )
    tensors = {}
    for key, value in network.state_dict().items():
        value = value.detach().cpu().contiguous()
        if half and value.is_floating_point():
            value = value.half()
        tensors[key] = value
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp), metadata={"architecture": architecture_key(card), "name": str(card["name"])})
    card = dict(card, weights_sha256=sha256_file(folder / WEIGHTS_FILE), weights_dtype="float16" if half else "float32")
    write_text_atomic(folder / CARD_FILE, json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    write_text_atomic(folder / CARD_MD_FILE, render_markdown(card))
    return folder


@dataclass(frozen=True)
class ModelRef:
    """A model by name and version with the tiling it needs (from its card's ``tiling`` block).

    ``chip_px`` and ``overlap_px`` are at the model's GSD; ``halo_m`` is how far
    a tile must reach beyond its core for this model to see whole objects.
    """

    name: str
    version: str
    gsd_m: float
    chip_px: int | None
    overlap_px: int
    halo_m: float


DEFAULT_TILING = {
    "buildings": {"chip_px": 768, "overlap_px": 192, "halo_m": 100.0},
    "vehicles": {"chip_px": 512, "overlap_px": 64, "halo_m": 12.0},
}


def read_card(name: str, version: str | None = None, models_dir: str | Path | None = None) -> dict[str, Any]:
    """The card of model ``name`` at ``version`` (default newest), checked, without loading weights."""
    root = Path(models_dir or default_models_dir())
    versions = list_versions(name, root)
    if not versions:
        raise ModelError(f"no model {name!r} under {root}", hint="train one with `baseline train`")
    version = versions[-1] if version is None else version
    if version not in versions:
        raise ModelError(f"model {name!r} has no version {version!r}", hint=f"versions: {', '.join(versions)}")
    return _read_card(root / name / version)


def read_model_ref(models_dir: str | Path | None, name: str, version: str | None = None) -> ModelRef:
    """A :class:`ModelRef` for ``name``/``version`` from its card (cheap: no weights are read)."""
    card = read_card(name, version, models_dir)
    tiling = {**DEFAULT_TILING[card["task"]], **card.get("tiling", {})}
    return ModelRef(
        name=str(card["name"]), version=str(card["version"]), gsd_m=float(card["input"]["gsd_m"]),
        chip_px=None if tiling["chip_px"] is None else int(tiling["chip_px"]),
        overlap_px=int(tiling["overlap_px"]), halo_m=float(tiling["halo_m"]),
    )


def write_card(card: dict[str, Any], folder: str | Path) -> Path:
    """Rewrite ``card.json`` and ``MODEL_CARD.md`` of an existing model, leaving its weights untouched.

    The card must still describe the weights: their checksum is recomputed and
    the architecture must match the one stored in the weights file.
    """
    folder = Path(folder)
    check_card(card, str(folder / CARD_FILE))
    _, metadata = _read_tensors(folder / WEIGHTS_FILE)
    if json.loads(metadata.get("architecture", "null") or "null") != json.loads(architecture_key(card)):
        raise ModelError(f"{folder}: the new card's architecture does not match the weights'")
    card = dict(card, weights_sha256=sha256_file(folder / WEIGHTS_FILE))
    write_text_atomic(folder / CARD_FILE, json.dumps(card, indent=2, sort_keys=False, default=str) + "\n")
    write_text_atomic(folder / CARD_MD_FILE, render_markdown(card))
    return folder
