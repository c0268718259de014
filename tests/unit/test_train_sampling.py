"""Batches for training: drawn on the training process (reproducible) or by forked sampling workers."""

from __future__ import annotations

import itertools

import numpy as np
import torch

from baseline.train.loop import draw_batches, fit


def _sample(rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(rng.standard_normal((4, 2)).astype(np.float32))
    return x, x.sum(dim=1, keepdim=True)


def test_no_workers_draws_the_seeds_one_stream():
    got = [b[0] for b in itertools.islice(draw_batches(_sample, seed=3), 3)]
    rng = np.random.default_rng(3)
    want = [_sample(rng)[0] for _ in range(3)]
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w)


def test_workers_draw_distinct_streams_and_end_cleanly():
    stream = draw_batches(_sample, seed=3, workers=2, ahead=2)
    firsts = [next(stream)[0] for _ in range(8)]
    stream.close()
    rows = {tuple(np.round(b.numpy().ravel(), 6)) for b in firsts}
    assert len(rows) == 8, "two workers repeated a batch: they share a random stream"
    serial = [b[0] for b in itertools.islice(draw_batches(_sample, seed=3), 8)]
    assert not any(torch.equal(firsts[0], s) for s in serial[1:]), "a worker replayed the serial stream"


def test_fit_with_sampling_workers_learns():
    torch.manual_seed(0)
    net = torch.nn.Linear(2, 1)
    record = fit(net, _sample, lambda out, b: torch.nn.functional.mse_loss(out, b[0]), iterations=200, lr=0.05,
                 device=torch.device("cpu"), seed=0, progress=False, sample_workers=2)
    assert record.iterations == 200
    assert record.loss_curve[-1] < 0.1 * record.loss_curve[0]
