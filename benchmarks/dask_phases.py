"""Where the time of the sharded cleaning goes, on Dask and in one process: why Dask does not scale here.

Runs the curate flow's sharded cleaning (the same steps as `bench_scaling.py --dask-size`) with a
timer around each phase: writing the raw shards, the `clean-shard` tasks (each also reports its
own wall and CPU seconds), reading the cleaned shards back, and the global merge. From the
phases it derives the best speed-up 2 workers could give: the serial phases stay, the shard
work is split evenly over the workers at the single-process per-task CPU cost.

Appends records to results/dask_phases.jsonl and rewrites results/dask_phases.md.

    python benchmarks/dask_phases.py [--docs 1000000] [--workers 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
import uuid
from pathlib import Path

from bench_scaling import RESULTS, WORK, corpus_path, in_fresh_process


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def phases(path: str, runner: str, workers: int, shard_rows: int) -> dict:
    """Seconds per phase of the sharded cleaning on `runner`, with each shard task's wall and CPU seconds."""
    import pyarrow.parquet as pq
    from prefect import flow, task, unmapped
    from prefect.cache_policies import NO_CACHE

    from flows.execution import run_on_runner
    from flows.shards import clean_shard_task, read_cleaned_shard, write_shards
    from schemas.config import ExecutionConfig
    from stages.cleaning import CleaningConfig, merge_shards

    @task(name="timed-clean-shard", cache_policy=NO_CACHE)
    def timed_clean_shard(config: CleaningConfig, shard_path: str) -> tuple[str, float, float]:
        cpu, started = _cpu_seconds(), time.perf_counter()
        out = clean_shard_task.fn(config, shard_path)
        return out, time.perf_counter() - started, _cpu_seconds() - cpu

    @flow(name="bench-dask-phases")
    def sharded_clean(table_path: str, shard_dir: str) -> dict:
        marks = [time.perf_counter()]
        table = pq.read_table(table_path)
        shards = write_shards(table, Path(shard_dir), "raw", shard_rows)
        marks.append(time.perf_counter())
        done = [future.result() for future in timed_clean_shard.map(unmapped(CleaningConfig()), shards)]
        marks.append(time.perf_counter())
        cleaned = [read_cleaned_shard(out) for out, _, _ in done]
        marks.append(time.perf_counter())
        merge_shards(table, cleaned, CleaningConfig())
        marks.append(time.perf_counter())
        names = ("write_shards", "shard_tasks", "read_cleaned", "merge")
        return {
            **{f"{name}_seconds": round(end - start, 2) for name, start, end in zip(names, marks, marks[1:])},
            "seconds": round(marks[-1] - marks[0], 2), "shards": len(shards),
            "task_wall_seconds": [round(wall, 2) for _, wall, _ in done],
            "task_cpu_seconds": [round(cpu, 2) for _, _, cpu in done],
        }

    @flow(name="bench-dask-phases-on-runner")
    def on_runner(table_path: str, shard_dir: str) -> dict:
        execution = ExecutionConfig(runner=runner, workers=workers, shard_rows=shard_rows)
        return run_on_runner(sharded_clean, execution, table_path, shard_dir)

    with tempfile.TemporaryDirectory(dir=WORK) as shard_dir:
        return on_runner(path, shard_dir)


def markdown(records: list[dict]) -> str:
    lines = [
        "# Sharded cleaning by phase: Dask workers against one process",
        "",
        "Written by `benchmarks/dask_phases.py`. Seconds per phase; task wall/CPU are sums over the shard tasks. "
        "`ceiling`: the speed-up over the single-process run if the shard tasks split evenly over the workers "
        "at the single-process CPU cost per task and the serial phases stayed as they are.",
        "",
        "| date | commit | system | docs | write shards | shard tasks | read | merge | total | task wall sum | task CPU sum | speed-up | ceiling |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['date']} | {r['git_commit']} | {r['system']} | {r['n_docs']:,} | {r['write_shards_seconds']} | {r['shard_tasks_seconds']} | "
            f"{r['read_cleaned_seconds']} | {r['merge_seconds']} | {r['seconds']} | {sum(r['task_wall_seconds']):.1f} | "
            f"{sum(r['task_cpu_seconds']):.1f} | {r.get('speedup_vs_single_process', '-')} | {r.get('ceiling_speedup', '-')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    from bench_clean import run_fields
    from bench_scaling import append

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-rows", type=int, default=50_000)
    args = parser.parse_args()
    run_id = uuid.uuid4().hex[:8]
    os.environ["PREFECT_HOME"] = str(WORK / f"prefect-{run_id}")
    path = str(corpus_path(args.docs))
    single = in_fresh_process(phases, path, "local", 1, args.shard_rows)
    sharded = in_fresh_process(phases, path, "dask", args.workers, args.shard_rows)
    serial = single["write_shards_seconds"] + single["read_cleaned_seconds"] + single["merge_seconds"]
    ideal = serial + sum(single["task_cpu_seconds"]) / args.workers
    pair = []
    for system, cost in (("ours", sharded), ("single_process", single)):
        pair.append({"bench": "dask_phases", "system": system, "n_docs": args.docs, **cost,
                     "workers": args.workers if system == "ours" else 1, **run_fields(run_id)})
    pair[0]["speedup_vs_single_process"] = round(single["seconds"] / sharded["seconds"], 2)
    pair[0]["ceiling_speedup"] = round(single["seconds"] / ideal, 2)
    print(json.dumps(pair), flush=True)
    (RESULTS / "dask_phases.md").write_text(markdown(append("dask_phases", pair)))


if __name__ == "__main__":
    main()
