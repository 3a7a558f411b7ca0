"""The task runner a curate run's per-shard work goes to: this process, or a Dask cluster."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

from prefect.task_runners import ThreadPoolTaskRunner

from flows.config import ExecutionConfig


def task_runner_for(execution: ExecutionConfig):
    """One shard at a time here (`local`), or prefect-dask's DaskTaskRunner on a local cluster or a scheduler."""
    if execution.runner == "local":
        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner

    if execution.address:
        return DaskTaskRunner(address=execution.address)
    # One thread per worker process: the work is CPU-bound Python, numpy, polars and torch.
    cluster = {"n_workers": execution.workers, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    return DaskTaskRunner(cluster_kwargs=cluster)


# Spawned worker processes may import polars (re-importing the main module) before a Nanny's
# `env` applies, so the thread limit must be in this process's environment when they start. One
# thread per worker process: polars would otherwise run a pool as large as the machine in every
# worker. This process keeps its pool: polars fixes its size at import, which the flow's modules did.
LOCAL_WORKER_ENVIRONMENT = {"POLARS_MAX_THREADS": "1"}


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """Set `values` in os.environ for the block (processes spawned in it inherit them); restore after."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def api_for_workers() -> dict[str, str]:
    """Inside a flow run: the environment that lets worker processes report to this run's Prefect API.

    Without PREFECT_API_URL a spawned Dask worker starts a temporary Prefect server of its own
    (seconds of start-up and hundreds of megabytes per worker). Workers of a remote scheduler
    need PREFECT_API_URL set to a server they can reach; a set value is left as it is.
    """
    from prefect.client.orchestration import get_client

    if os.environ.get("PREFECT_API_URL"):
        return {}
    with get_client(sync_client=True) as client:
        return {"PREFECT_API_URL": str(client.api_url)}


def run_on_runner(subflow, execution: ExecutionConfig, *args):
    """Call `subflow(*args)` (from inside a flow run) with the task runner `execution` asks for."""
    if execution.runner == "local":
        return subflow.with_options(task_runner=task_runner_for(execution))(*args)
    spawned = api_for_workers() | ({} if execution.address else LOCAL_WORKER_ENVIRONMENT)
    with environment(spawned):
        return subflow.with_options(task_runner=task_runner_for(execution))(*args)
