"""Self-tuning of one run from its training rows alone: which stages and ops the curated arm uses.

The labeled originals are dealt into stratified inner folds. For each fold a miniature of the run
is built from the training rows only: the fold's originals play the eval rows (stages treat them
as read-only, exactly as they treat real eval rows), the other originals stay labeled, the pool
stays unlabeled, and the real eval rows are removed, so no decision can depend on them. Every
pipeline variant runs on each miniature; the head (the cell's L2) trained on a variant's labeled
rows gives class probabilities for the held-out originals, and the out-of-fold probabilities of
all folds score each variant.

The criterion is the held-out log-loss (mean negative log-probability of the true class), each
variant's probabilities first rescaled by the one temperature that suits them best (`calibrated`):
with a few held-out rows per class, macro-F1 moves in steps of whole rows and picked the wrong variant
in 2 of 5 dev draws of the demo at k=5, while log-loss uses every row's confidence; uncalibrated, it
also rewards the sureness that more training rows bring, and turned curation on in all 40 cells of
the suite, including those where it cost test F1 (docs/protocol.md). Each decision records the
log-loss change and the macro-F1 change (points), each with a paired bootstrap 95% interval over the
held-out rows:
- `validate`, `augment`, `adapt`, in this order (backward elimination): on where the pipeline with the
  stages still on has a lower log-loss than without this stage too;
- `op:<name>`: with augmentation on, an op whose rows lower the chosen pipeline's log-loss;
- `pseudo_cap:<m>x`: with pseudo-labels on, keep at most m x a class's labeled originals of them (the
  most confident) where that lowers the log-loss below the configured cap's;
- `curation`: the chosen pipeline is used only where it has the lower loss than the raw rows;
  otherwise curated = raw. Pseudo-labeled rows train at half weight (`schemas.rows.family_keys`), so
  a gain the inner folds cannot resolve is shrunk rather than risked or dropped (docs/protocol.md).
With `augmentation.goal: robustness`, the held-out rows are scored twice, as written and in a noisy copy
(`ROBUSTNESS_NOISE`, experiments/noise.py), and every decision reads both: an op that makes the model
tolerate typos is kept where it lowers the loss on the noisy copies more than it raises it on clean rows.
With a typo reader (`experiment.typo_reader`), every variant reads its training and held-out texts through
the fold's own reader, as the run's curated arm reads them; the fold's vocabulary, like the run's, never
includes the rows it is scored on.
`clean` always runs: it removes eval leaks and label conflicts, which no accuracy figure may overrule.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from experiments.noise import noisy_copy, parse_noise
from experiments.typo_reading import typo_reader
from model_hooks.trainers import HeadTrainer, stratified_folds
from schemas.rows import Origin, Split, column_values, family_keys
from stages.augmenters import op_purpose
from stages.domain_adaptation import build_domain_inputs, limit_pseudo_labels
from stages.pipeline import run_pipeline
from stages.validation_checks import CheckFailed

GATED_STAGES = ("augment", "adapt", "validate")
PSEUDO_CAP_CANDIDATES = (1.0, 2.0)  # tried below the configured multiple (default 5)
BOOTSTRAP_SAMPLES = 400
ROBUSTNESS_NOISE = "char@0.10"  # the noise held-out rows are copied with when `augmentation.goal` is robustness


@dataclass
class Decision:
    """One tuning decision: what was switched on or off, and the inner figures behind it (on minus off)."""

    name: str
    on: bool
    log_loss: tuple[float, float, float] = (0.0, 0.0, 0.0)  # change, 95% interval; negative: on is better
    f1_points: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def describe(self) -> str:
        loss, f1 = self.log_loss, self.f1_points
        return (f"{self.name}: {'on' if self.on else 'off'}, inner log-loss {loss[0]:+.3f} [{loss[1]:+.3f}, {loss[2]:+.3f}], "
                f"macro-F1 {f1[0]:+.1f} [{f1[1]:+.1f}, {f1[2]:+.1f}] points")

    def as_record(self) -> dict:
        return {"name": self.name, "on": self.on, "inner_log_loss": [round(v, 4) for v in self.log_loss],
                "inner_f1_points": [round(v, 2) for v in self.f1_points]}


@dataclass
class Tuning:
    """The pipeline a run should use (stages to skip, ops whose rows to drop) and why."""

    skip: frozenset[str] = frozenset()
    dropped_ops: frozenset[str] = frozenset()
    curate: bool = True
    pseudo_cap: float | None = None  # pseudo-labels kept per class, as a multiple of its labeled originals; None: as configured
    decisions: list[Decision] = field(default_factory=list)
    inner_rows: int = 0

    def apply(self, curated: pa.Table) -> pa.Table:
        """The chosen pipeline's labeled rows less the dropped ops' rows and the pseudo-labels over the cap."""
        curated = without_ops(curated, self.dropped_ops)
        return curated if self.pseudo_cap is None else limit_pseudo_labels(curated, self.pseudo_cap)


def inner_folds(rows: pa.Table, seed: int, n_folds: int) -> list[pa.Table]:
    """Miniatures of the run from its training rows: per fold, that fold's labeled originals become
    eval rows, the real eval rows are dropped, everything else is unchanged."""
    training = rows.filter(pa.array(column_values(rows, "split") != Split.EVAL.value))
    split, origin = column_values(training, "split"), column_values(training, "origin")
    originals = np.flatnonzero((split == Split.LABELED.value) & (origin == Origin.ORIGINAL.value))
    labels = column_values(training, "label")[originals]
    folds = stratified_folds(np.unique(labels.astype(str), return_inverse=True)[1], n_folds, seed)
    index = training.schema.get_field_index("split")
    tables = []
    for fold in range(n_folds):
        fold_split = split.copy()
        fold_split[originals[folds == fold]] = Split.EVAL.value
        tables.append(training.set_column(index, training.schema.field("split"), pa.array(fold_split.tolist(), pa.string())))
    return tables


def _labeled(rows: pa.Table) -> pa.Table:
    return rows.filter(pc.equal(rows.column("split"), Split.LABELED.value))


def without_ops(rows: pa.Table, ops: frozenset[str]) -> pa.Table:
    """`rows` less the rows any of `ops` made."""
    if not ops:
        return rows
    return rows.filter(pc.invert(pc.fill_null(pc.is_in(rows.column("op"), pa.array(sorted(ops), pa.string())), False)))


def _macro_f1(true: np.ndarray, predicted: np.ndarray, n_classes: int) -> float:
    tp = np.bincount(true[true == predicted], minlength=n_classes)
    denominator = np.bincount(true, minlength=n_classes) + np.bincount(predicted, minlength=n_classes)
    return float(np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0).mean())


TEMPERATURES = np.exp(np.linspace(np.log(0.1), np.log(10.0), 61))


def calibrated(probabilities: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per row, the negative log-probability of its true class once the probabilities are rescaled by the
    one temperature (softmax(log p / T)) that minimises their mean.

    Training on more rows (pseudo-labels above all) makes the head surer of every answer, right or wrong;
    raw log-loss rewards that sureness, and chose curation in every cell of the suite, including cells
    where it cost test F1. One fitted temperature per variant takes the sureness out of the comparison.
    """
    logits = np.log(np.maximum(probabilities, 1e-12))
    best, best_mean = None, np.inf
    for temperature in TEMPERATURES:
        scaled = logits / temperature
        scaled -= scaled.max(axis=1, keepdims=True)
        losses = np.log(np.exp(scaled).sum(axis=1)) - scaled[np.arange(len(true)), true]
        if losses.mean() < best_mean:
            best, best_mean = losses, losses.mean()
    return best


