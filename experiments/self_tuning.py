"""Self-tuning of one run from its training rows alone: which stages and augmentation ops to keep.

The labeled originals are dealt into stratified inner folds. For each fold a miniature of the run
is built from the training rows only: the fold's originals play the eval rows (stages treat them
as read-only, exactly as they treat real eval rows), the other originals stay labeled, the pool
stays unlabeled, and the real eval rows are removed, so no decision can depend on them. Every
pipeline variant runs on each miniature; the head trained on a variant's labeled rows predicts
the held-out originals, and the out-of-fold predictions of all folds give one macro-F1 per variant.

Decisions (each recorded with its inner uplift in macro-F1 points and a paired bootstrap 95%
interval over the held-out rows):
- `augment`, `adapt`, `validate`: on where the full pipeline beats the pipeline without the stage;
- `op:<name>`: with augmentation on, an op whose rows the full pipeline is better with;
- `curation`: the chosen pipeline is used only where it beats the raw rows; otherwise curated = raw.
`clean` always runs: it removes eval leaks and label conflicts, which no accuracy figure may overrule.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from model_hooks.trainers import stratified_folds
from schemas.rows import Origin, Split, column_values
from stages.cleaning import clean
from stages.domain_adaptation import build_domain_inputs
from stages.pipeline import run_pipeline

GATED_STAGES = ("augment", "adapt", "validate")
BOOTSTRAP_SAMPLES = 400


@dataclass
class Decision:
    """One tuning decision: what was switched on or off, and the inner figure behind it."""

    name: str
    on: bool
    uplift: float  # inner macro-F1 points of having it on
    ci_low: float
    ci_high: float

    def describe(self) -> str:
        return f"{self.name}: {'on' if self.on else 'off'}, inner uplift {self.uplift:+.1f} [{self.ci_low:+.1f}, {self.ci_high:+.1f}]"

    def as_record(self) -> dict:
        return {"name": self.name, "on": self.on, "inner_uplift": round(self.uplift, 2), "ci_low": round(self.ci_low, 2),
                "ci_high": round(self.ci_high, 2)}


@dataclass
class Tuning:
    """The pipeline a run should use (stages to skip, ops whose rows to drop) and why."""

    skip: frozenset[str] = frozenset()
    dropped_ops: frozenset[str] = frozenset()
    curate: bool = True
    decisions: list[Decision] = field(default_factory=list)
    inner_rows: int = 0


def inner_folds(rows: pa.Table, seed: int, n_folds: int) -> list[pa.Table]:
    """Miniatures of the run from its training rows: per fold, that fold's labeled originals become
    eval rows, the real eval rows are dropped, everything else is unchanged."""
    split, origin = column_values(rows, "split"), column_values(rows, "origin")
    training = rows.filter(pa.array(split != Split.EVAL.value))
    split, origin = column_values(training, "split"), column_values(training, "origin")
    originals = np.flatnonzero((split == Split.LABELED.value) & (origin == Origin.ORIGINAL.value))
    labels = column_values(training, "label")[originals]
    folds = stratified_folds(np.unique(labels.astype(str), return_inverse=True)[1], n_folds, seed)
    tables = []
    for fold in range(n_folds):
        fold_split = split.copy()
        fold_split[originals[folds == fold]] = Split.EVAL.value
        index = training.schema.get_field_index("split")
        tables.append(training.set_column(index, training.schema.field("split"), pa.array(fold_split.tolist(), pa.string())))
    return tables


def _labeled(rows: pa.Table) -> pa.Table:
    return rows.filter(pc.equal(rows.column("split"), Split.LABELED.value))


def _without_ops(rows: pa.Table, ops: frozenset[str]) -> pa.Table:
    if not ops:
        return rows
    return rows.filter(pc.invert(pc.fill_null(pc.is_in(rows.column("op"), pa.array(sorted(ops), pa.string())), False)))


def _macro_f1_samples(true: np.ndarray, predicted: np.ndarray, n_classes: int, samples: np.ndarray) -> np.ndarray:
    """Macro-F1 of each bootstrap sample (rows of `samples` are index draws)."""
    scores = np.zeros(len(samples))
    for s, draw in enumerate(samples):
        t, p = true[draw], predicted[draw]
        tp = np.bincount(t[t == p], minlength=n_classes)
        support = np.bincount(t, minlength=n_classes)
        guessed = np.bincount(p, minlength=n_classes)
        denominator = support + guessed
        scores[s] = float(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0).mean())
    return scores


class InnerScores:
    """Out-of-fold predictions of each variant on the held-out originals, and paired comparisons."""

    def __init__(self, true: np.ndarray, n_classes: int, seed: int):
        self.true = true
        self.n_classes = n_classes
        self.predictions: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(seed)
        self.samples = np.vstack([np.arange(len(true)), rng.integers(0, len(true), size=(BOOTSTRAP_SAMPLES, len(true)))])

    def uplift(self, variant: str, baseline: str) -> tuple[float, float, float]:
        """Points of macro-F1 of `variant` over `baseline`: the full-sample figure and a 95% bootstrap interval."""
        a = _macro_f1_samples(self.true, self.predictions[variant], self.n_classes, self.samples)
        b = _macro_f1_samples(self.true, self.predictions[baseline], self.n_classes, self.samples)
        differences = (a - b) * 100
        return float(differences[0]), float(np.quantile(differences[1:], 0.025)), float(np.quantile(differences[1:], 0.975))


def tune_pipeline(rows: pa.Table, config, labels: list[str], seed: int, trainer, n_folds: int) -> Tuning:
    """Choose the stages and ops of the run on `rows` (a drawn k-shot table) by inner cross-validation.

    `trainer` is the experiment's head (its `fit_predict` on texts and labels); it never sees eval rows.
    """
    from schemas.rows import family_keys

    split = column_values(rows, "split")
    per_class = np.unique(column_values(rows, "label")[(split == Split.LABELED.value)].astype(str), return_counts=True)[1]
    n_folds = int(min(n_folds, per_class.min())) if len(per_class) else 0
    if n_folds < 2:
        return Tuning(skip=frozenset(GATED_STAGES), curate=False,
                      decisions=[Decision("curation", False, 0.0, 0.0, 0.0)])
    # The domain resources (protected terms, word vectors) of the whole run, shared by every fold: they
    # are mined from the training texts without labels, and a fold hides labels, not texts.
    domain = build_domain_inputs(clean(rows, config.cleaning).kept, config.domain)
    index = {label: position for position, label in enumerate(labels)}
    variants = {"raw": None, "full": frozenset(), **{f"without:{stage}": frozenset({stage}) for stage in GATED_STAGES}}
    fold_outputs: list[dict[str, pa.Table]] = []
    held_out: list[pa.Table] = []
    for fold_rows in inner_folds(rows, seed, n_folds):
        memo: dict = {}
        outputs = {}
        for name, skip in variants.items():
            outputs[name] = _labeled(fold_rows) if skip is None else _labeled(run_pipeline(fold_rows, config, seed, skip=skip, memo=memo, domain=domain)[0])
        fold_outputs.append(outputs | {"_memo": memo, "_rows": fold_rows})
        held_out.append(fold_rows.filter(pc.equal(fold_rows.column("split"), Split.EVAL.value)))
    true = np.concatenate([[index[label] for label in table.column("label").to_pylist()] for table in held_out]).astype(np.int64)
    scores = InnerScores(true, len(labels), seed)

    def predict(name: str, training_of_fold) -> None:
        predicted = []
        for outputs, held in zip(fold_outputs, held_out):
            train = training_of_fold(outputs)
            families = family_keys(train) if trainer.uses_families else None
            found = trainer.fit_predict(train.column("text").to_pylist(), train.column("label").to_pylist(),
                                        held.column("text").to_pylist(), labels, seed, families)
            predicted.extend(index[label] for label in found)
        scores.predictions[name] = np.asarray(predicted, dtype=np.int64)

    for name in variants:
        predict(name, lambda outputs, name=name: outputs[name])
    decisions, skip = [], set()
    for stage in GATED_STAGES:
        decision = Decision(stage, False, *scores.uplift("full", f"without:{stage}"))
        decision.on = decision.uplift > 0
        decisions.append(decision)
        if not decision.on:
            skip.add(stage)
    dropped_ops: set[str] = set()
    if "augment" not in skip:
        ops = sorted({op for outputs in fold_outputs for op in outputs["full"].column("op").drop_null().to_pylist()
                      if op in config.augmentation.ops})
        for op in ops:
            predict(f"without:{op}", lambda outputs, op=op: _without_ops(outputs["full"], frozenset({op})))
            decision = Decision(f"op:{op}", False, *scores.uplift("full", f"without:{op}"))
            decision.on = decision.uplift > 0
            decisions.append(decision)
            if not decision.on:
                dropped_ops.add(op)
    chosen = frozenset(skip)
    if chosen == frozenset(GATED_STAGES):
        curate = False
        decisions.append(Decision("curation", False, 0.0, 0.0, 0.0))
    else:
        predict("chosen", lambda outputs: _without_ops(
            _labeled(run_pipeline(outputs["_rows"], config, seed, skip=chosen, memo=outputs["_memo"], domain=domain)[0]), frozenset(dropped_ops)))
        curation = Decision("curation", False, *scores.uplift("chosen", "raw"))
        curation.on = curate = curation.uplift > 0
        decisions.append(curation)
    if not curate:
        chosen = frozenset(GATED_STAGES)
    return Tuning(skip=chosen, dropped_ops=frozenset(dropped_ops), curate=curate, decisions=decisions, inner_rows=len(true))
