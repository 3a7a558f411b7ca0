"""The class-name prior reference arm: the raw k-shot head, its predictions weighed by how close each
text is to each class name (no curation at all)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from model_hooks.embedder import get_embedder
from stages.label_names import name_prior, name_text


def name_prior_predictions(train: pa.Table, test_texts: list[str], labels: list[str], seed: int, head, embedding_mode: str) -> tuple[list[str], float | None]:
    """Predictions of `head` fitted on `train` times the class-name prior, and the prior's temperature
    (None: the names do not fit the labeled rows better than chance, and the head's own predictions stand)."""
    embed = get_embedder(embedding_mode).embed
    train_x = embed(train.column("text").to_pylist())
    test_x = embed(test_texts)
    train_labels = train.column("label").to_pylist()
    probabilities = head.fit_predict_proba_vectors(train_x, train_labels, test_x, labels, seed)
    names = embed([name_text(label) for label in labels])
    targets = np.asarray([labels.index(label) for label in train_labels], dtype=int)
    prior, temperature = name_prior(test_x, train_x, targets, names)
    if prior is not None:
        probabilities = probabilities * prior
    return [labels[i] for i in probabilities.argmax(axis=1)], temperature
