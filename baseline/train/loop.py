"""The optimisation loop shared by both models: AdamW + one-cycle, progress bar, timing.

Kept deliberately plain: the caller supplies a batch sampler and a loss; the
loop owns the optimiser, the schedule, gradient clipping and the record of
what happened (loss curve, iterations, seconds), which goes into the card.

The one-cycle schedule runs on *progress*, the larger of the share of
iterations done and the share of the optional wall-time budget used, so a run
on a busy shared CPU still anneals properly and ends on time (with fewer
iterations, which the card records).

Batches are drawn on the training process by default: one random stream,
so a fit is reproducible from its seed. On a GPU that leaves the device
waiting for the CPU (drawing and augmenting crops takes longer than the step),
so ``sample_workers`` > 0 draws them in that many forked processes instead,
each with its own stream seeded from (seed, worker), a few batches ahead and
in pinned memory. The fit is then as random as before but not reproducible
batch for batch, since the order workers deliver in depends on timing.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

log = logging.getLogger(__name__)


@dataclass
class FitRecord:
    """What a training run did."""

    iterations: int
    seconds: float
    loss_curve: list[float] = field(default_factory=list)  # mean loss per tenth of the run
    final_loss: float = float("nan")


def fit(
    network: nn.Module,
    sample: Callable[[np.random.Generator], tuple[torch.Tensor, ...]],
    loss_fn: Callable[[torch.Tensor, tuple[torch.Tensor, ...]], torch.Tensor],
    *,
    iterations: int,
    lr: float,
    device: torch.device,
    seed: int,
    weight_decay: float = 1e-4,
    desc: str = "train",
    progress: bool = True,
    max_seconds: float | None = None,
    sample_workers: int = 0,
) -> FitRecord:
    """Train ``network`` for ``iterations`` steps (or until ``max_seconds``); ``sample(rng)`` gives (input, *targets).

    ``sample_workers`` > 0 draws batches in that many processes (see the module's docstring).
    """
    torch.manual_seed(seed)
    network.to(device).train()
    batches = draw_batches(sample, seed, sample_workers, pin=device.type == "cuda")
    opt = torch.optim.AdamW(network.parameters(), lr=lr, weight_decay=weight_decay)
    losses: list[float] = []
    t0 = time.perf_counter()
    bar = tqdm(range(iterations), desc=desc, disable=not progress, dynamic_ncols=True, mininterval=2.0)
    try:
        for i in bar:
            done = i / max(iterations, 1)
            if max_seconds:
                done = max(done, (time.perf_counter() - t0) / max_seconds)
            if done >= 1.0:
                log.info("%s: wall-time budget of %.0f s reached after %d iterations", desc, max_seconds, i)
                break
            current_lr = one_cycle_lr(done, lr)
            for group in opt.param_groups:
                group["lr"] = current_lr
            batch = tuple(t.to(device, non_blocking=True) for t in next(batches))
            out = network(batch[0])
            loss = loss_fn(out, batch[1:])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), 5.0)
            opt.step()
            losses.append(float(loss.detach()))
            if len(losses) % 10 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-10:]):.4f}", lr=f"{current_lr:.2e}")
    finally:
        bar.close()
        batches.close()  # ends the sampling workers, if any, also when the fit fails
    seconds = time.perf_counter() - t0
    network.eval()
    curve = [float(np.mean(c)) for c in np.array_split(np.asarray(losses), min(10, len(losses))) if len(c)] if losses else []
    final = float(np.mean(losses[-max(1, len(losses) // 10):])) if losses else float("nan")
    log.info("%s: %d iterations in %.0f s, final loss %.4f", desc, len(losses), seconds, final)
    return FitRecord(len(losses), seconds, curve, final)


class _SampleStream(torch.utils.data.IterableDataset):
    """Endless batches from ``sample``, each loader worker on its own stream seeded from (seed, worker)."""

    def __init__(self, sample: Callable[[np.random.Generator], tuple[torch.Tensor, ...]], seed: int) -> None:
        self.sample, self.seed = sample, seed

    def __iter__(self) -> Iterator[tuple[torch.Tensor, ...]]:
        info = torch.utils.data.get_worker_info()
        rng = np.random.default_rng([self.seed, info.id] if info is not None else self.seed)
        while True:
            yield tuple(self.sample(rng))


def _one_thread(_worker: int) -> None:
    torch.set_num_threads(1)  # a sampling worker draws one batch at a time; many threads each would oversubscribe


def draw_batches(
    sample: Callable[[np.random.Generator], tuple[torch.Tensor, ...]], seed: int, workers: int = 0, *,
    pin: bool = False, ahead: int = 4,
) -> Generator[tuple[torch.Tensor, ...], None, None]:
    """Endless batches: ``sample`` on this process (``workers`` 0, one stream from ``seed``), else on
    ``workers`` forked processes, ``ahead`` batches each drawn in advance (pinned for a GPU)."""
    stream = _SampleStream(sample, seed)
    if workers <= 0:
        yield from stream
        return
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=workers, prefetch_factor=ahead, pin_memory=pin,
        worker_init_fn=_one_thread, multiprocessing_context="fork",
    )
    it = iter(loader)
    try:
        yield from it
    finally:
        del it  # shuts the workers down


def one_cycle_lr(progress: float, max_lr: float, warmup: float = 0.15) -> float:
    """One-cycle learning rate at ``progress`` in [0, 1]: cosine up from max/25, cosine down to max/1e4."""
    start, end = max_lr / 25.0, max_lr / 1e4
    if progress < warmup:
        return start + (max_lr - start) * (1 - math.cos(math.pi * progress / warmup)) / 2
    p = (progress - warmup) / (1 - warmup)
    return end + (max_lr - end) * (1 + math.cos(math.pi * min(p, 1.0))) / 2
