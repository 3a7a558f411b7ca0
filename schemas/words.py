"""Words in text: the shared tokenizer, English function words, and whole-word protected-term matching.

`tokenize` is the one tokenizer of the domain lexicon (stages/domain_lexicon.py) and the word
vectors (model_hooks/word_vectors.py), so a vector's key is the token the lexicon ranks.
`keeps_protected_terms` is the rule the augmentation stage enforces and its contract checks.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

# Lower-cased runs of letters/digits, joined by single internal hyphens or apostrophes:
# "non-small", "crohn's", "covid-19" are one token each; "--", "'quoted'" and "_" split.
_TOKEN = re.compile(r"[^\W_]+(?:['-][^\W_]+)*")
# A term candidate: letters only, optionally hyphenated ("x-ray", "non-small"); no digits or apostrophes.
_TERM_LIKE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)*")
_MIN_TERM_LENGTH = 3

# English function words (NLTK's 179-word list plus a few academic connectives). Deliberately
# short: broader "search engine" lists (the `stop-words` package has 1,333 English entries) also
# drop content words such as "cases", "high", "computer" or "fire", which a domain lexicon may
# need. Callers who want a broader list pass `stopwords=`.
STOPWORDS = frozenset(
    """
    a about above after again against ain all am an and any are aren aren't as at be because been
    before being below between both but by can couldn couldn't d did didn didn't do does doesn
    doesn't doing don don't down during each few for from further had hadn hadn't has hasn hasn't
    have haven haven't having he her here hers herself him himself his how i if in into is isn
    isn't it it's its itself just ll m ma me mightn mightn't more most mustn mustn't my myself
    needn needn't no nor not now o of off on once only or other our ours ourselves out over own re
    s same shan shan't she she's should should've shouldn shouldn't so some such t than that
    that'll the their theirs them themselves then there these they this those through to too under
    until up ve very was wasn wasn't we were weren weren't what when where which while who whom why
    will with won won't wouldn wouldn't y you you'd you'll you're you've your yours yourself
    yourselves also could would may might must shall us upon via within without whether among
    per however thus therefore although though yet onto
    """.split()
)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens: letters and digits, with internal hyphens or apostrophes kept.

    The typographic apostrophe is folded to "'" first, so "Crohn’s" and "Crohn's" match.
    """
    return _TOKEN.findall(text.lower().replace("\u2019", "'"))


def is_term_like(token: str) -> bool:
    """Alphabetic (hyphenated allowed), at least three characters long."""
    return len(token) >= _MIN_TERM_LENGTH and _TERM_LIKE.fullmatch(token) is not None


# Augmenters that move or drop whole sentences verbatim and never alter a word.
SENTENCE_OPS = frozenset({"sentence_dropout", "sentence_shuffle", "sentence_crop"})


# Protected terms are matched against whole word runs.
WORD_RUN = re.compile(r"\w+")


def lower_terms(protected) -> frozenset[str]:
    """The non-blank terms of `protected`, lower-cased."""
    return frozenset(term.lower() for term in protected if term and term.strip())


@lru_cache(maxsize=64)
def _term_patterns(protected: frozenset[str]) -> tuple[frozenset[str], tuple[re.Pattern, ...]]:
    """Plain terms (counted via word runs) and regexes for terms with non-word characters."""
    terms = lower_terms(protected)
    plain = frozenset(term for term in terms if WORD_RUN.fullmatch(term))
    other = tuple(re.compile(rf"(?<!\w){re.escape(term)}(?!\w)", re.IGNORECASE) for term in sorted(terms - plain))
    return plain, other


def keeps_protected_terms(parent: str, child: str, protected: frozenset[str], op: str | None = None) -> bool:
    """True if the protected words of `parent` survive in `child` (made by augmenter `op`).

    Word and character ops edit words in place, so every occurrence must survive: each protected
    word occurs in the child at least as often as in the parent. Sentence ops (SENTENCE_OPS) move
    or remove whole sentences verbatim and never alter a word, so for them each protected word of
    the parent must still occur at least once. Whole words only, case-insensitive: "Aspirin" counts
    for "aspirin", so does the "aspirin" in "aspirin-induced", but "aspirins" does not (an
    inflected term is a changed term).
    """
    if not protected:
        return True
    needed = (lambda count: min(count, 1)) if op in SENTENCE_OPS else (lambda count: count)
    plain, other = _term_patterns(frozenset(protected))
    if plain:
        parent_counts = Counter(word for word in WORD_RUN.findall(parent.lower()) if word in plain)
        if parent_counts:
            child_counts = Counter(word for word in WORD_RUN.findall(child.lower()) if word in plain)
            if any(child_counts[term] < needed(count) for term, count in parent_counts.items()):
                return False
    return all(len(pattern.findall(child)) >= needed(len(pattern.findall(parent))) for pattern in other)