class InnerScores:
    """Out-of-fold class probabilities of each variant on the held-out originals, and paired comparisons."""

    def __init__(self, true: np.ndarray, n_classes: int, seed: int):
        self.true = true
        self.n_classes = n_classes
        self.probabilities: dict[str, np.ndarray] = {}
        self._losses: dict[str, np.ndarray] = {}
        rng = np.random.default_rng(seed)
        self.samples = rng.integers(0, len(true), size=(BOOTSTRAP_SAMPLES, len(true)))

    def log_loss(self, variant: str) -> np.ndarray:
        """Per held-out row: the negative log-probability of its true class, after the variant's own
        temperature (`calibrated`), so a variant is not judged by how sure it is but by how well it ranks.
        Computed once per variant (a variant's probabilities are set once)."""
        if variant not in self._losses:
            self._losses[variant] = calibrated(self.probabilities[variant], self.true)
        return self._losses[variant]

    def compare(self, variant: str, baseline: str) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
        """(log-loss change, macro-F1 change in points) of `variant` over `baseline`, each with a 95% bootstrap interval."""
        loss = self.log_loss(variant) - self.log_loss(baseline)
        losses = loss[self.samples].mean(axis=1)
        ours, theirs = self.probabilities[variant].argmax(axis=1), self.probabilities[baseline].argmax(axis=1)
        f1 = [(_macro_f1(self.true[s], ours[s], self.n_classes) - _macro_f1(self.true[s], theirs[s], self.n_classes)) * 100 for s in self.samples]
        full_f1 = (_macro_f1(self.true, ours, self.n_classes) - _macro_f1(self.true, theirs, self.n_classes)) * 100
        return ((float(loss.mean()), float(np.quantile(losses, 0.025)), float(np.quantile(losses, 0.975))),
                (full_f1, float(np.quantile(f1, 0.025)), float(np.quantile(f1, 0.975))))

    def decide(self, name: str, variant: str, baseline: str) -> Decision:
        """On where `variant` has the lower held-out loss than `baseline`; a variant whose pipeline could
        not run on a fold (too few rows for a stage) loses to one that could."""
        if variant not in self.probabilities or baseline not in self.probabilities:
            return Decision(name, variant in self.probabilities)
        loss, f1 = self.compare(variant, baseline)
        return Decision(name, loss[0] < 0, loss, f1)


