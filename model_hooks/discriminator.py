"""Cross-fitted models for adversarial validation: folds by row family, the real-vs-synthetic
discriminator and its ROC-AUC with a confidence interval.

A family is a parent and its augmented children; a family always falls in one fold, so no
prediction for a child comes from a model that saw its parent (or the child itself). Families are
dealt to folds by label, so every fold's complement holds as many classes as the data allows.
"""

from __future__ import annotations

import hashlib
import math
import re

import numpy as np

_WORD = re.compile(r"[^\W\d_]+")
TEXT_FEATURES = (
    "log_chars", "log_words", "mean_word_length", "out_of_vocabulary_share",
    "non_alphanumeric_share", "uppercase_share", "digit_share", "log_sentences",
)


def family_folds(families: list[str], n_folds: int, strata: list[str] | None = None) -> np.ndarray:
    """Fold number of each row: families ordered by (stratum, hash of the family id) are dealt
    round-robin, so folds are balanced per stratum (label) and the assignment is stable."""
    strata = strata if strata is not None else [""] * len(families)
    stratum_of = {}
    for family, stratum in zip(families, strata):
        stratum_of.setdefault(family, stratum)
    digest = lambda family: hashlib.sha256(family.encode("utf-8")).hexdigest()  # noqa: E731
    order = sorted(stratum_of, key=lambda family: (stratum_of[family], digest(family)))
    fold_of = {family: index % n_folds for index, family in enumerate(order)}
    return np.asarray([fold_of[family] for family in families], dtype=np.int64)


def words(text: str) -> list[str]:
    """Lower-cased alphabetic words of `text` (digits and underscores split words)."""
    return _WORD.findall(text.lower())


def text_features(texts: list[str], vocabulary: frozenset[str]) -> np.ndarray:
    """Simple surface features per text (TEXT_FEATURES order): length, word shape, character mix.

    `out_of_vocabulary_share` is the share of words not in `vocabulary` (lower-cased words of the
    original in-domain text): character noise and unusual substitutions raise it.
    """
    features = np.zeros((len(texts), len(TEXT_FEATURES)), dtype=np.float64)
    for row, text in enumerate(texts):
        tokens = words(text)
        chars = max(len(text), 1)
        features[row] = (
            math.log1p(len(text)),
            math.log1p(len(tokens)),
            float(np.mean([len(word) for word in tokens])) if tokens else 0.0,
            sum(word not in vocabulary for word in tokens) / len(tokens) if tokens else 0.0,
            sum(not (c.isalnum() or c.isspace()) for c in text) / chars,
            sum(c.isupper() for c in text) / chars,
            sum(c.isdigit() for c in text) / chars,
            math.log1p(text.count(". ") + 1),
        )
    return features


def cross_fitted_synthetic_p(features: np.ndarray, is_synthetic: np.ndarray, folds: np.ndarray, seed: int,
                             trains: np.ndarray | None = None) -> np.ndarray:
    """P(synthetic) for every row from a class-balanced, strongly regularised (C=0.1) logistic
    regression trained on the other folds (hundreds of features, often under a hundred originals).

    Only rows where `trains` holds (default: all) train a model; the others are scored by the model
    trained on all of those. Rows of a fold whose training folds lack one of the two classes (tiny
    data) are scored by the model trained on all training rows too.
    """
    trains = np.ones(len(features), dtype=bool) if trains is None else np.asarray(trains, dtype=bool)
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def fitted(rows: np.ndarray):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, class_weight="balanced", max_iter=2000, random_state=seed))
        return model.fit(features[rows], is_synthetic[rows])

    scores = np.full(len(features), np.nan)
    for fold in np.unique(folds[trains]):
        train, test = trains & (folds != fold), trains & (folds == fold)
        if len(np.unique(is_synthetic[train])) == 2:
            scores[test] = fitted(train).predict_proba(features[test])[:, 1]
    unscored = np.isnan(scores)
    if unscored.any():
        scores[unscored] = fitted(trains).predict_proba(features[unscored])[:, 1]
    return scores


def roc_auc_with_ci(scores: np.ndarray, positive: np.ndarray, z: float = 1.959964) -> tuple[float, float, float]:
    """ROC-AUC of `scores` for the `positive` rows, with the Hanley-McNeil (1982) 95% interval.

    Ties count one half (the Mann-Whitney statistic). NaN if either class is empty.
    """
    positive = np.asarray(positive, dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan, math.nan, math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = np.asarray(scores)[order]
    # average ranks over ties
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    auc = (ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    half = z * math.sqrt(max(variance, 0.0))
    return float(auc), max(0.0, float(auc - half)), min(1.0, float(auc + half))
