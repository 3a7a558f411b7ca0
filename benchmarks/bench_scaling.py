"""Cleaning at scale: time and peak memory on 10k to 1M short documents, and Dask against one process.

The corpus: short documents (two random sentences of the demo abstracts, about 50 words),
seeded, with the few exact and near duplicates that random sentence pairs produce. Each
measurement runs in a fresh process; peak memory is the largest summed RSS of that process and
all its children (the Dask scheduler's nannies and workers), sampled every 0.1 s.

- `scaling`: the cleaning stage in one process (`stages.cleaning.clean`) at each size.
- `dask`: the curate flow's sharded cleaning (shard files, `clean-shard` tasks, global merge)
  on prefect-dask's DaskTaskRunner with 2 local worker processes (`system: ours`) against the
  same flow with one shard at a time in one process (`system: single_process`), timed phase by
  phase, with the best speed-up the serial phases allow (`ceiling_speedup`), and what the machine
  itself gives: the same shard work in one plain process against 2 (`machine_parallel_yield`, no
  Dask or Prefect) and the speed-up that yield allows (`machine_ceiling_speedup`).

Appends records to results/bench_scaling.jsonl and results/bench_dask.jsonl and rewrites their
Markdown tables and results/bench_scaling.png.

    python benchmarks/bench_scaling.py [--sizes 10000 100000 1000000] [--dask-size 1000000]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

import harness
from harness import RESULTS, ROOT

ABSTRACTS = ROOT / "data" / "medical_abstracts" / "medical_tc_test.csv"
WORK = ROOT / "benchmarks" / "work"
TARGETS = {"max_peak_rss_mb_at_1m": 2048, "dask_speedup": 1.6}
PHASES = ("write_shards", "shard_tasks", "read_cleaned", "merge")


def short_documents(n_docs: int, seed: int = 0) -> pa.Table:
    """`n_docs` rows in the row schema, each two sentences of the demo abstracts (so nearly all distinct)."""
    from schemas.rows import conform_rows

    sentences = (
        pl.read_csv(ABSTRACTS)
        .select(pl.col("medical_abstract").str.split(". ").explode().str.strip_chars().alias("sentence"))
        .filter(pl.col("sentence").str.count_matches(" ") >= 6)
        .unique(maintain_order=True)["sentence"]
    )
    rng = np.random.default_rng(seed)
    first = sentences.gather(rng.integers(len(sentences), size=n_docs))
    second = sentences.gather(rng.integers(len(sentences), size=n_docs))
    texts = first + ". " + second
    frame = pl.DataFrame({"text": texts}).with_row_index("row").select(
        id=pl.concat_str([pl.lit("doc-"), pl.col("row").cast(pl.String)]),
        text="text",
        label=pl.lit("x"),
        split=pl.lit("labeled"),
        origin=pl.lit("original"),
    )
    return conform_rows(frame.to_arrow())


def corpus_path(n_docs: int) -> Path:
    """The corpus of `n_docs` short documents as Parquet, written once."""
    path = WORK / f"short_docs_{n_docs}.parquet"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(short_documents(n_docs), path)
    return path


class PeakMemory:
    """Largest summed RSS of this process and its children, sampled in a background thread."""

    def __init__(self, interval: float = 0.1):
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak_bytes = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psutil

        while not self._stop.is_set():
            total = 0
            for process in [self._process, *self._process.children(recursive=True)]:
                try:
                    total += process.memory_info().rss
                except psutil.Error:
                    pass
            self.peak_bytes = max(self.peak_bytes, total)
            self._stop.wait(self._interval)

    def __enter__(self) -> "PeakMemory":
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def clean_in_process(path: str) -> dict:
    """The cleaning stage in this process on the corpus at `path`."""
    from stages.cleaning import CleaningConfig, clean

    with PeakMemory() as memory:
        table = pq.read_table(path)
        with harness.timed() as timing:
            result = clean(table, CleaningConfig())
    return {"seconds": timing.seconds, "peak_rss_mb": memory.peak_bytes / 2**20, "rows_out": result.kept.num_rows,
            "rejected": result.rejected.num_rows, "rejected_ids": None}


def clean_with_flow(path: str, runner: str, workers: int, shard_rows: int) -> dict:
    """The curate flow's sharded cleaning on `runner`, timed phase by phase.

    Phases: writing the raw shards, the `clean-shard` tasks (each also reports its own wall and CPU
    seconds, in whichever process ran it), reading the cleaned shards back, the global merge. The
    kept ids' digest shows both runners agree.
    """
    import hashlib
    import tempfile

    from prefect import flow, task, unmapped
    from prefect.cache_policies import NO_CACHE

    from flows.execution import run_on_runner
    from flows.shards import clean_shard_task, read_cleaned_shard, write_shards
    from flows.config import ExecutionConfig
    from stages.cleaning import CleaningConfig, merge_shards

    @task(name="timed-clean-shard", cache_policy=NO_CACHE)
    def timed_clean_shard(config: CleaningConfig, shard_path: str) -> tuple[str, float, float]:
        cpu = time.process_time()
        with harness.timed() as wall:
            out = clean_shard_task.fn(config, shard_path)
        return out, wall.seconds, time.process_time() - cpu

    @flow(name="bench-sharded-clean")
    def sharded_clean(table_path: str, shard_dir: str) -> dict:
        table = pq.read_table(table_path)
        marks = [time.perf_counter()]  # after the task runner (the Dask cluster) started
        shards = write_shards(table, Path(shard_dir), "raw", shard_rows)
        marks.append(time.perf_counter())
        done = [future.result() for future in timed_clean_shard.map(unmapped(CleaningConfig()), shards)]
        marks.append(time.perf_counter())
        cleaned = [read_cleaned_shard(out) for out, _, _ in done]
        marks.append(time.perf_counter())
        result = merge_shards(table, cleaned, CleaningConfig(), marks[0])
        marks.append(time.perf_counter())
        kept_ids = "\n".join(result.kept.column("id").to_pylist()).encode()
        return {"seconds": marks[-1] - marks[0], "rows_out": result.kept.num_rows, "rejected": result.rejected.num_rows,
                "kept_ids_sha256": hashlib.sha256(kept_ids).hexdigest(), "shards": len(shards),
                **{f"{name}_seconds": round(end - start, 2) for name, start, end in zip(PHASES, marks, marks[1:])},
                "task_wall_seconds": round(sum(wall for _, wall, _ in done), 2),
                "task_cpu_seconds": round(sum(cpu for _, _, cpu in done), 2)}

    @flow(name="bench-clean-on-runner")
    def on_runner(table_path: str, shard_dir: str) -> dict:
        return run_on_runner(sharded_clean, ExecutionConfig(runner=runner, workers=workers, shard_rows=shard_rows), table_path, shard_dir)

    with PeakMemory() as memory, tempfile.TemporaryDirectory(dir=WORK) as shard_dir, harness.timed() as with_startup:
        outcome = on_runner(path, shard_dir)
    return {**outcome, "seconds_with_startup": with_startup.seconds, "peak_rss_mb": memory.peak_bytes / 2**20}


def _serial_seconds(single: dict) -> float:
    """Seconds of the phases outside the shard tasks (write, read back, merge)."""
    return sum(single[f"{name}_seconds"] for name in PHASES if name != "shard_tasks")


def ceiling_speedup(single: dict, workers: int) -> float:
    """The best speed-up `workers` could give over `single`: the serial phases stay as they are and the
    shard tasks split evenly over the workers at the single-process CPU cost."""
    return single["seconds"] / (_serial_seconds(single) + single["task_cpu_seconds"] / workers)


def machine_ceiling_speedup(single: dict, parallel_yield: float) -> float:
    """The speed-up over `single` if the shard tasks ran `parallel_yield` times faster (what plain worker
    processes get from this machine) and the serial phases stayed as they are."""
    return single["seconds"] / (_serial_seconds(single) + single["shard_tasks_seconds"] / parallel_yield)


def _warm_worker(started) -> None:
    """Import the cleaning code (and Prefect, which the task wrapper needs) and load the language
    detector; then wait until every process of the pool got this far, so timing starts with all warm."""
    from flows.shards import clean_shard_task  # noqa: F401  (imported for its cost, not its name)
    from schemas.rows import conform_rows
    from stages.cleaning import CleaningConfig, clean_shard

    clean_shard(conform_rows(short_documents(200)), CleaningConfig())
    started.wait(timeout=600)  # raises rather than hangs if a process of the pool never gets here


def _clean_shard_file(path: str) -> int:
    """Clean one shard file as the flow's `clean-shard` task does; return the process id that did it."""
    from flows.shards import clean_shard_task
    from stages.cleaning import CleaningConfig

    clean_shard_task.fn(CleaningConfig(), path)
    return os.getpid()


