"""Robustness probe of the trained models: the same attacks on the raw and the curated `head` model.

For each (k, seed) cell: draw the k-shot set and build the raw and the curated training rows as the
experiment does (experiments/runner.py `run_cell`: the head's L2 by cross-validation, self-tuning,
`training_arms`; ablations off), train the `head` on each with that L2 and the family weights, and
attack both with every recipe on one seeded sample of test-half eval rows, the rows the experiment
reports on (dev rows are for tuning). With `adversarial_addback` (`--addback`) a third model,
`curated+adversarial`, trains on the curated rows plus the adversarial add-back children of their
originals (stages/adversarial_addback.py), gated like every child. With the typo reader
(`experiment.typo_reader`) every model but raw reads its texts through it and one more model,
`raw+typo_reader`, shows the reader's own share. All models and recipes read one
in-memory embedding cache, so a text is embedded once per cell. Records follow ARCHITECTURE.md ("robustness_<dataset>.jsonl").
"""

from __future__ import annotations

import hashlib
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from experiments.encoder_choice import cell_encoder
from experiments.runner import cell_head_l2, scored_eval_rows, training_arms
from experiments.sampling import draw_k_shot
from experiments.self_tuning import Tuning, tune_pipeline
from experiments.typo_reading import typo_reader
from model_hooks.embedder import get_embedder
from model_hooks.encoders import use_encoder
from model_hooks.robustness import SharedEmbeddings, probe
from model_hooks.spelling import TypoReader
from model_hooks.trainers import HeadTrainer, linear_probabilities, make_trainer
from schemas.rows import Split, family_weights
from stages.semantic_augmentation import AugmentationInputs, augment

ATTACKED_SPLIT = "test"
ADDBACK_MODEL = "curated+adversarial"
TYPO_READER_SUFFIX = "+typo_reader"  # a model reading its texts through the typo reader; raw+typo_reader: the reader's own share


def head_experiment(config):
    """`config` as the experiment runs it with the `head` trainer, curated arm on and ablations off."""
    experiment = config.experiment.model_copy(update={"trainer": "head", "curated_arms": True, "ablations": False})
    return config.model_copy(update={"experiment": experiment})


def attacked_rows(drawn: pa.Table, size: int, seed: int) -> pa.Table:
    """A seeded sample of the test half of the eval rows, ordered by id first so it depends only on the data and seed."""
    rows = scored_eval_rows(drawn, ATTACKED_SPLIT)
    rows = rows.take(pc.sort_indices(rows, [("id", "ascending")]))
    chosen = np.sort(np.random.default_rng(seed).choice(rows.num_rows, size=min(size, rows.num_rows), replace=False))
    return rows.take(pa.array(chosen, pa.int64()))


def training_sets(drawn: pa.Table, config, labels: list[str], seed: int) -> tuple[dict[str, pa.Table], float, Tuning | None]:
    """The raw and the curated training rows of a cell, the head's L2 and the tuning, as `run_cell` makes them
    (`config` from `head_experiment`)."""
    settings = config.experiment
    head_l2, _ = cell_head_l2(drawn, labels, seed, settings)
    config = config.model_copy(update={"domain": config.domain.model_copy(update={"pseudo_head_l2": head_l2})})
    tuning, memo = None, {}
    if settings.self_tune:
        head = make_trainer("head", settings.embedding_mode, settings.setfit_max_pairs, head_l2)
        tuning = tune_pipeline(drawn, config, labels, seed, head, settings.inner_folds, memo)
    arms, _ = training_arms(drawn, config, seed, tuning, memo)
    train_sets = {"raw": arms["raw"], "curated": arms["curated"]}
    if settings.robustness.adversarial_addback:
        train_sets[ADDBACK_MODEL] = with_adversarial_addback(drawn, arms["curated"], config, seed)
    return train_sets, head_l2, tuning


def with_adversarial_addback(drawn: pa.Table, curated: pa.Table, config, seed: int) -> pa.Table:
    """`curated` plus the adversarial add-back children of its labeled originals that pass the augmentation
    gates (the eval rows of `drawn` are there only for the eval-duplicate gate)."""
    augmentation = config.augmentation.model_copy(update={"enabled": True, "ops": [], "adversarial_addback": True})
    rows = pa.concat_tables([curated, drawn.filter(pc.equal(drawn.column("split"), Split.EVAL.value))])
    kept = augment(rows, augmentation, AugmentationInputs(), seed, cleaning=config.cleaning).kept
    return kept.filter(pc.equal(kept.column("split"), Split.LABELED.value))


