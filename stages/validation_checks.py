"""The registered checks of adversarial validation (cleanlab Datalab style).

A check takes the labeled, non-eval rows of a run (`CheckInputs`) and returns a `CheckResult`:
a score per row (NaN where it does not score), a flag per row, a summary in [0, 1] (1: nothing
wrong) and an info dict. A check is registered with `@register_check(name)`; a run enables the
checks named in its config, so a newly registered check is opt-in. A check that cannot run
raises `CheckFailed`: the stage fails rather than skip it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Literal

import numpy as np
from pydantic import Field, field_validator

from model_hooks.discriminator import cross_fitted_synthetic_p, roc_auc_with_ci, text_features
from schemas.strict import StrictModel
from stages.augmenters import ROBUSTNESS

DEFAULT_CHECKS = ("discriminator", "label_consistency", "label_issues")
_EXCERPT_CHARS = 160


class CheckFailed(RuntimeError):
    """A check could not run; the message names the check and why."""


@dataclass
class CheckInputs:
    """The rows every check sees: labeled, non-eval, originals and synthetic rows alike."""

    ids: list[str]
    texts: list[str]
    labels: list[str]
    is_synthetic: np.ndarray
    origins: list[str]
    vectors: np.ndarray
    folds: np.ndarray
    classes: list[str]
    vocabulary: frozenset[str]
    seed: int
    settings: ValidationConfig = field(default_factory=lambda: ValidationConfig())
    purposes: list[str | None] = field(default_factory=list)  # per row: its op's purpose (None: no augmentation op)
    uncrossed_classes: list[str] = field(default_factory=list)

    @cached_property
    def label_probabilities(self) -> np.ndarray:
        """P(class) per row from the `head` model trained on the originals of the other folds.

        A row whose class has no original in the other folds (a class with a single original
        family) cannot be judged that way; it gets the model trained on all originals instead,
        and its class is listed in `uncrossed_classes`.
        """
        from model_hooks.trainers import HeadTrainer

        probabilities = np.full((len(self.ids), len(self.classes)), np.nan)
        originals = ~self.is_synthetic
        labels = np.asarray(self.labels, dtype=object)
        uncrossed = np.zeros(len(self.ids), dtype=bool)
        for fold in np.unique(self.folds):
            train = originals & (self.folds != fold)
            test = self.folds == fold
            if not train.any():
                raise CheckFailed(f"fold {fold}: no original rows in the other folds")
            probabilities[test] = HeadTrainer().fit_predict_proba_vectors(self.vectors[train], labels[train].tolist(), self.vectors[test], self.classes, self.seed)
            uncrossed |= test & ~np.isin(labels, labels[train])
        if uncrossed.any():
            probabilities[uncrossed] = HeadTrainer().fit_predict_proba_vectors(
                self.vectors[originals], labels[originals].tolist(), self.vectors[uncrossed], self.classes, self.seed)
        self.uncrossed_classes = sorted(set(labels[uncrossed].tolist()))
        return probabilities

    @cached_property
    def label_index(self) -> np.ndarray:
        position = {label: index for index, label in enumerate(self.classes)}
        return np.asarray([position[label] for label in self.labels])

    def excerpt(self, row: int) -> str:
        text = self.texts[row]
        return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"


@dataclass
class CheckResult:
    scores: np.ndarray
    flags: np.ndarray
    summary: float
    info: dict
    reason: str


Check = Callable[[CheckInputs], CheckResult]
CHECKS: dict[str, Check] = {}


def register_check(name: str) -> Callable[[Check], Check]:
    """Register a check under `name`; runs enable it by listing the name in `validation.checks`."""

    def decorate(check: Check) -> Check:
        if name in CHECKS:
            raise ValueError(f"a check named {name!r} is registered already")
        CHECKS[name] = check
        return check

    return decorate


class ValidationConfig(StrictModel):
    """Which checks run and their thresholds."""

    enabled: bool = True
    checks: list[str] = Field(default_factory=lambda: list(DEFAULT_CHECKS), description="registered checks to run, in order")
    folds: int = Field(5, ge=2, le=20, description="cross-fitting folds (a family never spans two)")
    synthetic_quantile: float = Field(0.95, gt=0.0, lt=1.0, description="reject synthetic rows whose P(synthetic) exceeds this quantile of the originals'")
    synthetic_threshold: float | None = Field(None, gt=0.0, lt=1.0, description="instead: reject above this P(synthetic)")
    looks_synthetic_origins: list[Literal["augmented", "pseudo_labeled"]] = Field(
        ["augmented"], description="origins that looks_synthetic may reject (pseudo-labeled rows are real text)")
    min_label_probability: float = Field(0.1, ge=0.0, le=1.0, description="label_flip below this P(label)")
    max_label_rank: int | None = Field(None, ge=1, description="also label_flip when the label ranks below this")
    drop_label_issues: bool = Field(False, description="drop originals cleanlab flags (and their children)")
    outlier_quantile: float = Field(0.05, gt=0.0, lt=1.0)
    examples: int = Field(10, ge=0, description="flagged rows listed per check in the stats and the report")
    embedding_mode: str = Field("truncate", pattern="^(truncate|chunk_mean)$")

    @field_validator("checks")
    @classmethod
    def _known_checks(cls, checks: list[str]) -> list[str]:
        unknown = sorted(set(checks) - set(CHECKS))
        if unknown:
            raise ValueError(f"unknown checks {unknown}; registered: {sorted(CHECKS)}")
        return checks


def run_check(name: str, inputs: CheckInputs) -> CheckResult:
    """Run one registered check; any failure becomes CheckFailed naming the check."""
    if name not in CHECKS:
        raise CheckFailed(f"unknown check {name!r}; registered: {sorted(CHECKS)}")
    try:
        result = CHECKS[name](inputs)
    except CheckFailed as error:
        raise CheckFailed(f"check {name!r} failed: {error}") from error
    except Exception as error:  # a check must never fail silently: surface it with its name
        raise CheckFailed(f"check {name!r} failed: {type(error).__name__}: {error}") from error
    if not 0.0 <= result.summary <= 1.0 or len(result.scores) != len(inputs.ids) or len(result.flags) != len(inputs.ids):
        raise CheckFailed(f"check {name!r} returned a malformed result (summary {result.summary}, {len(result.scores)} scores)")
    return result


@register_check("discriminator")
def discriminator(inputs: CheckInputs) -> CheckResult:
    """Tell originals from synthetic rows on embeddings plus surface features, cross-fitted.

    Score: P(synthetic). Flags as `looks_synthetic` the synthetic rows of `looks_synthetic_origins`
    (default: augmented rows, the machine-written text; pseudo-labeled rows are real text, whose
    risk is the label, which `label_consistency` checks) scoring above `synthetic_threshold`, or by
    default above the `synthetic_quantile` of the originals' own scores (more synthetic-looking
    than 95% of real rows: robust to a badly calibrated P), and only when the AUC's 95% interval
    lies above 0.5: if the discriminator cannot tell the two apart, nothing looks synthetic.
    Summary: 1 - 2|AUC - 0.5| (1: indistinguishable). The info holds the AUC per origin too.
    Children of `robustness` ops (stages.augmenters.OP_PURPOSES) are meant to look noisy: they do not
    train the discriminator and are never flagged (`not_judged` in the info); their score, from the
    model trained on all judged rows, still shows how synthetic they look.
    """
    settings = inputs.settings
    purposes = np.asarray(inputs.purposes if inputs.purposes else [None] * len(inputs.ids), dtype=object)
    judged = ~(inputs.is_synthetic & (purposes == ROBUSTNESS))
    if not (inputs.is_synthetic & judged).any():
        nothing = np.zeros(len(inputs.ids), dtype=bool)
        info = {"roc_auc": None, "synthetic": 0, "not_judged": int((~judged).sum())}
        return CheckResult(np.full(len(inputs.ids), np.nan), nothing, 1.0, info, "looks_synthetic")
    features = np.hstack([inputs.vectors, text_features(inputs.texts, inputs.vocabulary)])
    scores = cross_fitted_synthetic_p(features, inputs.is_synthetic, inputs.folds, inputs.seed, trains=judged)
    synthetic = inputs.is_synthetic[judged]
    threshold = settings.synthetic_threshold
    if threshold is None:
        threshold = float(np.quantile(scores[~inputs.is_synthetic], settings.synthetic_quantile))
    auc, low, high = roc_auc_with_ci(scores[judged], synthetic)
    distinguishable = low > 0.5
    origins = np.asarray(inputs.origins, dtype=object)
    flags = inputs.is_synthetic & judged & np.isin(origins, list(settings.looks_synthetic_origins)) & (scores > threshold) & distinguishable
    by_origin = {}
    for origin in sorted(set(origins[inputs.is_synthetic & judged])):
        subset = judged & (~inputs.is_synthetic | (origins == origin))
        origin_auc, origin_low, origin_high = roc_auc_with_ci(scores[subset], inputs.is_synthetic[subset])
        by_origin[origin] = {"roc_auc": round(origin_auc, 4), "roc_auc_ci95": [round(origin_low, 4), round(origin_high, 4)],
                             "rows": int((origins == origin).sum()), "above_threshold": int(((origins == origin) & (scores > threshold)).sum())}
    info = {"roc_auc": round(auc, 4), "roc_auc_ci95": [round(low, 4), round(high, 4)], "threshold": round(threshold, 4),
            "distinguishable": bool(distinguishable), "originals": int((~inputs.is_synthetic).sum()),
            "synthetic": int(synthetic.sum()), "not_judged": int((~judged).sum()), "flagged": int(flags.sum()), "by_origin": by_origin}
    return CheckResult(scores, flags, 1.0 - 2.0 * abs(auc - 0.5), info, "looks_synthetic")


@register_check("label_consistency")
def label_consistency(inputs: CheckInputs) -> CheckResult:
    """A model trained on other families' originals must still give each synthetic row its label.

    Score: P(row's label). Flags synthetic rows below `min_label_probability` or, when set, whose
    label ranks below `max_label_rank`, as `label_flip`. Summary: share of synthetic rows kept.
    """
    settings = inputs.settings
    probabilities = inputs.label_probabilities
    rows = np.arange(len(inputs.ids))
    scores = probabilities[rows, inputs.label_index]
    ranks = 1 + (probabilities > scores[:, None]).sum(axis=1)
    failing = scores < settings.min_label_probability
    if settings.max_label_rank is not None:
        failing |= ranks > settings.max_label_rank
    flags = inputs.is_synthetic & failing
    n_synthetic = int(inputs.is_synthetic.sum())
    flagged = np.flatnonzero(flags)[np.argsort(scores[flags], kind="stable")]
    info = {
        "flagged": int(flags.sum()),
        "uncrossed_classes": inputs.uncrossed_classes,
        "examples": [{"id": inputs.ids[i], "label": inputs.labels[i], "predicted": inputs.classes[int(probabilities[i].argmax())],
                      "label_probability": round(float(scores[i]), 4), "text": inputs.excerpt(i)} for i in flagged[: settings.examples]],
    }
    return CheckResult(scores, flags, 1.0 - flags.sum() / n_synthetic if n_synthetic else 1.0, info, "label_flip")


@register_check("label_issues")
def label_issues(inputs: CheckInputs) -> CheckResult:
    """cleanlab's confident learning on the originals' cross-validated probabilities.

    Score: cleanlab's label quality (self-confidence) for every row. Flags original rows that
    `find_label_issues` reports, as `label_issue`; the stage drops them only if configured.
    Summary: share of originals not flagged.
    """
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    probabilities = inputs.label_probabilities
    scores = get_label_quality_scores(inputs.label_index, probabilities)
    originals = np.flatnonzero(~inputs.is_synthetic)
    flags = np.zeros(len(inputs.ids), dtype=bool)
    if len(originals):
        # n_jobs=1: cleanlab would fork a process pool, which deadlocks after torch has started its threads
        issues = find_label_issues(inputs.label_index[originals], probabilities[originals], filter_by="prune_by_noise_rate", n_jobs=1)
        flags[originals[issues]] = True
    flagged = np.flatnonzero(flags)[np.argsort(scores[flags], kind="stable")]
    info = {
        "flagged": int(flags.sum()),
        "uncrossed_classes": inputs.uncrossed_classes,
        "examples": [{"id": inputs.ids[i], "label": inputs.labels[i], "suggested": inputs.classes[int(probabilities[i].argmax())],
                      "label_quality": round(float(scores[i]), 4), "text": inputs.excerpt(i)} for i in flagged[: inputs.settings.examples]],
    }
    return CheckResult(scores, flags, 1.0 - flags.sum() / len(originals) if len(originals) else 1.0, info, "label_issue")


@register_check("outlier")
def outlier(inputs: CheckInputs) -> CheckResult:
    """Opt-in: cleanlab's kNN out-of-distribution score against the original rows' embeddings.

    Flags synthetic rows scoring below the `outlier_quantile` of the originals' own scores as
    `outlier`. Summary: share of synthetic rows kept.
    """
    from cleanlab.outlier import OutOfDistribution

    originals = ~inputs.is_synthetic
    if originals.sum() < 3:
        raise CheckFailed("needs at least three original rows")
    detector = OutOfDistribution()
    own = detector.fit_score(features=inputs.vectors[originals])
    scores = np.empty(len(inputs.ids))
    scores[originals] = own
    scores[~originals] = detector.score(features=inputs.vectors[~originals]) if (~originals).any() else []
    floor = float(np.quantile(own, inputs.settings.outlier_quantile))
    flags = inputs.is_synthetic & (scores < floor)
    n_synthetic = int(inputs.is_synthetic.sum())
    return CheckResult(scores, flags, 1.0 - flags.sum() / n_synthetic if n_synthetic else 1.0, {"floor": round(floor, 6), "flagged": int(flags.sum())}, "outlier")
