"""The robustness flow: DeepWordBug (or Pruthi) against the raw and the curated model, side by side."""

from __future__ import annotations

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
from schemas.files import atomic_write_bytes

RECORD_KEY = ("dataset", "trainer", "model", "recipe", "k", "seed")


@task(name="robustness cells", cache_policy=NO_CACHE)
def robustness_task(config: RunConfig, raw_path: str, labels: list[str]) -> list[dict]:
    settings = config.experiment.robustness
    rows = pq.read_table(raw_path)
    records = []
    with progress_bar(f"{settings.recipe} attacks", len(settings.ks) * len(settings.seeds)) as advance:
        for k in settings.ks:
            for seed in settings.seeds:
                records.extend(robustness_cell(rows, config, labels, k, seed))
                advance(1)
    return records


def summary_table(records: list[dict]) -> str:
    """Markdown: success rate per model (mean over seeds, 95% CI) and the paired curated - raw difference."""
    cells = defaultdict(dict)
    for r in records:
        cells[(r["recipe"], r["k"])].setdefault(r["model"], {})[r["seed"]] = r
    lines = [
        "| recipe | k | seeds | raw success rate | curated success rate | curated - raw (points) [95% CI] | words perturbed raw / curated | clean accuracy raw / curated |",
        "|---|---:|---:|---:|---:|---|---|---|",
    ]
    for (recipe, k), by_model in sorted(cells.items()):
        raw, curated = by_model.get("raw", {}), by_model.get("curated", {})
        seeds = sorted(set(raw) & set(curated))
        if not seeds:
            continue
        mean = lambda model, field: sum(model[s][field] for s in seeds) / len(seeds)  # noqa: E731
        diff = mean_confidence_interval([(curated[s]["attack_success_rate"] - raw[s]["attack_success_rate"]) * 100 for s in seeds])
        ci = f"[{diff['ci_low']:+.1f}, {diff['ci_high']:+.1f}]" if len(seeds) > 1 else "[n/a]"
        lines.append(
            f"| {recipe} | {k} | {len(seeds)} | {mean(raw, 'attack_success_rate'):.3f} | {mean(curated, 'attack_success_rate'):.3f} | "
            f"{diff['mean']:+.1f} {ci} | {mean(raw, 'avg_words_perturbed'):.2f} / {mean(curated, 'avg_words_perturbed'):.2f} | "
            f"{mean(raw, 'clean_accuracy'):.3f} / {mean(curated, 'clean_accuracy'):.3f} |"
        )
    return "\n".join(lines) + "\n"


@flow(name="robustness")
def robustness_flow(config: RunConfig, run_id: str | None = None) -> dict:
    """Attack the raw and curated `head` models for each (k, seed) of `experiment.robustness`."""
    folder = start_run(config, run_id)
    raw_path = ingest_task(config, str(folder.root))
    labels = run_labels(config, Path(raw_path))
    records = robustness_task(config, raw_path, labels)
    results_dir = Path(config.experiment.results_dir)
    path = results_dir / f"robustness_{config.dataset_name}.jsonl"
    merged = merge_records(path, records, RECORD_KEY, replace=RECORD_KEY)
    table = summary_table(merged)
    title = f"# Robustness: {config.dataset_name}\n\nAttack success rate on the same eval rows, `head` trainer (mean over seeds).\n\n"
    atomic_write_bytes(results_dir / f"robustness_{config.dataset_name}.md", (title + table).encode("utf-8"))
    create_markdown_artifact(key="robustness", markdown=title + summary_table(records), description="Attack success rate, raw vs curated model")
    folder.finish()
    return {"run_dir": str(folder.root), "records": str(path), "table": summary_table(records)}
