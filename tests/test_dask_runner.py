"""The curate flow on prefect-dask's DaskTaskRunner (a real local cluster) gives the single-process rows."""

import csv

import polars as pl
import pyarrow.parquet as pq
import pytest

from flows.curate import curate_flow
from flows.config import RunConfig
from stages.ingest import is_eval_text

pytestmark = pytest.mark.slow

ABSTRACTS = "data/medical_abstracts/medical_tc_test.csv"
BOUNDARIES = ("10_clean", "20_augmented", "30_adapted", "40_validated")


def _rows(root) -> list[tuple[str, str]]:
    """12 real abstracts per class plus an exact copy and a near copy placed in later shards than their originals."""
    frame = pl.read_csv(root / ABSTRACTS).filter(pl.int_range(pl.len()).over("condition_label") < 12)
    rows = list(zip(frame["medical_abstract"], frame["condition_label"].cast(pl.String)))
    first, second = [row for row in rows if not is_eval_text(row[0])][:2]
    return rows + [first, (second[0].replace(" the ", " a ", 1), second[1])]


def _config(tmp_path, root, execution: dict) -> RunConfig:
    data = tmp_path / "rows.csv"
    with data.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["abstract", "condition"])
        writer.writerows(_rows(root))
    config = tmp_path / "run.yaml"
    config.write_text(
        "name: sharded\nruns_dir: runs\nlabeled_per_class: 2\n"
        "ingest:\n  sources:\n    - path: rows.csv\n  columns: {text: abstract, label: condition}\n  eval_rule: sha256_even\n"
        "augmentation:\n  ops: [wordnet_synonym, random_swap, sentence_dropout, keyboard, word_vector]\n",
        encoding="utf-8",
    )
    return RunConfig.load(config, overrides={"execution": execution})


def _boundary(run, name: str) -> pl.DataFrame:
    return pl.from_arrow(pq.read_table(run / f"{name}.parquet", columns=["id", "text", "label", "split", "origin"]))


def _rejects(run, stage: str) -> pl.DataFrame:
    return pl.from_arrow(pq.read_table(run / "rejects" / f"{stage}.parquet", columns=["id", "reason"]))


def test_a_dask_run_on_a_local_cluster_gives_the_rows_of_a_single_process_run(tmp_path, request):
    root = request.config.rootpath
    shards = {"shard_rows": 7, "parents_per_shard": 4}
    single = curate_flow(_config(tmp_path, root, {"runner": "local", **shards}), run_id="single")
    sharded = curate_flow(_config(tmp_path, root, {"runner": "dask", "workers": 2, **shards}), run_id="dask")

    assert (single["runner"], sharded["runner"]) == ("local", "dask")
    single_run, dask_run = tmp_path / "runs" / "single", tmp_path / "runs" / "dask"
    clean_rejects = _rejects(dask_run, "clean")
    # the planted copies sit in the last shard, their originals in the first: found across shards
    assert {"exact_duplicate", "near_duplicate"} <= set(clean_rejects["reason"].to_list())
    assert _boundary(dask_run, "20_augmented").filter(pl.col("origin") == "augmented").height > 0
    for name in BOUNDARIES:
        assert _boundary(dask_run, name).equals(_boundary(single_run, name)), name
    for stage in ("clean", "augment", "adapt", "validate"):
        assert _rejects(dask_run, stage).equals(_rejects(single_run, stage)), stage
    assert not (dask_run / "shards").exists()


def test_execution_settings_reject_an_address_without_the_dask_runner(tmp_path, request):
    from flows.config import ConfigError

    with pytest.raises(ConfigError, match="address is only used with runner: dask"):
        _config(tmp_path, request.config.rootpath, {"runner": "local", "address": "tcp://127.0.0.1:8786"})


def test_local_dask_workers_run_one_polars_thread_each_and_the_limit_stays_out_of_this_process(monkeypatch):
    import os

    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("a one-core machine runs one polars thread anyway")
    monkeypatch.delenv("POLARS_MAX_THREADS", raising=False)
    from prefect import flow, task

    from flows.execution import run_on_runner
    from flows.config import ExecutionConfig

    pool_size = task(pl.thread_pool_size)

    @flow
    def on_workers() -> list[int]:
        return [pool_size.submit().result() for _ in range(2)]

    @flow
    def outer() -> list[int]:
        return run_on_runner(on_workers, ExecutionConfig(runner="dask", workers=2))

    assert outer() == [1, 1]
    assert "POLARS_MAX_THREADS" not in os.environ
