"""The class-name prior on top of the head: the head's class probabilities weighed by how close each text is
to each class name. As `ref:name_prior` it runs on the raw k-shot rows (no curation at all); the curated arm
uses it where the run's inner cross-validation says it helps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from model_hooks.embedder import get_embedder
from model_hooks.trainers import HeadTrainer
from schemas.rows import weights_of_families
from stages.label_names import name_prior, name_text


@dataclass
class NamePriorHead:
    """`head` times the class-name prior (`stages.label_names`); the prior's temperature is fitted on the
    training rows (family-weighted), and where the names fit them no better than chance the head stands alone."""

    head: HeadTrainer
    name: str = "head+name_prior"
    uses_families: bool = True
    temperature: float | None = None  # of the last fit, for the records

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        probabilities = self.fit_predict_proba(train_texts, train_labels, test_texts, labels, seed, families)
        return [labels[i] for i in probabilities.argmax(axis=1)]

    def fit_predict_proba(self, train_texts, train_labels, test_texts, labels, seed, families=None) -> np.ndarray:
        """The head's class probabilities times the prior, renormalised."""
        embed = get_embedder(self.head.embedding_mode).embed
        train_x, test_x = embed(train_texts), embed(test_texts)
        weights = None if families is None else weights_of_families(families)
        probabilities = self.head.fit_predict_proba_vectors(train_x, train_labels, test_x, labels, seed, weights)
        names = embed([name_text(label) for label in labels])
        targets = np.asarray([labels.index(label) for label in train_labels], dtype=int)
        prior, self.temperature = name_prior(test_x, train_x, targets, names)
        if prior is not None:
            probabilities = probabilities * prior
            probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities
