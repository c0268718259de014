"""The inference runtime: counts normalised on the device, precision and layout, prefetched batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from affine import Affine
from torch.fx.experimental.optimization import fuse

from baseline.detect.runtime import (
    FP32,
    UNOPTIMISED,
    InferenceSettings,
    fold_batchnorm,
    forward,
    forward_flip_averaged,
    host_batches,
    model_on,
    normalise_on_device,
    prepare_chip,
)
from baseline.detect.sun_planes import MAX_SHADOW_PER_M, SUN_PLANES, shadow_vector
from baseline.errors import InvalidValueError
from tests.factories import TinyNetModel, counts_chip, host_normalised


def test_counts_are_normalised_on_the_device_as_on_the_host():
    rng = np.random.default_rng(1)
    counts = rng.integers(0, 20000, size=(4, 45, 50), dtype=np.uint16)  # some above the 1.5 reflectance clip
    valid = rng.random((45, 50)) > 0.2
    counts[:, ~valid] = 0
    model = TinyNetModel()
    chip = counts_chip(counts, valid)
    item = prepare_chip(chip, model, multiple=16)
    assert item.image.dtype == np.uint16  # nothing converted on the host
    (batch,) = list(host_batches([item], 4, torch.device("cpu")))
    assert batch.image.dtype == torch.uint16 and batch.valid.dtype == torch.uint8
    x = normalise_on_device(batch, model, torch.device("cpu"), 16, channels_last=False)
    assert x.shape == (1, 4, 48, 64)
    np.testing.assert_allclose(x[0].numpy(), host_normalised(chip, model, 16), rtol=1e-5, atol=1e-5)


def test_a_sun_conditioned_model_gets_the_shadow_vector_as_planes_after_the_bands():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 5000, size=(4, 40, 40), dtype=np.uint16)
    valid = np.ones((40, 40), bool)
    valid[:5] = False  # the planes are not masked: the sun is known over nodata too
    model = TinyNetModel(sun_planes=SUN_PLANES)
    (batch,) = list(host_batches([prepare_chip(counts_chip(counts, valid), model, 16)], 1, torch.device("cpu")))
    sun = shadow_vector(Affine(0.3, 0, 0, 0, -0.3, 0), 45.0, 180.0)  # noon sun in the south: shadow due north
    np.testing.assert_allclose(sun, [-1.0, 0.0], atol=1e-6)  # one metre of shadow per metre, up the rows
    x = normalise_on_device(batch, model, torch.device("cpu"), 16, channels_last=True, sun=sun)
    assert x.shape == (1, 6, 48, 48)
    np.testing.assert_allclose(x[0, :4].numpy(), host_normalised(batch.items[0].chip, model, 16), atol=1e-5)
    np.testing.assert_allclose(x[0, 4:].numpy(), np.broadcast_to(sun[:, None, None], (2, 48, 48)), atol=1e-6)
    unknown = normalise_on_device(batch, model, torch.device("cpu"), 16, channels_last=False)
    assert unknown.shape == (1, 6, 48, 48) and not unknown[0, 4:].any()  # no sun angles: zero planes
    assert forward(model, x, FP32).shape == (1, 2, 48, 48)


def test_the_shadow_vector_follows_the_grid_and_caps_low_suns():
    north_up = Affine(0.5, 0, 0, 0, -0.5, 0)
    east = shadow_vector(north_up, 30.0, 270.0)  # evening sun in the west: shadow to the east, along +cols
    np.testing.assert_allclose(east, [0.0, 1.0 / np.tan(np.radians(30.0))], atol=1e-6)
    assert np.hypot(*shadow_vector(north_up, 5.0, 90.0)) == pytest.approx(MAX_SHADOW_PER_M)
    assert not shadow_vector(north_up, None, 90.0).any()
    with pytest.raises(InvalidValueError, match="sun elevation"):
        shadow_vector(north_up, -3.0, 90.0)


@pytest.mark.parametrize("flips", [2, 4, 8])
def test_flip_averaged_maps_turn_with_the_image(flips: int):
    # averaged over a group of mirror images, the maps of a mirrored chip are exactly the mirrored maps
    model = TinyNetModel()
    x = torch.randn(1, 4, 32, 48)
    out = forward_flip_averaged(model, x, FP32, flips)
    assert out.shape == (1, 2, 32, 48)
    mirrored = forward_flip_averaged(model, x.flip(-1), FP32, flips)
    np.testing.assert_allclose(mirrored.flip(-1).numpy(), out.numpy(), atol=1e-5)
    if flips >= 4:
        np.testing.assert_allclose(forward_flip_averaged(model, x.flip(-2), FP32, flips).flip(-2).numpy(), out.numpy(),
                                   atol=1e-5)
    if flips == 8:
        turned = forward_flip_averaged(model, x.transpose(-1, -2), InferenceSettings("fp32", True), flips)
        np.testing.assert_allclose(turned.transpose(-1, -2).numpy(), out.numpy(), atol=1e-5)
    assert not np.allclose(forward(model, x, FP32).numpy(), out.numpy(), atol=1e-3)  # the net alone is not symmetric
    np.testing.assert_array_equal(forward_flip_averaged(model, x, FP32, 1).numpy(), forward(model, x, FP32).numpy())


def test_building_flips_must_be_a_mirror_group():
    with pytest.raises(InvalidValueError, match="building flips"):
        InferenceSettings(building_flips=3)
    assert InferenceSettings(building_flips=4).describe(torch.device("cpu")).endswith("building-flips 4")


def test_prefetched_batches_keep_every_chip_once_in_order():
    model = TinyNetModel()
    rng = np.random.default_rng(2)
    items = []
    for i in range(11):
        shape = (32, 32) if i % 3 else (32, 48)  # two shapes: two groups
        counts = rng.integers(0, 5000, size=(4, *shape), dtype=np.uint16)
        items.append(prepare_chip(counts_chip(counts, np.ones(shape, bool)), model, 16))
    seen = [i for b in host_batches(items, 3, torch.device("cpu"), prefetch=2) for i in b.items]
    assert sorted(map(id, seen)) == sorted(map(id, items))
    in_group = [i for i in seen if i.image.shape[2] == 32]
    assert in_group == [i for i in items if i.image.shape[2] == 32]


def test_bf16_channels_last_stays_close_to_fp32():
    model = TinyNetModel()
    x = torch.randn(2, 4, 32, 32)
    ref = forward(model, x, FP32)
    fast = forward(model, x.contiguous(memory_format=torch.channels_last), InferenceSettings("bf16", True))
    assert fast.dtype == torch.bfloat16
    np.testing.assert_allclose(fast.float().numpy(), ref.numpy(), atol=0.05, rtol=0.05)


def test_auto_precision_picks_a_real_dtype_and_bad_names_are_refused():
    settings = InferenceSettings()
    assert settings.dtype_on(torch.device("cpu")) in (None, torch.bfloat16)
    assert "cpu" in settings.describe(torch.device("cpu"))
    with pytest.raises(InvalidValueError, match="precision"):
        InferenceSettings("int4")  # type: ignore[arg-type]


def _conv_bn_net() -> torch.nn.Module:
    """Conv -> BN -> ReLU twice, with BN statistics that are not the identity."""
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(4, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 2, 3, padding=1), torch.nn.BatchNorm2d(2),
    )
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def test_batch_norm_is_folded_into_the_convolutions_without_changing_the_output():
    net = _conv_bn_net()
    x = torch.randn(2, 4, 16, 16)
    with torch.inference_mode():
        ref = net(x)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    with torch.inference_mode():
        np.testing.assert_allclose(folded(x).numpy(), ref.numpy(), atol=1e-5, rtol=1e-5)
    assert fold_batchnorm(folded) is folded  # folding twice is a no-op
    with torch.inference_mode():
        np.testing.assert_allclose(net(x).numpy(), ref.numpy(), atol=1e-6)  # the original is left as it was


def test_a_network_that_calls_a_conv_bn_pair_twice_is_not_folded_twice():
    """torch.fx ``fuse`` folds a pair once per call; such a network runs unfolded instead."""

    class SharedBlock(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
            self.bn = torch.nn.BatchNorm2d(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.bn(self.conv(x))
            return self.bn(self.conv(torch.relu(x)))  # the same pair, called again

    torch.manual_seed(4)
    net = SharedBlock().eval()
    net.bn.running_mean.uniform_(-1, 1)
    net.bn.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 4, 16, 16)
    with torch.inference_mode():
        ref = net(x)
        unguarded = fuse(net, inplace=False)(x)
    assert float((unguarded - ref).abs().max()) > 0.01  # the hazard is real: fx alone gives wrong outputs
    guarded = fold_batchnorm(net)
    assert guarded is net
    with torch.inference_mode():
        np.testing.assert_allclose(guarded(x).numpy(), ref.numpy(), atol=1e-6)


def test_a_network_torch_fx_cannot_trace_is_used_unfolded():
    class DataDependent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = _conv_bn_net()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x) if x.sum() > 0 else -self.body(x)  # control flow on a tensor: untraceable

    net = DataDependent().eval()
    assert fold_batchnorm(net) is net


def test_the_unoptimised_settings_keep_the_network_as_loaded():
    model = TinyNetModel()
    model.network = _conv_bn_net()
    model_on(model, torch.device("cpu"), UNOPTIMISED)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.network.modules())
    model_on(model, torch.device("cpu"), FP32)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.network.modules())
