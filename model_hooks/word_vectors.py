"""In-domain word vectors (gensim word2vec) and the neighbours they give for a word.

Trained on the project's own text with the tokenizer of `schemas.words`, so a vector's key
is the same token the lexicon ranks. Skip-gram, not CBOW: on a corpus this small (a few hundred
thousand tokens) skip-gram gives better vectors for rare words (Mikolov et al. 2013), and domain
terms are mostly rare. It is slower: on the 2,888 demo abstracts (530k tokens, 10 epochs, one
worker, 2-core machine under varying load) skip-gram took 26-45 s against 8 s for CBOW, and
CBOW's neighbours were visibly noisier there ("seizures" -> "syncope", "she", "symptoms" against
skip-gram's "tonic-clonic", "epileptic", "epilepsy").

Training is deterministic for a given input and seed: one worker thread (several threads race on
the shared weights), a fixed seed, and a `hashfxn` that does not depend on PYTHONHASHSEED
(gensim's default is the salted built-in `hash`). gensim 4.4 seeds its initial vectors from `seed`
alone and uses `hashfxn` only in a deprecated helper, so the stable hash is a guard against other
gensim versions; the cross-process test is what checks the result.

On text this small the nearest neighbours are topical rather than synonyms ("myocardial" ->
"infarction"): treat `domain_synonyms` as related in-domain words, and measure before using them
as substitutions.
"""

from __future__ import annotations

import zlib
from collections import Counter

import numpy as np

from schemas.words import STOPWORDS, is_term_like, tokenize

_INFLECTION_PREFIX = 5


_MIN_VOCABULARY = 20


def stable_hash(text: str) -> int:
    """Hash of a string that is the same in every process (CRC-32 of its UTF-8 bytes)."""
    return zlib.crc32(text.encode("utf-8"))


def train_word_vectors(
    texts: list[str],
    seed: int = 0,
    vector_size: int = 100,
    min_count: int = 3,
    epochs: int = 10,
    window: int = 5,
):
    """Skip-gram word2vec on the tokenized texts; returns the trained `gensim` KeyedVectors.

    Deterministic across processes for the same texts and arguments (workers=1, `seed`,
    `stable_hash`). Words seen fewer than `min_count` times get no vector.
    """
    from gensim.models import Word2Vec

    sentences = [tokens for tokens in (tokenize(text) for text in texts) if tokens]
    counts = Counter(token for tokens in sentences for token in tokens)
    if sum(1 for count in counts.values() if count >= min_count) < _MIN_VOCABULARY:
        raise ValueError(f"too little text to train word vectors: fewer than {_MIN_VOCABULARY} words occur {min_count}+ times")
    model = Word2Vec(
        sentences=sentences,
        vector_size=vector_size,
        window=window,
        min_count=min_count,
        sg=1,
        negative=5,
        epochs=epochs,
        workers=1,
        seed=seed,
        hashfxn=stable_hash,
    )
    return model.wv


def domain_synonyms(vectors, word: str, topn: int = 5, min_similarity: float = 0.6) -> list[str]:
    """Up to `topn` nearest neighbours of `word` with cosine similarity >= `min_similarity`.

    Best first. Skips inflections of the word (neighbours sharing its first five letters, or the
    whole word when it is shorter), tokens that are not alphabetic (hyphens allowed, three letters
    or more) and function words (`STOPWORDS`). A word without a vector has no neighbours.
    """
    word = word.lower()
    if topn <= 0 or word not in vectors.key_to_index:
        return []
    similarities = vectors.most_similar(word, topn=None)  # cosine similarity to every key
    prefix = word[:_INFLECTION_PREFIX]
    found: list[str] = []
    # Stable sort: equal similarities keep vocabulary order, so the result is deterministic.
    for index in np.argsort(-similarities, kind="stable"):
        if similarities[index] < min_similarity:
            break
        candidate = vectors.index_to_key[index]
        if candidate[:_INFLECTION_PREFIX] == prefix or candidate in STOPWORDS or not is_term_like(candidate):
            continue
        found.append(candidate)
        if len(found) == topn:
            break
    return found
