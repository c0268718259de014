"""Start or join the Dask cluster a run uses.

By default a ``distributed.LocalCluster`` of process workers, its scheduler
bound to loopback; with an address, an existing scheduler. Each worker limits
torch to its own threads so workers do not fight over cores.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

from distributed import Client, LocalCluster

from baseline.config.schema import ClusterSpec
from baseline.errors import SourceError

log = logging.getLogger(__name__)


def _limit_threads(threads: int) -> None:
    """Run on each worker at start-up: one BLAS/torch pool of ``threads``."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:  # torch is a dependency, but keep the cluster usable without it
        pass


def _quiet_dask() -> None:
    """Keep Dask's own INFO chatter out of the user's terminal unless ``-v`` asked for it."""
    if logging.getLogger().getEffectiveLevel() > logging.INFO:
        for name in ("distributed", "distributed.scheduler", "distributed.nanny", "distributed.core",
                     "distributed.http.proxy", "distributed.worker"):
            logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def dask_client(spec: ClusterSpec) -> Iterator[Client]:
    """A connected client; a local cluster it started is closed on exit."""
    _quiet_dask()
    if spec.address:
        try:
            client = Client(spec.address, timeout="20s")
        except OSError as exc:
            raise SourceError(
                f"cannot reach the Dask scheduler at {spec.address} ({exc})",
                hint="check the address, or leave cluster.address empty for a local cluster",
            ) from None
        try:
            client.run(_limit_threads, spec.threads_per_worker)
            yield client
        finally:
            client.close()
        return
    cluster = LocalCluster(
        n_workers=spec.n_workers,
        threads_per_worker=spec.threads_per_worker,
        processes=True,
        memory_limit=spec.memory_limit,
        host="127.0.0.1",
        dashboard_address=":0",  # a free port on the loopback host, never a fixed one
        silence_logs=logging.ERROR,
    )
    client = Client(cluster)
    try:
        client.run(_limit_threads, spec.threads_per_worker)
        log.info("local Dask cluster: %d process workers x %d threads", spec.n_workers, spec.threads_per_worker)
        yield client
    finally:
        client.close()
        cluster.close()
