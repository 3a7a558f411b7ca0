"""The plain way to augment and gate, as a peer for bench_augment: nlpaug once per text, in a loop.

Each parent text goes through eight nlpaug augmenters, one call each (the nearest nlpaug
equivalents of our ops that run offline), and its children are then gated by cosine to the parent
with one sentence-transformers `model.encode([parent, *children])` call per parent. Children whose
cosine is below `min_similarity` or above `max_similarity` are rejected, as in our gate.

Offline notes: SynonymAug(wordnet) reads the project's WordNet; NLTK's POS tagger and sentence
splitter are not installed, so every word is looked up under every part of speech (nlpaug's own
fallback for an unknown tag) and RandomSentAug splits sentences with the project's splitter.
"""

from __future__ import annotations

import random
import time


def build_augmenters(strength: float) -> dict:
    """nlpaug augmenters by name, changing `strength` share of words (or sentences)."""
    import nlpaug.augmenter.char as nac
    import nlpaug.augmenter.sentence as nas
    import nlpaug.augmenter.word as naw

    from model_hooks.resources import ensure_nltk_data
    from stages.augmenters import split_sentences

    ensure_nltk_data()
    synonym = naw.SynonymAug(aug_src="wordnet", aug_p=strength, aug_max=None)
    synonym.model.pos_tag = lambda tokens: [(token, "") for token in tokens]
    return {
        "SynonymAug(wordnet)": synonym,
        "RandomWordAug(swap)": naw.RandomWordAug(action="swap", aug_p=strength, aug_max=None),
        "RandomWordAug(delete)": naw.RandomWordAug(action="delete", aug_p=strength, aug_max=None),
        "RandomWordAug(crop)": naw.RandomWordAug(action="crop", aug_p=strength, aug_max=None),
        "KeyboardAug": nac.KeyboardAug(aug_word_p=strength, aug_word_max=None),
        "OcrAug": nac.OcrAug(aug_word_p=strength, aug_word_max=None),
        "RandomCharAug(substitute)": nac.RandomCharAug(action="substitute", aug_word_p=strength, aug_word_max=None),
        "RandomSentAug": nas.RandomSentAug(mode="random", aug_p=strength, tokenizer=split_sentences),
    }


def augment_and_gate(parents: list[str], strength: float, min_similarity: float, max_similarity: float, seed: int) -> dict:
    """Run the loop; counts and seconds (model and augmenter loading included)."""
    started = time.perf_counter()
    import numpy as np
    from sentence_transformers import SentenceTransformer

    from model_hooks.locations import model_path

    random.seed(seed)
    np.random.seed(seed)
    augmenters = build_augmenters(strength)
    model = SentenceTransformer(str(model_path()), device="cpu")
    generated = too_dissimilar = near_copy = 0
    gate_seconds = 0.0
    for parent in parents:
        children = [augmenter.augment(parent)[0] for augmenter in augmenters.values()]
        gate_started = time.perf_counter()
        vectors = model.encode([parent, *children])
        similarity = vectors[1:] @ vectors[0]
        gate_seconds += time.perf_counter() - gate_started
        generated += len(children)
        too_dissimilar += int((similarity < min_similarity).sum())
        near_copy += int((similarity > max_similarity).sum())
    return {
        "ops": list(augmenters), "generated": generated, "kept": generated - too_dissimilar - near_copy,
        "rejected_by_reason": {"too_dissimilar": too_dissimilar, "near_copy": near_copy},
        "similarity_gate_seconds": gate_seconds, "seconds": time.perf_counter() - started,
    }