def tune_pipeline(rows: pa.Table, config, labels: list[str], seed: int, head, n_folds: int, memo: dict | None = None) -> Tuning:
    """Choose the stages and ops of the run on `rows` (a drawn k-shot table) by inner cross-validation.

    `head` gives class probabilities (`fit_predict_proba` on texts and labels); it never sees eval rows.
    `memo` is the run's `run_pipeline` memo: the cleaned rows computed here are the run's own.
    """
    split = column_values(rows, "split")
    per_class = np.unique(column_values(rows, "label")[split == Split.LABELED.value].astype(str), return_counts=True)[1]
    n_folds = int(min(n_folds, per_class.min())) if len(per_class) else 0
    if n_folds < 2:
        return Tuning(skip=frozenset(GATED_STAGES), curate=False, decisions=[Decision("curation", False)])
    # The domain resources (protected terms, word vectors) of the whole run, shared by every fold: they
    # are mined from the training texts without labels, and a fold hides labels, not texts.
    cleaned, _ = run_pipeline(rows, config, seed, skip=frozenset(GATED_STAGES), memo=memo)
    domain = build_domain_inputs(cleaned, config.domain)
    index = {label: position for position, label in enumerate(labels)}
    noise = parse_noise(ROBUSTNESS_NOISE) if config.augmentation.goal == "robustness" else None
    folds = []
    for fold_rows in inner_folds(rows, seed, n_folds):
        held = fold_rows.filter(pc.equal(fold_rows.column("split"), Split.EVAL.value))
        texts, held_labels = held.column("text").to_pylist(), held.column("label").to_pylist()
        if noise is not None:  # goal robustness: every variant is also scored on noisy copies of the held-out rows
            texts, held_labels = texts + [noisy_copy(text, noise, seed) for text in texts], held_labels * 2
        reader = typo_reader(fold_rows, config)
        if reader is not None:
            texts = [reader.repair(text) for text in texts]
        folds.append({"rows": fold_rows, "memo": {}, "held_texts": texts, "held_labels": held_labels, "reader": reader})
    true = np.concatenate([[index[label] for label in fold["held_labels"]] for fold in folds]).astype(np.int64)
    scores = InnerScores(true, len(labels), seed)

    def curated_rows(fold: dict, skip: frozenset[str], dropped: frozenset[str] = frozenset()) -> pa.Table:
        kept, _ = run_pipeline(fold["rows"], config, seed, skip=skip, memo=fold["memo"], domain=domain)
        return without_ops(_labeled(kept), dropped)

    fitted: dict[tuple[str, int], tuple] = {}  # the head's weights per variant and fold, to warm-start near variants

    def score(name: str, training_of_fold, warm_from: str | None = None) -> None:
        parts = []
        for position, fold in enumerate(folds):
            try:
                train = training_of_fold(fold)
            except CheckFailed:  # a stage cannot run on this miniature (e.g. validation with too few originals)
                return
            fold_model = head
            if warm_from is not None and isinstance(head, HeadTrainer) and (warm_from, position) in fitted:
                fold_model = replace(head, warm_start=fitted[(warm_from, position)])
            train_texts = train.column("text").to_pylist()
            if fold["reader"] is not None:
                train_texts = [fold["reader"].repair(text) for text in train_texts]
            parts.append(fold_model.fit_predict_proba(train_texts, train.column("label").to_pylist(),
                                                      fold["held_texts"], labels, seed, family_keys(train)))
            if isinstance(fold_model, HeadTrainer):
                fitted[(name, position)] = fold_model.fitted
        scores.probabilities[name] = np.vstack(parts)

    def variant(skip: frozenset[str]) -> str:
        return "without:" + "+".join(stage for stage in GATED_STAGES if stage in skip) if skip else "full"

    score("raw", lambda fold: _labeled(fold["rows"]))
    score("full", lambda fold: curated_rows(fold, frozenset()))
    decisions, skip = [], frozenset()
    # Backward elimination: a later stage can undo an earlier one (validation may reject every
    # pseudo-label), so each stage is judged with the stages still on, validation first.
    for stage in GATED_STAGES[::-1]:
        candidate = skip | {stage}
        score(variant(candidate), lambda fold, candidate=candidate: curated_rows(fold, candidate), warm_from=variant(skip))
        decisions.append(scores.decide(stage, variant(skip), variant(candidate)))
        if not decisions[-1].on:
            skip = candidate
    dropped_ops: set[str] = set()
    if "augment" not in skip:
        ops = sorted({op for fold in folds for op in curated_rows(fold, skip).column("op").drop_null().to_pylist()
                      if op_purpose(op) is not None})
        for op in ops:
            # an op's rows are a small part of the rows: start from the chosen pipeline's fit
            score(f"{variant(skip)}-{op}", lambda fold, op=op: curated_rows(fold, skip, frozenset({op})), warm_from=variant(skip))
            decisions.append(scores.decide(f"op:{op}", variant(skip), f"{variant(skip)}-{op}"))
            if not decisions[-1].on:
                dropped_ops.add(op)
    chosen = Tuning(skip=frozenset(skip), dropped_ops=frozenset(dropped_ops))
    if chosen.skip == frozenset(GATED_STAGES):
        decisions.append(Decision("curation", False))
        return Tuning(skip=chosen.skip, curate=False, decisions=decisions, inner_rows=len(true))
    winner = variant(skip)
    if chosen.dropped_ops:
        winner = "chosen"
        score(winner, lambda fold: chosen.apply(curated_rows(fold, chosen.skip)), warm_from=variant(skip))
    if "adapt" not in chosen.skip and config.domain.pseudo_label and config.domain.pseudo_per_class is None:
        chosen, winner, cap_decisions = _choose_pseudo_cap(scores, score, chosen, winner, config.domain.pseudo_cap_multiple,
                                                           lambda fold, skip=chosen.skip: curated_rows(fold, skip))
        decisions += cap_decisions
    decisions.append(scores.decide("curation", winner, "raw"))
    if not decisions[-1].on:
        return Tuning(skip=frozenset(GATED_STAGES), curate=False, decisions=decisions, inner_rows=len(true))
    return replace(chosen, curate=True, decisions=decisions, inner_rows=len(true))


