"""The scaling benchmark's ceilings follow from its phase timings, and its machine yield really runs both pools."""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # spawned pool processes import it too
import bench_scaling  # noqa: E402

SINGLE = {"seconds": 70.0, "write_shards_seconds": 2.0, "shard_tasks_seconds": 60.0, "read_cleaned_seconds": 3.0,
          "merge_seconds": 5.0, "task_cpu_seconds": 64.0}


def test_machine_ceiling_divides_only_the_shard_tasks_by_the_yield():
    assert bench_scaling.machine_ceiling_speedup(SINGLE, 2.0) == pytest.approx(70 / (10 + 30))
    assert bench_scaling.machine_ceiling_speedup(SINGLE, 1.0) == pytest.approx(1.0)


def test_cpu_ceiling_splits_the_single_process_task_cpu_over_the_workers():
    assert bench_scaling.ceiling_speedup(SINGLE, 2) == pytest.approx(70 / (10 + 32))


def test_machine_yield_cleans_the_same_shards_in_one_and_in_two_processes(tmp_path):
    """Slow-ish (three spawned processes, each loading the language detector) but the only real check of the pools."""
    corpus = tmp_path / "corpus.parquet"
    pq.write_table(bench_scaling.short_documents(2_000), corpus)
    measured = bench_scaling.machine_parallel_yield(str(corpus), 2, 500, 4)
    assert measured["shards"] == 4
    assert measured["processes_used"] == 2
    assert measured["one_process_seconds"] > 0 and measured["worker_processes_seconds"] > 0
    one, many = measured["one_process_seconds"], measured["worker_processes_seconds"]  # each rounded to 0.01 s
    assert (one - 0.005) / (many + 0.005) - 0.001 <= measured["yield"] <= (one + 0.005) / (many - 0.005) + 0.001
    assert list(tmp_path.iterdir()) == [corpus]  # its shard files are gone


def test_dask_table_shows_the_yield_only_where_it_was_measured():
    common = {"date": "2026-12-02", "git_commit": "abc", "n_docs": 1000, "shards": 2, "seconds": 1.0, "docs_per_s": 1000.0,
              "peak_rss_mb": 10.0}
    old = {**common, "system": "ours", "speedup_vs_single_process": 1.1}
    new = {**old, "machine_parallel_yield": {"yield": 1.5}, "machine_ceiling_speedup": 1.3}
    header, _, old_row, new_row = bench_scaling.dask_markdown([old, new]).splitlines()[-4:]
    columns = [cell.strip() for cell in header.split("|")]
    cells = {name: [[cell.strip() for cell in row.split("|")][columns.index(name)] for row in (old_row, new_row)]
             for name in ("yield", "machine ceiling")}
    assert cells == {"yield": ["-", "1.50x"], "machine ceiling": ["-", "1.30x"]}


def test_machine_yield_refuses_shards_that_do_not_split_evenly(tmp_path):
    with pytest.raises(ValueError, match="split evenly"):
        bench_scaling.machine_parallel_yield(str(tmp_path / "unused.parquet"), 2, 500, 3)
