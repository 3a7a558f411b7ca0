"""The task runner a curate run's per-shard work goes to: this process, or a Dask cluster."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from schemas.config import ExecutionConfig


def task_runner_for(execution: ExecutionConfig):
    """One shard at a time here (`local`), or prefect-dask's DaskTaskRunner on a local cluster or a scheduler."""
    if execution.runner == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if execution.address:
        return DaskTaskRunner(address=execution.address)
    # One thread per worker process: the work is CPU-bound Python, numpy and torch.
    cluster = {"n_workers": execution.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=cluster)
