"""Start or join the Dask cluster a run uses.

Kinds (``cluster.kind``; an ``address`` overrides them all):

- ``local``: a ``distributed.LocalCluster`` of process workers;
- ``cuda``: ``dask_cuda.LocalCUDACluster``, one worker per visible GPU;
- ``slurm`` / ``pbs``: batch jobs through ``dask_jobqueue``, each job asking
  for the cores, memory and GPUs in ``cluster.jobqueue``.

A scheduler this module starts listens on ``cluster.host`` (loopback by
default) with its dashboard on a free port. Workers that have a GPU declare a
``GPU`` resource, and tile tasks that need one ask for it, so GPU stages run
only on GPU workers. A GPU worker declares ``tiles_per_gpu`` of them per GPU,
so that many tiles share it at once: on one H100 the networks were about 1%
of a tile's time and the CPU post-processing the rest, so one tile at a time
per GPU leaves it idle. Each worker limits torch and GDAL so workers on one
machine do not fight over cores or memory. Waiting for a scheduler or workers
is bounded by ``cluster.timeout_s``: a cluster that never comes up is an error
that says so, not a hang.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from distributed import Client, LocalCluster

from baseline.config.schema import ClusterSpec
from baseline.errors import ConfigError, SourceError

log = logging.getLogger(__name__)

GPU_RESOURCE = "GPU"
GDAL_CACHE_MB = 256  # per worker: GDAL's block cache must not grow with the city
WORKER_PRELOAD = ("numpy", "pandas", "torch", "segmentation_models_pytorch", "baseline.detect",
                  "baseline.run.tile_task")
"""Imported once by the fork server that local workers are forked from, not once per worker.

