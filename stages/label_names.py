"""A zero-shot prior from the class names: how close a row's embedding is to the embedding of each name.

Class names such as "neoplasms" or "cardiovascular diseases" are part of the task's definition,
and a sentence model places an abstract nearer to its own class name more often than chance. The
prior is softmax(cosine / temperature) over the classes; the temperature is fitted by maximum
likelihood on the labeled rows, so names that say nothing about the rows ("1", "2", "class_a")
get a high temperature and a nearly flat prior, and change nothing.
"""

from __future__ import annotations

import numpy as np

TEMPERATURES = np.geomspace(0.005, 2.0, 40)


def name_text(label: str) -> str:
    """The text embedded for a class: its name, with identifier separators as spaces."""
    return label.replace("_", " ").strip()


def softmax_prior(similarities: np.ndarray, temperature: float) -> np.ndarray:
    """Rows of class probabilities from cosine similarities (rows x classes)."""
    scaled = similarities / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    weights = np.exp(scaled)
    return weights / weights.sum(axis=1, keepdims=True)


def fit_temperature(similarities: np.ndarray, targets: np.ndarray, weights: np.ndarray | None = None) -> float | None:
    """The temperature that maximises the (weighted) likelihood of the labeled rows' classes.

    None when no temperature on the grid beats the flat prior: the names carry no signal.
    """
    weights = np.ones(len(targets)) if weights is None else np.asarray(weights, dtype=float)
    if len(targets) == 0 or weights.sum() <= 0:
        return None
    best_loss, best = float(np.log(similarities.shape[1])), None
    for temperature in TEMPERATURES:
        probabilities = softmax_prior(similarities, temperature)[np.arange(len(targets)), targets]
        loss = float(-(weights * np.log(np.maximum(probabilities, 1e-300))).sum() / weights.sum())
        if loss < best_loss:
            best_loss, best = loss, float(temperature)
    return best
