"""Scores on the eval split and confidence intervals over seeds."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def classification_scores(true: list[str], predicted: list[str], labels: list[str]) -> dict:
    """macro-F1, accuracy and per-class F1 (a class never predicted nor present scores 0)."""
    true_array, predicted_array = np.asarray(true, dtype=object), np.asarray(predicted, dtype=object)
    per_class = {}
    for label in labels:
        tp = int(((predicted_array == label) & (true_array == label)).sum())
        fp = int(((predicted_array == label) & (true_array != label)).sum())
        fn = int(((predicted_array != label) & (true_array == label)).sum())
        per_class[label] = 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)
    return {
        "macro_f1": float(np.mean(list(per_class.values()))),
        "accuracy": float((true_array == predicted_array).mean()),
        "per_class_f1": per_class,
    }


def mean_confidence_interval(values: list[float], confidence: float = 0.95) -> dict:
    """Mean, sample standard deviation and the two-sided t confidence interval of the mean."""
    data = np.asarray(values, dtype=float)
    n = len(data)
    mean = float(data.mean()) if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "std": math.nan, "ci_low": math.nan, "ci_high": math.nan}
    std = float(data.std(ddof=1))
    half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
    return {"n": n, "mean": mean, "std": std, "ci_low": mean - half, "ci_high": mean + half}