Importing torch (a CUDA build), the segmentation models and the detect stage
takes about 10 s per process on a small machine; forking workers from one
process that did it takes well under a second each. Nothing in these imports
starts threads or touches a GPU, so forking after them is safe.
"""


def _limit_threads(threads: int) -> None:
    """Run on each worker at start-up: one BLAS/torch pool of ``threads``, a bounded GDAL cache."""
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ.setdefault("GDAL_CACHEMAX", str(GDAL_CACHE_MB))
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


def needs_gpu(spec: ClusterSpec, device: str) -> bool:
    """Whether tile tasks must run on workers that declare a GPU resource."""
    return device == "cuda" or spec.kind == "cuda" or spec.gpus_per_worker > 0 or spec.jobqueue.gpus > 0


def task_resources(spec: ClusterSpec, device: str) -> dict[str, float] | None:
    """The resources a tile task asks for: one GPU when it needs one, else nothing."""
    return {GPU_RESOURCE: 1} if needs_gpu(spec, device) else None


def jobqueue_cluster(spec: ClusterSpec) -> Any:
    """A ``dask_jobqueue`` SLURM or PBS cluster for ``spec`` (not yet scaled)."""
    import dask_jobqueue

    jq = spec.jobqueue
    directives = list(jq.job_extra_directives)
    if jq.gpus:
        directives.append(f"--gres=gpu:{jq.gpus}" if spec.kind == "slurm" else f"-l ngpus={jq.gpus}")
    worker_extra = (["--resources", f"{GPU_RESOURCE}={max(1, jq.gpus // jq.processes) * spec.tiles_per_gpu}"]
                    if jq.gpus else [])
    options: dict[str, Any] = dict(
        cores=jq.cores, memory=jq.memory, processes=jq.processes, walltime=jq.walltime,
        queue=jq.queue, account=jq.account, job_extra_directives=directives,
        job_script_prologue=list(jq.job_script_prologue), worker_extra_args=worker_extra,
        interface=jq.interface, scheduler_options={"host": spec.host, "dashboard_address": ":0"}
        if jq.interface is None else {"interface": jq.interface, "dashboard_address": ":0"},
    )
    factory = dask_jobqueue.SLURMCluster if spec.kind == "slurm" else dask_jobqueue.PBSCluster
    return factory(**options)


def _cuda_cluster(spec: ClusterSpec) -> Any:
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError:
        raise ConfigError(
            "cluster.kind 'cuda' needs dask-cuda, which is not installed",
            hint="pip install 'citybaseline[gpu]', or use kind 'local' with gpus_per_worker",
        ) from None
    return LocalCUDACluster(
        threads_per_worker=spec.threads_per_worker, host=spec.host, dashboard_address=":0",
        resources={GPU_RESOURCE: spec.tiles_per_gpu}, silence_logs=logging.ERROR,
    )


@contextlib.contextmanager
def _forked_workers() -> Iterator[None]:
    """Local workers forked from a fork server that preloaded :data:`WORKER_PRELOAD` (restarts too)."""
    import dask
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        ctx = get_mp_context()  # Dask sets its own preload list first; ours extends it
        ctx.set_forkserver_preload(["distributed", *WORKER_PRELOAD])
        yield


def _local_cluster(spec: ClusterSpec, device: str) -> LocalCluster:
    resources = ({GPU_RESOURCE: max(1, spec.gpus_per_worker) * spec.tiles_per_gpu}
                 if needs_gpu(spec, device) else None)
    return LocalCluster(
        n_workers=spec.n_workers,
        threads_per_worker=spec.threads_per_worker,
        processes=True,
        memory_limit=spec.memory_limit,
        host=spec.host,
        dashboard_address=":0",  # a free port, never a fixed one
        silence_logs=logging.CRITICAL,  # failed tiles are reported by the run itself
        resources=resources,
    )


def _check_gpu_workers(client: Client, spec: ClusterSpec, device: str, where: str) -> None:
    """With GPU tasks, at least one worker must declare a GPU, or the tasks would wait forever."""
    if not needs_gpu(spec, device):
        return
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    if not any(w.get("resources", {}).get(GPU_RESOURCE) for w in workers.values()):
        raise SourceError(
            f"no worker of the Dask cluster at {where} declares a {GPU_RESOURCE} resource, so the GPU stages "
            "could not run anywhere",
            hint=f"start GPU workers with `dask worker ADDRESS --resources {GPU_RESOURCE}=1`, or set detect.device cpu",
        )


@contextlib.contextmanager
def dask_client(spec: ClusterSpec, device: str = "auto") -> Iterator[Client]:
    """A connected client with workers ready; a cluster it started is closed on exit."""
    _quiet_dask()
    if spec.address:
        try:
            client = Client(spec.address, timeout=f"{spec.timeout_s}s")
        except OSError as exc:
            raise SourceError(
                f"cannot reach the Dask scheduler at {spec.address} within {spec.timeout_s:.0f} s ({exc})",
                hint="check the address, or leave cluster.address empty to start a cluster",
            ) from None
        try:
            _check_gpu_workers(client, spec, device, spec.address)
            client.run(_limit_threads, spec.threads_per_worker)
            yield client
        finally:
            client.close()
        return

    with contextlib.ExitStack() as stack:
        if spec.kind == "local":
            stack.enter_context(_forked_workers())
            cluster = _local_cluster(spec, device)
        elif spec.kind == "cuda":
            cluster = _cuda_cluster(spec)
        else:
            cluster = jobqueue_cluster(spec)
            cluster.scale(jobs=spec.jobqueue.jobs)
        yield from _serve(cluster, spec, device)


def _serve(cluster: object, spec: ClusterSpec, device: str) -> Iterator[Client]:
    """Connect to a started ``cluster``, wait for a worker, yield the client; close both after."""
    client = Client(cluster)
    try:
        try:
            client.wait_for_workers(1, timeout=spec.timeout_s)
        except TimeoutError:
            raise SourceError(
                f"no Dask worker of the {spec.kind} cluster started within {spec.timeout_s:.0f} s",
                hint="check the batch queue (squeue/qstat) and cluster.jobqueue, or raise cluster.timeout_s",
            ) from None
        _check_gpu_workers(client, spec, device, f"the {spec.kind} cluster")
        client.run(_limit_threads, spec.threads_per_worker)
        log.info("%s Dask cluster: %d workers x %d threads, scheduler on %s", spec.kind,
                 len(client.scheduler_info(n_workers=-1)["workers"]), spec.threads_per_worker, spec.host)
        yield client
    finally:
        client.close()
        cluster.close()
