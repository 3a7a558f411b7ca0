"""Robustness probe of the trained models: the same attack on the raw and the curated `head` model.

For each (k, seed) cell: draw the k-shot set, curate it, train the `head` trainer on the raw and on
the curated rows, and attack both on one seeded sample of eval rows (the eval split is only read,
as in scoring). Records follow ARCHITECTURE.md ("robustness_<dataset>.jsonl").
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from experiments.sampling import draw_k_shot
from model_hooks.robustness import probe
from schemas.rows import Split, family_weights
from stages.pipeline import run_pipeline


def _labeled(rows: pa.Table) -> pa.Table:
    return rows.filter(pc.equal(rows.column("split"), Split.LABELED.value))


def head_model(train: pa.Table, labels: list[str], seed: int, embedding_mode: str, weighting: str):
    """Train the `head` trainer as the experiment does (`weighting` as `experiment.sample_weighting`);
    return texts -> probabilities, embedding without the disk cache (attacked texts are one-off
    variants that would only bloat it)."""
    from model_hooks.embedder import get_embedder
    from model_hooks.trainers import HeadTrainer, linear_probabilities

    cached = get_embedder(embedding_mode)
    weights = family_weights(train) if weighting == "family" else None
    weight, bias = HeadTrainer().fit_weights(cached.embed(train.column("text").to_pylist()), train.column("label").to_pylist(), labels, seed, weights)
    uncached = get_embedder(embedding_mode, cache_dir=None)

    return lambda texts: linear_probabilities(uncached.embed(texts), weight, bias)


def eval_sample(rows: pa.Table, size: int, seed: int) -> pa.Table:
    """A seeded sample of eval rows, ordered by id first so it depends only on the data and seed."""
    eval_rows = rows.filter(pc.equal(rows.column("split"), Split.EVAL.value))
    eval_rows = eval_rows.take(pc.sort_indices(eval_rows, [("id", "ascending")]))
    chosen = np.sort(np.random.default_rng(seed).choice(eval_rows.num_rows, size=min(size, eval_rows.num_rows), replace=False))
    return eval_rows.take(pa.array(chosen))


def robustness_cell(rows: pa.Table, config, labels: list[str], k: int, seed: int) -> list[dict]:
    """Records for the raw and the curated model of one (k, seed) cell."""
    settings = config.experiment.robustness
    drawn = draw_k_shot(rows, k, seed)
    curated, _ = run_pipeline(drawn, config, seed)
    sample = eval_sample(drawn, settings.sample, seed)
    texts = sample.column("text").to_pylist()
    gold = [labels.index(label) for label in sample.column("label").to_pylist()]
    records = []
    for name, train in (("raw", _labeled(drawn)), ("curated", _labeled(curated))):
        model = head_model(train, labels, seed, config.experiment.embedding_mode, config.experiment.sample_weighting)
        clean_accuracy = float((model(texts).argmax(axis=1) == np.asarray(gold)).mean())
        result = probe(model, texts, gold, settings.recipe, settings.query_budget, seed)
        records.append({
            "dataset": config.dataset_name, "trainer": "head", "model": name, "k": k, "seed": seed,
            "n_train": train.num_rows, "clean_accuracy": round(clean_accuracy, 4), "query_budget": settings.query_budget,
            **result.as_dict(),
        })
    return records