def _seconds_on_pool(paths: list[str], processes: int) -> tuple[float, int]:
    """Seconds `processes` warmed-up spawned processes take to clean the shard files `paths` between
    them, and how many of the processes did some of it."""
    context = multiprocessing.get_context("spawn")
    warm = context.Barrier(processes)
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_warm_worker, initargs=(warm,)) as pool:
        list(pool.map(_clean_shard_file, paths[:processes]))  # starts the processes; returns once all are warm
        with harness.timed() as timing:
            workers = set(pool.map(_clean_shard_file, paths))
        return timing.seconds, len(workers)


def machine_parallel_yield(path: str, workers: int, shard_rows: int, n_shards: int) -> dict:
    """How much faster `workers` plain processes clean the same shards than one, no Dask or Prefect involved.

    The processes are set up as the two runners set them up (one polars thread per worker process,
    the single process with polars' default pool), so the ratio bounds what any scheduler can get
    from this machine on the shard tasks.
    """
    import tempfile

    from flows.execution import LOCAL_WORKER_ENVIRONMENT, environment
    from flows.shards import write_shards

    if n_shards % workers:
        raise ValueError(f"{n_shards} shards do not split evenly over {workers} processes")
    table = pq.read_table(path).slice(0, n_shards * shard_rows)
    with tempfile.TemporaryDirectory(dir=Path(path).parent) as directory:
        paths = write_shards(table, Path(directory), "raw", shard_rows)
        one, _ = _seconds_on_pool(paths, 1)
        with environment(LOCAL_WORKER_ENVIRONMENT):
            many, busy = _seconds_on_pool(paths, workers)
    return {"shards": len(paths), "one_process_seconds": round(one, 2), "worker_processes_seconds": round(many, 2),
            "processes_used": busy, "yield": round(one / many, 3)}


