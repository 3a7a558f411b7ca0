"""Domain lexicon: words that in-domain text uses far more often than general English does.

Pure functions, no Prefect and no models: the shared tokenizer (schemas/words.py) and a weighted log-odds ranking
("Fightin' Words", Monroe, Colaresi & Quinn 2008) of the in-domain counts against general-English
word frequencies from `wordfreq` (offline lists that ship in its wheel).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable

import numpy as np

from schemas.words import STOPWORDS, is_term_like, tokenize

# Background scale. `wordfreq` gives a relative frequency f_w per word; general English is treated
# as a pseudo-corpus of BACKGROUND_TOKENS tokens, so its count for w is BACKGROUND_TOKENS * f_w.
# wordfreq's large English list is estimated from many billions of tokens and stops at f = 1e-8
# (about ten occurrences per billion), so 1e9 tokens keeps the background's sampling variance small
# for every word it lists (count >= 10) without claiming more precision than its rounding gives.
BACKGROUND_TOKENS = 1e9
# Words wordfreq does not know (f_w = 0) get this frequency: one pseudo-occurrence in the
# background, a tenth of the smallest frequency it lists. Their background variance (about 1) then
# caps their z near their log-odds, so unknown strings (typos, codes, rare names) rank low.
MIN_BACKGROUND_FREQUENCY = 1e-9
# Informative Dirichlet prior alpha_w = PRIOR_TOKENS * f_w (alpha_0 = PRIOR_TOKENS). It adds
# background-shaped pseudo-counts to both sides, which pulls the rate of a common word seen only a
# few times in a small in-domain corpus back toward its general-English rate; on corpora much
# larger than PRIOR_TOKENS it has little effect.
PRIOR_TOKENS = 1e4


def count_tokens(texts: Iterable[str]) -> Counter[str]:
    """Token counts over all texts, with the shared tokenizer."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(tokenize(text))
    return counts


def background_frequencies(words: list[str], language: str = "en") -> np.ndarray:
    """General-language relative frequency of each word (wordfreq), floored for unknown words."""
    from wordfreq import word_frequency

    frequencies = np.fromiter(
        (word_frequency(word, language) for word in words), dtype=np.float64, count=len(words)
    )
    return np.maximum(frequencies, MIN_BACKGROUND_FREQUENCY)


def mine_domain_terms(
    texts: list[str],
    top_n: int = 200,
    min_count: int = 3,
    min_z: float = 3.0,
    language: str = "en",
    *,
    stopwords: Collection[str] | None = None,
) -> list[tuple[str, float]]:
    """Terms over-represented in `texts` against general language, as (term, z) best first.

    Weighted log-odds with an informative Dirichlet prior (Monroe, Colaresi & Quinn 2008,
    "Fightin' Words", Political Analysis 16(4)). With in-domain counts y_w over n tokens,
    background frequency f_w (wordfreq, floored at MIN_BACKGROUND_FREQUENCY), background
    pseudo-counts b_w = B * f_w over B tokens (B = BACKGROUND_TOKENS) and prior
    alpha_w = alpha_0 * f_w (alpha_0 = PRIOR_TOKENS):

        delta_w  = log((y_w + alpha_w) / (n + alpha_0 - y_w - alpha_w))
                 - log((b_w + alpha_w) / (B + alpha_0 - b_w - alpha_w))
        var_w    ~ 1 / (y_w + alpha_w) + 1 / (b_w + alpha_w)
        z_w      = delta_w / sqrt(var_w)

    n counts every token, stopwords and numbers included. A word is kept when y_w >= min_count,
    z_w >= min_z, it is alphabetic (hyphens allowed), at least three characters long and not a
    stopword (`stopwords`, default STOPWORDS). The result is the `top_n` kept words sorted by z
    descending, ties by word, so the output depends only on the input.

    z grows with both the log-odds and the evidence (roughly delta * sqrt(y)), so frequent domain
    words ("patients") outrank rarer but more specific ones ("troponin").
    """
    if top_n <= 0:
        return []
    stop = STOPWORDS if stopwords is None else frozenset(word.lower() for word in stopwords)
    counts = count_tokens(texts)
    total = float(sum(counts.values()))
    # Filter before scoring: a word's z does not depend on the other candidates, and wordfreq
    # look-ups are the costly step.
    words = sorted(
        word
        for word, count in counts.items()
        if count >= min_count and word not in stop and is_term_like(word)
    )
    if not words:
        return []
    y = np.array([counts[word] for word in words], dtype=np.float64)
    f = background_frequencies(words, language)
    alpha = PRIOR_TOKENS * f
    background = BACKGROUND_TOKENS * f
    delta = np.log((y + alpha) / (total + PRIOR_TOKENS - y - alpha)) - np.log(
        (background + alpha) / (BACKGROUND_TOKENS + PRIOR_TOKENS - background - alpha)
    )
    z = delta / np.sqrt(1.0 / (y + alpha) + 1.0 / (background + alpha))
    keep = np.flatnonzero(z >= min_z)
    # `words` is sorted, so a stable sort on -z breaks ties by word.
    order = keep[np.argsort(-z[keep], kind="stable")][:top_n]
    return [(words[i], float(z[i])) for i in order]
