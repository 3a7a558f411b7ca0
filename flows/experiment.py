"""The few-shot experiment flow: for each k and seed, raw vs curated vs ablations vs references."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from experiments.provenance import run_fields
from experiments.report import merge_records, noise_summary, plot_f1_against_k, summarize, write_markdown
from experiments.runner import run_cell
from experiments.sampling import check_classes
from flows.curate import ingest_task, report_task, run_labels, start_run
from flows.progress import progress_bar
from flows.config import RunConfig
from model_hooks.encoders import use_encoder
from schemas.files import atomic_write_json

EMBEDDING_MODELS = {"head", "frozen_lr", "tuned_lr", "name_prior"}


@task(name="embed", cache_policy=NO_CACHE)
def embed_task(raw_path: str, embedding_mode: str, encoders: list[str]) -> None:
    """Embed every text once up front with each configured encoder (cached on disk), so the cells only read vectors."""
    from model_hooks.embedder import get_embedder

    texts = pq.read_table(raw_path, columns=["text"]).column("text").to_pylist()
    for spec in encoders:
        with use_encoder(spec) as encoder:
            embedder = get_embedder(embedding_mode)
            with progress_bar(f"embedding ({encoder.name}, {embedding_mode})", len(texts)) as advance:
                for start in range(0, len(texts), 256):
                    embedder.embed(texts[start : start + 256])
                    advance(min(256, len(texts) - start))


@task(name="few-shot cells", cache_policy=NO_CACHE)
def cells_task(config: RunConfig, raw_path: str, labels: list[str], k: int, run_root: str, provenance: dict) -> list[dict]:
    """Every seed's cell at `k`; each cell's records are saved as soon as it finishes (a long run stopped
    midway keeps them), and its report (tuning decisions, stage stats) goes to `cells/` in the run folder."""
    rows = pq.read_table(raw_path)
    records_path = Path(config.experiment.results_dir) / f"experiment_{config.dataset_name}.jsonl"
    records = []
    with progress_bar(f"k={k}", len(config.experiment.seeds)) as advance:
        for seed in config.experiment.seeds:
            cell, report = run_cell(rows, config, labels, k, seed)
            cell = [{**record, **{key: provenance[key] for key in ("git_commit", "git_dirty")}} for record in cell]
            atomic_write_json(Path(run_root) / "cells" / f"k{k}-seed{seed}.json", report)
            merge_records(records_path, cell)
            records.extend(cell)
            advance(1)
    return records


def experiment_summary(records: list[dict]) -> dict:
    """What experiment_summary.json holds: clean macro-F1 per arm, the paired uplifts, and F1 against noise."""
    arms, uplifts = summarize(records)
    return {"arms": arms, "uplifts": uplifts, "noise": noise_summary(records)}


@task(name="results", cache_policy=NO_CACHE)
def results_task(config: RunConfig, records: list[dict], run_root: str) -> dict:
    results_dir = Path(config.experiment.results_dir)
    name = config.dataset_name
    merged = merge_records(results_dir / f"experiment_{name}.jsonl", records)
    title = f"Few-shot experiment: {name}"
    write_markdown(merged, results_dir / f"experiment_{name}.md", title)
    plot_f1_against_k(merged, results_dir / f"experiment_{name}.png", title)
    summary = experiment_summary(records)
    atomic_write_json(Path(run_root) / "experiment_summary.json", summary)
    table = "\n".join(
        f"| {u['eval_split']} | {u['arm']} | {u['against']} | {u['k']} | {u['mean'] * 100:+.2f} | [{u['ci_low'] * 100:+.2f}, {u['ci_high'] * 100:+.2f}] |"
        for u in summary["uplifts"]
        if u["n"] > 1
    )
    create_markdown_artifact(
        key="experiment-uplift",
        markdown=f"# {title}\n\n| split | arm | against | k | uplift (points) | 95% CI |\n|---|---|---|---:|---:|---|\n{table}\n",
        description="Paired macro-F1 uplift over the raw k-shot data",
    )
    return {"records": str(results_dir / f"experiment_{name}.jsonl"), "markdown": str(results_dir / f"experiment_{name}.md"),
            "plot": str(results_dir / f"experiment_{name}.png"), **summary}


def record_wall_time(config: RunConfig, seconds: float, embedding: dict, provenance: dict) -> dict:
    """Append the run's wall time to results/experiment_wall_time.jsonl, with the texts this process embedded and the
    seconds it took, per encoder (0 texts when the disk cache held them all: a warm run)."""
    settings = config.experiment
    record = {"bench": "experiment_wall", "system": "ours", "dataset": config.dataset_name, "encoder": config.embedding.label,
              "trainer": settings.trainer,
              "ks": settings.ks, "seeds": len(settings.seeds), "reference_arms": settings.reference_arms,
              "curated_arms": settings.curated_arms, "ablations": settings.ablations,
              "seconds": round(seconds, 1), "texts_embedded": sum(work["texts"] for work in embedding.values()),
              "embedding": embedding, **provenance}
    path = Path(settings.results_dir) / "experiment_wall_time.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    return record


@flow(name="experiment")
def experiment_flow(config: RunConfig, run_id: str | None = None) -> dict:
    """Run every (k, seed) cell of `config.experiment` and write the results files."""
    with use_encoder(config.embedding.models[0]):
        return _experiment(config, run_id)


def _experiment(config: RunConfig, run_id: str | None) -> dict:
    from model_hooks.embedder import embedding_work

    started = time.perf_counter()
    provenance = run_fields(uuid.uuid4().hex[:8])  # the commit and load as the run starts
    work_before = embedding_work()
    folder = start_run(config, run_id)
    raw_path = ingest_task(config, str(folder.root))
    labels = run_labels(config, Path(raw_path))
    pool = pq.read_table(raw_path, columns=["label", "split"]).to_pylist()
    counts = {label: sum(1 for row in pool if row["split"] == "labeled" and row["label"] == label) for label in labels}
    for k in config.experiment.ks:
        check_classes(counts, k)  # fail before any training, naming the class
    settings = config.experiment
    if EMBEDDING_MODELS & {settings.trainer, *settings.reference_arms}:
        embed_task(raw_path, settings.embedding_mode, config.embedding.models)
    records = []
    for k in settings.ks:
        records.extend(cells_task(config, raw_path, labels, k, str(folder.root), provenance))
    summary = results_task(config, records, str(folder.root))
    report = report_task(str(folder.root))
    wall = record_wall_time(config, time.perf_counter() - started, embedding_work(since=work_before), provenance)
    folder.finish()
    return {"run_dir": str(folder.root), "report": report, "wall_time": wall, **summary}