def base_record(bench: str, system: str, n_docs: int, run_id: str, cost: dict) -> dict:
    return {
        "bench": bench,
        "system": system,
        "n_docs": n_docs,
        "seconds": round(cost["seconds"], 3),
        "docs_per_s": round(n_docs / cost["seconds"], 1),
        "peak_rss_mb": round(cost["peak_rss_mb"], 1),
        "rows_out": cost["rows_out"],
        "rejected": cost["rejected"],
        **harness.provenance(run_id),
    }


def scaling_markdown(records: list[dict]) -> str:
    lines = [
        "# Cleaning at scale (one process)",
        "",
        "Written by `benchmarks/bench_scaling.py` from `bench_scaling.jsonl`: short documents (1-2 sentences),"
        " default cleaning settings, fresh process per size. Target: time close to linear in the number of"
        " documents, peak memory under 2 GB at a million.",
        "",
        "| date | commit | docs | seconds | docs/s | us per doc vs smallest | peak RSS MB | rejected | CPUs |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in records:
        lines.append(
            f"| {r['date']} | {r['git_commit']} | {r['n_docs']:,} | {r['seconds']:.1f} | {r['docs_per_s']:,.0f} "
            f"| {r['time_per_doc_vs_smallest']:.2f}x | {r['peak_rss_mb']:,.0f} | {r['rejected']:,} | {r['cpu_count']} |"
        )
    return "\n".join(lines) + "\n"


def dask_markdown(records: list[dict]) -> str:
    lines = [
        "# Dask against one process: the curate flow's sharded cleaning",
        "",
        "Written by `benchmarks/bench_scaling.py` from `bench_dask.jsonl`. `ours`: DaskTaskRunner with a local"
        " cluster of 2 worker processes; `single_process`: the same flow, one shard at a time. Target: at least"
        " 1.6x faster on a million short documents. Seconds per phase (write shards, shard tasks, read back,"
        " global merge); task wall/CPU are sums over the shard tasks. `ceiling`: the speed-up over one process"
        " if the shard tasks split evenly over the workers at the single-process CPU cost and the serial phases"
        " stayed as they are. `yield`: how much faster 2 plain worker processes (no Dask, no Prefect, warmed up) clean"
        " the same shards than one process on this machine; `machine ceiling`: the speed-up if the shard tasks ran"
        " that much faster and the serial phases stayed as they are. Older records lack these columns (-).",
        "",
        "| date | commit | system | docs | shards | seconds | docs/s | write | tasks | read | merge | task wall | task CPU "
        "| speed-up | ceiling | yield | machine ceiling | peak RSS MB | same kept ids |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        speedup = f"{r['speedup_vs_single_process']:.2f}x" if "speedup_vs_single_process" in r else "1.00x"
        ceiling = f"{r['ceiling_speedup']:.2f}x" if "ceiling_speedup" in r else "-"
        same = {True: "yes", False: "no"}.get(r.get("same_kept_ids_as_single_process"), "-")
        machine_yield = f"{r['machine_parallel_yield']['yield']:.2f}x" if "machine_parallel_yield" in r else "-"
        machine_ceiling = f"{r['machine_ceiling_speedup']:.2f}x" if "machine_ceiling_speedup" in r else "-"
        phases = " | ".join(str(r.get(key, "-")) for key in
                            [f"{name}_seconds" for name in PHASES] + ["task_wall_seconds", "task_cpu_seconds"])
        lines.append(
            f"| {r['date']} | {r['git_commit']} | {r['system']} | {r['n_docs']:,} | {r['shards']} | {r['seconds']:.1f} "
            f"| {r['docs_per_s']:,.0f} | {phases} | {speedup} | {ceiling} | {machine_yield} | {machine_ceiling} "
            f"| {r['peak_rss_mb']:,.0f} | {same} |"
        )
    return "\n".join(lines) + "\n"


def plot(scaling: list[dict], dask: list[dict]) -> None:
    """Seconds against documents (log-log, with the linear line) and the Dask comparison."""
    figure, (left, right) = harness.pyplot().subplots(1, 2, figsize=(10, 4))
    latest = [r for r in scaling if r["run_id"] == scaling[-1]["run_id"]]
    sizes = np.array([r["n_docs"] for r in latest])
    seconds = np.array([r["seconds"] for r in latest])
    left.loglog(sizes, seconds, "o-", label="measured")
    left.loglog(sizes, seconds[0] * sizes / sizes[0], "--", color="grey", label="linear from the smallest")
    for size, second, record in zip(sizes, seconds, latest):
        left.annotate(f"{record['peak_rss_mb']:.0f} MB", (size, second), textcoords="offset points", xytext=(5, -12), fontsize=8)
    left.set(xlabel="documents", ylabel="seconds", title="Cleaning, one process")
    left.legend()
    if dask:
        pair = [r for r in dask if r["run_id"] == dask[-1]["run_id"]]
        right.bar([r["system"] for r in pair], [r["seconds"] for r in pair], color=["tab:blue", "tab:grey"][: len(pair)])
        right.set(ylabel="seconds", title=f"Sharded cleaning, {pair[0]['n_docs']:,} documents")
    figure.tight_layout()
    harness.save_figure(figure, RESULTS / "bench_scaling.png", dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--dask-size", type=int, default=1_000_000, help="0 skips the Dask comparison")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--shard-rows", type=int, default=50_000)
    parser.add_argument("--yield-shards", type=int, default=8, help="shards cleaned by 1 and by --workers plain processes")
    args = parser.parse_args()
    run_id = harness.new_run_id()[:8]
    # a Prefect home of its own: no other run's server database to contend with
    os.environ["PREFECT_HOME"] = str(WORK / f"prefect-{run_id}")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

    scaling = []
    for n_docs in sorted(args.sizes):
        cost = harness.in_fresh_process(clean_in_process, str(corpus_path(n_docs)))
        scaling.append(base_record("scaling", "ours", n_docs, run_id, cost))
        print(json.dumps(scaling[-1]), flush=True)
    for record in scaling:
        record["time_per_doc_vs_smallest"] = round((record["seconds"] / record["n_docs"]) / (scaling[0]["seconds"] / scaling[0]["n_docs"]), 3)
    # every record so far: a Dask-only run (--sizes) still plots them
    all_scaling = harness.write_records(RESULTS / "bench_scaling.jsonl", scaling)
    if scaling:
        harness.write_text(RESULTS / "bench_scaling.md", scaling_markdown(all_scaling))

    all_dask = []
    if args.dask_size:
        path = str(corpus_path(args.dask_size))
        single = harness.in_fresh_process(clean_with_flow, path, "local", 1, args.shard_rows)
        sharded = harness.in_fresh_process(clean_with_flow, path, "dask", args.workers, args.shard_rows)
        pair = []
        for system, cost in (("ours", sharded), ("single_process", single)):
            record = base_record("dask", system, args.dask_size, run_id, cost)
            record.update(shards=cost["shards"], seconds_with_startup=round(cost["seconds_with_startup"], 3), kept_ids_sha256=cost["kept_ids_sha256"], workers=args.workers if system == "ours" else 1)
            record.update({key: cost[key] for key in cost if key.startswith(PHASES) or key.startswith("task_")})
            pair.append(record)
        pair[0]["speedup_vs_single_process"] = round(single["seconds"] / sharded["seconds"], 3)
        pair[0]["ceiling_speedup"] = round(ceiling_speedup(single, args.workers), 2)
        machine = harness.in_fresh_process(machine_parallel_yield, path, args.workers, args.shard_rows, args.yield_shards)
        pair[0]["machine_parallel_yield"] = machine
        pair[0]["machine_ceiling_speedup"] = round(machine_ceiling_speedup(single, machine["yield"]), 2)
        pair[0]["same_kept_ids_as_single_process"] = sharded["kept_ids_sha256"] == single["kept_ids_sha256"]
        print(json.dumps(pair), flush=True)
        all_dask = harness.write_records(RESULTS / "bench_dask.jsonl", pair)
        harness.write_text(RESULTS / "bench_dask.md", dask_markdown(all_dask))
    if all_scaling:
        plot(all_scaling, all_dask)


if __name__ == "__main__":
    main()
