"""The robustness flow: offline TextAttack recipes against the raw and the curated model, side by side."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from experiments.metrics import mean_confidence_interval
from experiments.report import merge_records
from experiments.robustness import robustness_cell
from flows.curate import ingest_task, run_labels, start_run
from flows.progress import progress_bar
from flows.config import RunConfig
from model_hooks.encoders import use_encoder
from schemas.files import atomic_write_bytes

RECORD_KEY = ("dataset", "trainer", "encoder", "model", "recipe", "k", "seed")


def records_path(config: RunConfig) -> Path:
    return Path(config.experiment.results_dir) / f"robustness_{config.dataset_name}.jsonl"


@task(name="robustness cells", cache_policy=NO_CACHE)
def robustness_task(config: RunConfig, raw_path: str, labels: list[str]) -> list[dict]:
    """Every cell's records, each cell's saved as soon as it finishes (a long run stopped midway keeps them)."""
    settings = config.experiment.robustness
    rows = pq.read_table(raw_path)
    records = []
    with progress_bar(f"{', '.join(settings.recipes)} attacks", len(settings.ks) * len(settings.seeds)) as advance:
        for k in settings.ks:
            for seed in settings.seeds:
                cell = robustness_cell(rows, config, labels, k, seed)
                merge_records(records_path(config), cell, RECORD_KEY, replace=RECORD_KEY)
                records.extend(cell)
                advance(1)
    return records


def _interval(values: list[float], scale: float = 1.0, digits: int = 1, sign: str = "") -> str:
    """`mean [95% t-interval]` over seeds of the finite `values` (times `scale`); `[n/a]` under two seeds."""
    stats = mean_confidence_interval([value * scale for value in values if value is not None and math.isfinite(value)])
    if not stats["n"]:
        return "n/a"
    number = lambda value: f"{value:{sign}.{digits}f}"  # noqa: E731
    spread = f"[{number(stats['ci_low'])}, {number(stats['ci_high'])}]" if stats["n"] > 1 else "[n/a]"
    return f"{number(stats['mean'])} {spread}"


def summary_table(records: list[dict]) -> str:
    """Markdown per recipe, k and model other than raw, over the seeds with both: success rate of raw and of the
    model and their paired difference, words perturbed per successful attack (each mean with its 95% t-interval),
    clean accuracy on the sampled rows, rows sampled and attacked, and attack seconds per seed (both models)."""
    cells = defaultdict(dict)
    for r in records:
        cells[(r["recipe"], r["k"], r.get("encoder", "minilm"))].setdefault(r["model"], {})[r["seed"]] = r
    lines = [
        "| recipe | k | model | seeds | rows sampled | attacked raw / model | raw success % [95% CI] | model success % [95% CI] "
        "| model - raw (points) [95% CI] | words perturbed raw [95% CI] | words perturbed model [95% CI] "
        "| clean accuracy raw / model | attack seconds per seed |",
        "|---|---:|---|---:|---:|---|---|---|---|---|---|---|---:|",
    ]
    for (recipe, k, encoder), by_model in sorted(cells.items()):
        raw = by_model.get("raw", {})
        for name, other in sorted(by_model.items(), key=lambda item: (item[0] != "curated", item[0])):
            seeds = sorted(set(raw) & set(other))
            if name == "raw" or not seeds:
                continue
            field = lambda model, key: [model[s].get(key) for s in seeds]  # noqa: E731
            mean = lambda model, key: sum(field(model, key)) / len(seeds)  # noqa: E731
            attacked = lambda model: mean(model, "succeeded") + mean(model, "failed")  # noqa: E731
            differences = [c - r for c, r in zip(field(other, "attack_success_rate"), field(raw, "attack_success_rate"))]
            seconds = [r + c if r is not None and c is not None else None for r, c in zip(field(raw, "seconds"), field(other, "seconds"))]
            lines.append(
                f"| {recipe} | {k} | {name if encoder == 'minilm' else f'{name} ({encoder})'} | {len(seeds)} | {mean(raw, 'n'):.0f} | {attacked(raw):.1f} / {attacked(other):.1f} "
                f"| {_interval(field(raw, 'attack_success_rate'), 100)} | {_interval(field(other, 'attack_success_rate'), 100)} "
                f"| {_interval(differences, 100, sign='+')} | {_interval(field(raw, 'avg_words_perturbed'), digits=2)} "
                f"| {_interval(field(other, 'avg_words_perturbed'), digits=2)} "
                f"| {mean(raw, 'clean_accuracy'):.3f} / {mean(other, 'clean_accuracy'):.3f} | {_interval(seconds, digits=0)} |"
            )
    return "\n".join(lines) + "\n"


@flow(name="robustness")
def robustness_flow(config: RunConfig, run_id: str | None = None) -> dict:
    """Attack the raw and curated `head` models for each (k, seed) of `experiment.robustness`."""
    with use_encoder(config.embedding.models[0]):
        return _robustness(config, run_id)


def _robustness(config: RunConfig, run_id: str | None) -> dict:
    folder = start_run(config, run_id)
    raw_path = ingest_task(config, str(folder.root))
    labels = run_labels(config, Path(raw_path))
    records = robustness_task(config, raw_path, labels)
    results_dir, path = Path(config.experiment.results_dir), records_path(config)
    merged = merge_records(path, records, RECORD_KEY, replace=RECORD_KEY)
    table = summary_table(merged)
    title = (f"# Robustness: {config.dataset_name}\n\nAttack success rate on the same test-half eval rows for the raw `head` model and "
             "each other model (curated; curated+adversarial: the curated rows plus adversarial add-back; <model>+typo_reader: "
             "read through the typo reader (`experiment.typo_reader`), raw+typo_reader showing the reader's own share); success: the prediction "
             "flips, among the rows the model got right; mean over seeds with 95% t-intervals.\n\n")
    atomic_write_bytes(results_dir / f"robustness_{config.dataset_name}.md", (title + table).encode("utf-8"))
    create_markdown_artifact(key="robustness", markdown=title + summary_table(records), description="Attack success rate, raw vs curated model")
    folder.finish()
    return {"run_dir": str(folder.root), "records": str(path), "table": summary_table(records)}
