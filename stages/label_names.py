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
# Likelihood-ratio test of the fitted temperature against the flat prior: chi-square with one
# degree of freedom at 5%. Names that fit a handful of labeled rows only by chance stay unused.
LIKELIHOOD_RATIO_CRITICAL = 3.84


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

    None when the best temperature on the grid does not beat the flat prior significantly (a
    likelihood-ratio test at 5%, with the total weight as the number of rows): the names carry no
    usable signal.
    """
    weights = np.ones(len(targets)) if weights is None else np.asarray(weights, dtype=float)
    if len(targets) == 0 or weights.sum() <= 0:
        return None
    flat_loss = float(np.log(similarities.shape[1]))
    best_loss, best = flat_loss, None
    for temperature in TEMPERATURES:
        probabilities = softmax_prior(similarities, temperature)[np.arange(len(targets)), targets]
        loss = float(-(weights * np.log(np.maximum(probabilities, 1e-300))).sum() / weights.sum())
        if loss < best_loss:
            best_loss, best = loss, float(temperature)
    if 2 * weights.sum() * (flat_loss - best_loss) < LIKELIHOOD_RATIO_CRITICAL:
        return None
    return best


def name_prior(vectors: np.ndarray, labeled_vectors: np.ndarray, labeled_targets: np.ndarray,
               name_vectors: np.ndarray) -> tuple[np.ndarray | None, float | None]:
    """Class probabilities of `vectors` from the class names, and the fitted temperature.

    (None, None) when the names do not fit the labeled rows (see `fit_temperature`).
    """
    temperature = fit_temperature(labeled_vectors @ name_vectors.T, labeled_targets)
    if temperature is None:
        return None, None
    return softmax_prior(vectors @ name_vectors.T, temperature), temperature
