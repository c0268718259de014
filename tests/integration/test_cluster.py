"""Cluster recipes: batch job scripts ask for GPUs, GPU tasks only go where a GPU is declared, no hangs."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import LocalCluster

from baseline.config import load_config
from baseline.config.schema import ClusterSpec, JobqueueSpec
from baseline.errors import SourceError
from baseline.run.cluster import GPU_RESOURCE, dask_client, jobqueue_cluster, task_resources


@pytest.mark.parametrize(("kind", "gpu_line"), [("slurm", "#SBATCH --gres=gpu:2"), ("pbs", "#PBS -l ngpus=2")])
def test_batch_job_scripts_ask_for_gpus_and_workers_declare_them(kind, gpu_line):
    spec = ClusterSpec(kind=kind, jobqueue=JobqueueSpec(
        queue="gpu", account="city", cores=16, memory="64GiB", processes=2, gpus=2, walltime="04:00:00",
        job_script_prologue=["source /opt/citybaseline/.venv/bin/activate"]))
    cluster = jobqueue_cluster(spec)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert gpu_line in script
    assert f"--resources {GPU_RESOURCE}=1" in script
    assert "source /opt/citybaseline/.venv/bin/activate" in script
    assert "04:00:00" in script and "gpu" in script
    assert task_resources(spec, "auto") == {GPU_RESOURCE: 1}


def test_tiles_per_gpu_multiplies_what_gpu_workers_declare():
    spec = ClusterSpec(kind="slurm", tiles_per_gpu=4, jobqueue=JobqueueSpec(cores=16, memory="64GiB", processes=2, gpus=2))
    cluster = jobqueue_cluster(spec)
    try:
        assert f"--resources {GPU_RESOURCE}=4" in cluster.job_script()
    finally:
        cluster.close()
    assert task_resources(spec, "cuda") == {GPU_RESOURCE: 1}  # each tile still asks for one


def _meet(me: str, other: str) -> bool:
    """Set my event, then wait for the other task's: True only if both tasks run at the same time."""
    from distributed import Event

    Event(me).set()
    return Event(other).wait(timeout=20)


def test_a_gpu_worker_runs_tiles_per_gpu_tiles_at_once():
    spec = ClusterSpec(n_workers=1, threads_per_worker=2, gpus_per_worker=1, tiles_per_gpu=2, timeout_s=60)
    with dask_client(spec, "auto") as client:
        (worker,) = client.scheduler_info(n_workers=-1)["workers"].values()
        assert worker["resources"] == {GPU_RESOURCE: 2}
        both = client.gather([client.submit(_meet, a, b, resources={GPU_RESOURCE: 1}, pure=False)
                              for a, b in (("a", "b"), ("b", "a"))])
        assert both == [True, True]


def test_cpu_runs_ask_for_no_resources():
    assert task_resources(ClusterSpec(), "auto") is None
    assert task_resources(ClusterSpec(), "cpu") is None
    assert task_resources(ClusterSpec(), "cuda") == {GPU_RESOURCE: 1}


def test_gpu_tasks_on_a_cluster_without_gpu_workers_fail_at_once():
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0") as cluster:
        spec = ClusterSpec(address=cluster.scheduler_address)
        with pytest.raises(SourceError, match="declares a GPU resource"), dask_client(spec, "cuda"):
            pass


def test_a_started_cluster_listens_on_loopback_and_gpu_workers_declare_it():
    spec = ClusterSpec(n_workers=1, gpus_per_worker=1, timeout_s=60)
    with dask_client(spec, "auto") as client:
        info = client.scheduler_info(n_workers=-1)
        assert info["address"].startswith("tcp://127.0.0.1:")
        (worker,) = info["workers"].values()
        assert worker["resources"] == {GPU_RESOURCE: 1}


def test_an_unreachable_scheduler_is_a_clear_error_within_the_timeout():
    spec = ClusterSpec(address="tcp://127.0.0.1:9", timeout_s=3)
    with pytest.raises(SourceError, match="cannot reach the Dask scheduler"), dask_client(spec):
        pass


RECIPES = sorted((Path(__file__).resolve().parents[2] / "workflows" / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_every_recipe_is_a_valid_config_whose_cluster_can_be_described(recipe):
    config = load_config(recipe)
    if config.cluster.kind in ("slurm", "pbs") and not config.cluster.address:
        # the recipe's host is a login node's address; describe the jobs from loopback here
        cluster = jobqueue_cluster(config.cluster.model_copy(update={"host": "127.0.0.1"}))
        try:
            per_worker = max(1, config.cluster.jobqueue.gpus // config.cluster.jobqueue.processes)
            assert f"--resources {GPU_RESOURCE}={per_worker * config.cluster.tiles_per_gpu}" in cluster.job_script()
        finally:
            cluster.close()
    assert task_resources(config.cluster, config.detect.device) in (None, {GPU_RESOURCE: 1})
