"""One cell of the experiment: draw k per class with a seed, curate, train every arm, score on eval."""

from __future__ import annotations

import hashlib
import time

import pyarrow as pa
import pyarrow.compute as pc

from experiments.metrics import classification_scores
from experiments.sampling import draw_k_shot
from model_hooks.embedder import DEFAULT_BACKEND
from model_hooks.trainers import make_trainer
from schemas.rows import Split, family_keys
from stages.domain_adaptation import PSEUDO_LABEL_OP
from stages.pipeline import STAGE_NAMES, run_pipeline


def _split(rows: pa.Table, split: Split) -> pa.Table:
    return rows.filter(pc.equal(rows.column("split"), split.value))


def training_arms(drawn: pa.Table, config, seed: int) -> dict[str, pa.Table]:
    """Labeled training rows per arm.

    `without:<stage>` reruns the pipeline with that stage off. `without:<op>` removes the rows
    an op contributed from the curated rows (downstream decisions are not recomputed).
    """
    arms = {"raw": _split(drawn, Split.LABELED)}
    if not config.experiment.curated_arms:
        return arms
    memo = {}  # stage prefixes shared by the arms
    curated, _ = run_pipeline(drawn, config, seed, memo=memo)
    arms["curated"] = _split(curated, Split.LABELED)
    if config.experiment.ablations:
        for stage in STAGE_NAMES:
            without, _ = run_pipeline(drawn, config, seed, skip=frozenset({stage}), memo=memo)
            arms[f"without:{stage}"] = _split(without, Split.LABELED)
        ops = arms["curated"].column("op")
        for op in ablated_ops(config, arms["curated"]):
            arms[f"without:{op}"] = arms["curated"].filter(pc.invert(pc.fill_null(pc.equal(ops, op), False)))
    return arms


def ablated_ops(config, curated: pa.Table) -> list[str]:
    """Every op the config runs and every op found in the curated rows.

    An op whose rows were all rejected in a cell still gets its arm (then identical to `curated`, and
    trained once), so every op is reported for every seed instead of only where it survived.
    """
    ops = set(curated.column("op").drop_null().to_pylist())
    if config.augmentation.enabled:
        ops |= set(config.augmentation.ops)
    if config.domain.enabled and config.domain.pseudo_label:
        ops.add(PSEUDO_LABEL_OP)
    return sorted(ops)


def _fingerprint(rows: pa.Table, families: list[str] | None) -> str:
    digest = hashlib.sha256()
    for text, label in zip(rows.column("text").to_pylist(), rows.column("label").to_pylist()):
        digest.update(f"{label}\x1f{text}\x1e".encode("utf-8"))
    if families is not None:
        digest.update("\x1f".join(families).encode("utf-8"))
    return digest.hexdigest()


def training_families(train: pa.Table, trainer, weighting: str) -> list[str] | None:
    """Family keys for `trainer` (None: every row counts once): with `family` weighting a labeled row
    and its augmented children count as one example, for trainers that take families."""
    if weighting == "family" and trainer.uses_families:
        return family_keys(train)
    return None


def run_cell(rows: pa.Table, config, labels: list[str], k: int, seed: int) -> list[dict]:
    """Records (ARCHITECTURE.md "Results files") for every arm of one (k, seed) cell.

    Arms whose training rows are identical share one training run (same seed, same result).
    """
    settings = config.experiment
    drawn = draw_k_shot(rows, k, seed)
    eval_rows = _split(drawn, Split.EVAL)
    eval_texts, eval_labels = eval_rows.column("text").to_pylist(), eval_rows.column("label").to_pylist()
    runs = [(arm, train, make_trainer(settings.trainer, settings.embedding_mode, settings.setfit_max_pairs)) for arm, train in training_arms(drawn, config, seed).items()]
    for reference in settings.reference_arms:
        if reference == "setfit" and k > settings.setfit_max_k:
            continue
        runs.append((f"ref:{reference}", _split(drawn, Split.LABELED), make_trainer(reference, settings.embedding_mode, settings.setfit_max_pairs)))

    records, done = [], {}
    for arm, train, trainer in runs:
        families = training_families(train, trainer, settings.sample_weighting)
        key = (trainer.name, _fingerprint(train, families))
        started = time.perf_counter()
        if key not in done:
            done[key] = trainer.fit_predict(train.column("text").to_pylist(), train.column("label").to_pylist(), eval_texts, labels, seed, families)
        scores = classification_scores(eval_labels, done[key], labels)
        records.append(
            {
                "dataset": config.dataset_name,
                "trainer": settings.trainer,
                "arm": arm,
                "k": k,
                "seed": seed,
                "macro_f1": round(scores["macro_f1"], 6),
                "accuracy": round(scores["accuracy"], 6),
                "per_class_f1": {label: round(value, 6) for label, value in scores["per_class_f1"].items()},
                "n_train": train.num_rows,
                "model": trainer.name,
                "weighting": "uniform" if families is None else settings.sample_weighting,
                "embedding_mode": settings.embedding_mode,
                "embedding_backend": DEFAULT_BACKEND,  # the sentence model's backend (gate, pseudo-labels, head features)
                "train_seconds": round(time.perf_counter() - started, 2),
            }
        )
    return records