def _choose_pseudo_cap(scores: InnerScores, score, chosen: Tuning, scored: str, configured: float,
                       rows_of_fold) -> tuple[Tuning, str, list[Decision]]:
    """How many pseudo-labels per class the chosen pipeline keeps: the configured multiple of the class's
    labeled originals or a smaller one (the most confident pseudo-labels first), whichever has the lowest
    held-out loss. `scored` names the chosen pipeline's scored variant; returns the winner and its variant."""
    candidates = [cap for cap in PSEUDO_CAP_CANDIDATES if cap < configured]
    for cap in candidates:
        capped = replace(chosen, pseudo_cap=cap)
        score(f"chosen-cap{cap:g}", lambda fold, capped=capped: capped.apply(rows_of_fold(fold)), warm_from=scored)
    losses = {cap: scores.log_loss(f"chosen-cap{cap:g}").mean() for cap in candidates if f"chosen-cap{cap:g}" in scores.probabilities}
    best = min(losses, key=losses.get, default=None)
    if best is None or scored not in scores.probabilities or losses[best] >= scores.log_loss(scored).mean():
        best = None
    decisions = [replace(scores.decide(f"pseudo_cap:{cap:g}x", f"chosen-cap{cap:g}", scored), on=cap == best) for cap in losses]
    if best is None:
        return chosen, scored, decisions
    return replace(chosen, pseudo_cap=best), f"chosen-cap{best:g}", decisions