def head_weights(train: pa.Table, labels: list[str], seed: int, settings, head_l2: float, reader: TypoReader | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The head's linear layer fitted on `train` as `run_cell` fits it: the cell's L2, with `family`
    weighting a row and its augmented children sharing one unit of weight, texts through `reader` if any."""
    weights = family_weights(train) if settings.sample_weighting == "family" else None
    texts = train.column("text").to_pylist()
    vectors = get_embedder(settings.embedding_mode).embed([reader.repair(text) for text in texts] if reader else texts)
    return HeadTrainer(embedding_mode=settings.embedding_mode, l2=head_l2).fit_weights(
        vectors, train.column("label").to_pylist(), labels, seed, weights)


def linear_model(embeddings: SharedEmbeddings, weight: np.ndarray, bias: np.ndarray, reader: TypoReader | None = None):
    """texts -> class probabilities of a fitted head over the cell's shared embeddings, each text read through `reader` if any."""
    if reader is None:
        return lambda texts: linear_probabilities(embeddings(texts), weight, bias)
    return lambda texts: linear_probabilities(embeddings([reader.repair(text) for text in texts]), weight, bias)


def rows_digest(rows: pa.Table) -> str:
    """A short fingerprint of the attacked rows' ids, equal for every model of a cell."""
    return hashlib.sha256("\x1f".join(rows.column("id").to_pylist()).encode("utf-8")).hexdigest()[:16]


def robustness_cell(rows: pa.Table, config, labels: list[str], k: int, seed: int) -> list[dict]:
    """Records for the raw and the curated model of one (k, seed) cell, one per recipe, with the cell's encoder."""
    started = time.perf_counter()
    drawn = draw_k_shot(rows, k, seed)
    spec, _ = cell_encoder(drawn, config, labels, seed)
    with use_encoder(spec) as encoder:
        records = _attack_cell(drawn, config, labels, k, seed, started)
    return [{**record, "encoder": config.embedding.label, "encoder_used": encoder.name} for record in records]


def _attack_cell(drawn: pa.Table, config, labels: list[str], k: int, seed: int, started: float) -> list[dict]:
    config = head_experiment(config)
    settings = config.experiment
    attacks = settings.robustness
    train_sets, head_l2, tuning = training_sets(drawn, config, labels, seed)
    sample = attacked_rows(drawn, attacks.sample, seed)
    texts = sample.column("text").to_pylist()
    gold = [labels.index(label) for label in sample.column("label").to_pylist()]
    # attacked variants are one-off texts: kept in memory for the cell, never in the disk cache
    embeddings = SharedEmbeddings.of(get_embedder(settings.embedding_mode, cache_dir=None))
    reader = typo_reader(drawn, config)
    readers = {name: None for name in train_sets}
    if reader is not None:
        train_sets = {name if name == "raw" else f"{name}{TYPO_READER_SUFFIX}": train for name, train in train_sets.items()}
        train_sets[f"raw{TYPO_READER_SUFFIX}"] = train_sets["raw"]
        readers = {name: None if name == "raw" else reader for name in train_sets}
    models = {name: linear_model(embeddings, *head_weights(train, labels, seed, settings, head_l2, readers[name]), readers[name])
              for name, train in train_sets.items()}
    # setup: the draw, tuning, curation and both fits; each record's `seconds` is its attack alone
    shared = {"dataset": config.dataset_name, "trainer": "head", "k": k, "seed": seed, "eval_split": ATTACKED_SPLIT,
              "embedding_mode": settings.embedding_mode, "embedding_backend": get_embedder(settings.embedding_mode).backend, "head_l2": head_l2,
              "curation": None if tuning is None else tuning.curate, "query_budget": attacks.query_budget, "rows": rows_digest(sample),
              "setup_seconds": round(time.perf_counter() - started, 2)}
    clean = {name: float((model(texts).argmax(axis=1) == np.asarray(gold)).mean()) for name, model in models.items()}
    records = []
    for recipe in attacks.recipes:
        for name, model in models.items():
            before = embeddings.computed
            result = probe(model, texts, gold, recipe, attacks.query_budget, seed)
            records.append({**shared, "model": name, "n_train": train_sets[name].num_rows, "clean_accuracy": round(clean[name], 4),
                            "texts_embedded": embeddings.computed - before, **result.as_dict()})
    return records
