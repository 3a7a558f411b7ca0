"""Text augmenters behind one small interface, all offline.

Every augmenter has a `name` (the op name in `AUGMENTER_NAMES`) and one method:

    augment(text, n, seed, protected) -> list[str]

It returns up to `n` variants of `text`: possibly fewer, never the unchanged text (compared with
whitespace collapsed), never the same variant twice. The output depends only on
(text, n, seed, protected) and the augmenter's settings, in any process and whatever other threads
do: every augmenter draws from a per-call `random.Random(seed)`, never from Python's or numpy's
global generators, which Prefect's and Dask's threads may also draw from. nlpaug augmenters get it
through their `sample` method (their only source of randomness), TextAttack's EDA through the
`random` name of the TextAttack modules it uses (swapped under a lock). The TextAttack candidate
lists, which come out of Python sets, are sorted first (set order depends on PYTHONHASHSEED).
`strength` in (0, 1] is the share of words, characters or sentences an augmenter changes.

`protected` holds lower-cased single words (domain terms) that must not be replaced, deleted or
corrupted. Every augmenter is told about them and avoids them where it can, but the one enforcement
that counts is central: the augmentation stage drops every child for which
`keeps_protected_terms(parent, child, protected)` is False, whatever the augmenter did.

Offline notes. nlpaug's WordNet `SynonymAug` needs NLTK's POS tagger, which is not installed, so
`wordnet_synonym` is our own: it picks each word's part of speech from WordNet's sense counts.
nlpaug's `WordEmbsAug` wants a vector file, so `word_vector` takes a gensim `KeyedVectors` object.
TextAttack's EDA is applied one sentence at a time (see `EdaAugmenter`): on a whole abstract its
candidate generation grows with the fourth power of the length (about a minute per abstract).
Heavy libraries (nlpaug, TextAttack, NLTK's WordNet) load lazily, once per process or augmenter.
An augmenter instance keeps per-call state (the protected set handed to its library): use one per
thread.
"""

from __future__ import annotations

import itertools
import random
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Protocol

import numpy as np

from model_hooks.resources import load_wordnet, wordnet_dir
from schemas.words import STOPWORDS, is_term_like, keeps_protected_terms
from schemas.words import WORD_RUN as _WORD_RUN
from schemas.words import lower_terms as _lower_terms

AUGMENTER_NAMES = (
    "wordnet_synonym",
    "eda",
    "random_swap",
    "random_delete",
    "keyboard",
    "ocr",
    "sentence_dropout",
    "sentence_shuffle",
    "sentence_crop",
    "word_vector",
)


# What an op's children are for. `variety`: rewrites that keep the meaning and should read like real text;
# the discriminator may reject them for looking machine-made. `robustness`: the noise real text carries
# (typos, OCR errors, adversarial misspellings), which the model must tolerate; such a child is supposed to
# look noisy and is dropped only when its label flips or its meaning is gone (the similarity gate).
# `adversarial` is not an augmenter: it names the rows the optional adversarial add-back makes.
VARIETY, ROBUSTNESS = "variety", "robustness"
PURPOSES = (VARIETY, ROBUSTNESS)
ADVERSARIAL_OP = "adversarial"
OP_PURPOSES = {
    **{name: VARIETY for name in AUGMENTER_NAMES},
    "keyboard": ROBUSTNESS,
    "ocr": ROBUSTNESS,
    ADVERSARIAL_OP: ROBUSTNESS,
}


def op_purpose(op: str | None) -> str | None:
    """The purpose of an op's rows (None: not an augmentation op, e.g. an original or a pseudo-label)."""
    return OP_PURPOSES.get(op) if op else None


class Augmenter(Protocol):
    """Makes up to `n` distinct changed variants of a text, deterministically for a seed."""

    name: str

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]: ...


# --- protected terms -------------------------------------------------------------------------


def _is_protected(token: str, protected: frozenset[str]) -> bool:
    """A token is protected if it, or a word run in it ("aspirin-induced"), is a protected term."""
    lowered = token.lower()
    return lowered in protected or any(part in protected for part in _WORD_RUN.findall(lowered))


# nlpaug tests `token in stopwords` (exact: case and punctuation count), so it gets this instead of
# a list: it holds every token containing a protected word ("Aspirin," or "aspirin-induced").
class _ProtectedTokens:
    """Set-like nlpaug `stopwords`: tokens holding a protected word; cached per augment call."""

    def __init__(self, protected: frozenset[str]):
        self.protected, self._seen = protected, {}

    def __contains__(self, token: object) -> bool:
        if token not in self._seen:
            self._seen[token] = isinstance(token, str) and _is_protected(token, self.protected)
        return self._seen[token]


# --- shared helpers ----------------------------------------------------------------------------


def _check_strength(strength: float) -> float:
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"augmenter strength must be in (0, 1], got {strength}")
    return float(strength)


def _normalise(text: str) -> str:
    return " ".join(text.split())


def _collect(text: str, n: int, make_one: Callable[[], str | None], attempts: int | None = None) -> list[str]:
    """Up to `n` distinct variants from repeated `make_one()` calls, none equal to `text`."""
    seen, variants = {_normalise(text)}, []
    for _ in range(attempts if attempts is not None else 3 * n + 2):
        if len(variants) >= n:
            break
        variant = make_one()
        if variant and _normalise(variant) not in seen:
            seen.add(_normalise(variant))
            variants.append(variant)
    return variants


def _match_case(original: str, replacement: str) -> str:
    if original[:1].isupper() and not replacement[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


def _lower_or_title(word: str) -> bool:
    """Lower-case or capitalised; ALL-CAPS acronyms and MixedCase names are left alone."""
    return word.islower() or (word[:1].isupper() and word[1:].islower())


def _substitute(text: str, spans: list[tuple[int, int]], replacements: list[str]) -> str:
    pieces, end = [], 0
    for (start, stop), replacement in sorted(zip(spans, replacements)):
        pieces += [text[end:start], replacement]
        end = stop
    return "".join(pieces) + text[end:]


def _word_substitution_variants(text: str, candidates: list[tuple[tuple[int, int], str, tuple[str, ...]]],
                                n: int, seed: int, strength: float) -> list[str]:
    """Variants replacing `strength` share (at least one) of the candidate words by one of their options."""
    if not candidates:
        return []
    rng = random.Random(seed)
    k = min(len(candidates), max(1, round(strength * len(candidates))))

    def make_one() -> str:
        chosen = rng.sample(candidates, k)
        return _substitute(text, [span for span, _, _ in chosen],
                           [_match_case(word, rng.choice(options)) for _, word, options in chosen])

    return _collect(text, n, make_one)


# --- wordnet_synonym ---------------------------------------------------------------------------

# Whole alphabetic words, not parts of hyphenated, apostrophised or alphanumeric tokens.
_PLAIN_WORD = re.compile(r"(?<![\w'\u2019-])[A-Za-z]+(?![\w'\u2019-])")
_WORDNET_POS = ("n", "v", "a", "r")


@lru_cache(maxsize=1)
def _sense_counts() -> dict[str, int]:
    """Tagged-corpus count per sense key, read once from WordNet's cntlist.rev: the numbers
    `Lemma.count()` returns, without its binary search of the file on every call."""
    counts = {}
    for line in (wordnet_dir() / "cntlist.rev").read_text(encoding="utf-8").splitlines():
        key, _sense_number, count = line.split()
        counts[key] = int(count)
    return counts


_INFLECTION_PREFIX = 5


def _same_stem(word: str, other: str) -> bool:
    """One starts with the other's first five letters (or all of it, when shorter)."""
    return other.startswith(word[:_INFLECTION_PREFIX]) or word.startswith(other[:_INFLECTION_PREFIX])


def _plural(noun: str) -> str:
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2:-1] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def wordnet_pos(word: str) -> tuple[str, str] | None:
    """(pos, lemma) of a lower-case word without a tagger: the POS with the largest sense count.

    For each WordNet POS the word's base form (morphy) is looked up and the tagged-corpus counts
    (`lemma.count()`) of its senses are summed; ties go to the POS with more synsets, then to
    noun > verb > adjective > adverb. None if WordNet does not know the word.
    """
    wordnet, counts = load_wordnet(), _sense_counts()
    best_key, best = None, None
    for order, pos in enumerate(_WORDNET_POS):
        lemma = wordnet.morphy(word, pos)
        synsets = wordnet.synsets(lemma, pos) if lemma else []
        if not synsets:
            continue
        count = sum(counts.get(item.key(), 0) for synset in synsets for item in synset.lemmas() if item.name().lower() == lemma)
        key = (count, len(synsets), -order)
        if best_key is None or key > best_key:
            best_key, best = key, (pos, lemma)
    return best


@lru_cache(maxsize=65536)
def wordnet_synonyms(word: str, senses: int = 1) -> tuple[str, ...]:
    """Single-word synonyms of a lower-case word from its first `senses` synsets of its main POS.

    Only base forms and regular noun plurals (re-inflected) get synonyms. Proper nouns, multi-word
    lemmas, stopwords and derivations sharing the word's first five letters are skipped, and
    number words (a sense with a digit lemma, e.g. "seven" ~ "7") get none.
    """
    found = wordnet_pos(word)
    if found is None:
        return ()
    pos, lemma = found
    plural = lemma != word
    if plural and not (pos == "n" and word in (lemma + "s", lemma + "es", _plural(lemma))):
        return ()  # verb forms, comparatives, irregular plurals: no safe re-inflection
    names = [item.name() for synset in load_wordnet().synsets(lemma, pos)[:senses] for item in synset.lemmas()]
    if any(char.isdigit() for name in names for char in name):
        return ()
    synonyms: list[str] = []
    for name in names:
        if name == lemma or not name.isalpha() or not name.islower() or len(name) < 3 or name in STOPWORDS:
            continue
        if _same_stem(name, lemma):
            continue  # "group" -> "grouping": a derivation, not a synonym
        candidate = _plural(name) if plural else name
        if candidate != word and candidate not in synonyms:
            synonyms.append(candidate)
    return tuple(synonyms)


class WordNetSynonymAugmenter:
    """Replaces content words with WordNet synonyms, POS chosen from WordNet sense counts (no tagger)."""

    name = "wordnet_synonym"

    def __init__(self, strength: float, senses: int = 1):
        self.strength, self.senses = _check_strength(strength), senses

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]:
        if n <= 0:
            return []
        protected = _lower_terms(protected)
        candidates = []
        for match in _PLAIN_WORD.finditer(text):
            word = match.group()
            lowered = word.lower()
            if len(word) < 3 or lowered in STOPWORDS or lowered in protected or not _lower_or_title(word):
                continue
            synonyms = wordnet_synonyms(lowered, self.senses)
            if synonyms:
                candidates.append((match.span(), word, synonyms))
        return _word_substitution_variants(text, candidates, n, seed, self.strength)


# --- word_vector -------------------------------------------------------------------------------

# The domain lexicon's token shape: letters/digits joined by internal hyphens or apostrophes.
_TOKEN = re.compile(r"(?<![\w'-])[^\W_]+(?:['-][^\W_]+)*(?![\w'-])")
# Numbers written as words: word vectors place them next to each other ("four" -> "nine").
_NUMBER_WORDS = frozenset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred
    thousand million billion first second third fourth fifth sixth seventh eighth ninth tenth once
    twice thrice half single double triple dozen
    """.split()
)


# On little text the neighbours are topical rather than synonyms (even antonyms: "small" ->
# "large"); the stage's similarity gate, not this class, decides what is kept.
class WordVectorAugmenter:
    """Replaces content words with their nearest in-domain word-vector neighbours."""

    name = "word_vector"

    def __init__(self, strength: float, vectors=None, min_similarity: float = 0.6, topn: int = 5):
        if vectors is None:
            raise ValueError(
                "word_vector needs in-domain word vectors: pass vectors= a gensim KeyedVectors "
                "(e.g. model_hooks.word_vectors.train_word_vectors(texts))"
            )
        self.strength, self.vectors = _check_strength(strength), vectors
        self.min_similarity, self.topn = min_similarity, topn
        self._neighbours: dict[str, tuple[str, ...]] = {}
        self._normed = None

    def neighbours(self, word: str) -> tuple[str, ...]:
        """Usable substitutes for a lower-case word, best first (empty without a vector)."""
        self._prefetch([word])
        return self._neighbours.get(word, ())

    def _prefetch(self, words: list[str]) -> None:
        """Neighbours of all new in-vocabulary words at once: one matrix product, not one each.

        The rule of `model_hooks.word_vectors.domain_synonyms` (cosine >= min_similarity, no
        stopwords, alphabetic tokens of 3+ letters, best first, ties in vocabulary order), plus
        `_same_stem`, which also drops "pains" for "pain" (domain_synonyms compares the first
        five letters only, so a shorter word's inflections pass), and no number words.
        """
        index = self.vectors.key_to_index
        new = sorted({word for word in words if word not in self._neighbours and word in index})
        if not new:
            return
        if self._normed is None:
            self._normed = self.vectors.get_normed_vectors()
        similarities = self._normed[[index[word] for word in new]] @ self._normed.T
        shortlist = min(similarities.shape[1], 64 + 16 * self.topn)
        for word, row in zip(new, similarities):
            found = self._best(word, row, shortlist)
            self._neighbours[word] = found if found is not None else self._best(word, row, len(row))

    def _best(self, word: str, row: np.ndarray, shortlist: int) -> tuple[str, ...] | None:
        """Neighbours among the `shortlist` most similar keys; None if that was not enough."""
        if shortlist < len(row):
            top = np.argpartition(-row, shortlist - 1)[:shortlist]
            order = top[np.lexsort((top, -row[top]))]
        else:
            order = np.argsort(-row, kind="stable")
        found: list[str] = []
        for position in order:
            if row[position] < self.min_similarity or len(found) == self.topn:
                return tuple(found)
            other = self.vectors.index_to_key[position]
            if (is_term_like(other) and other not in STOPWORDS and other not in _NUMBER_WORDS
                    and not _same_stem(word, other)):
                found.append(other)
        return tuple(found) if shortlist == len(row) else None  # ran out: retry with every key

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]:
        if n <= 0:
            return []
        protected = _lower_terms(protected)
        eligible = []
        for match in _TOKEN.finditer(text):
            word = match.group()
            lowered = word.lower()
            if (is_term_like(lowered) and lowered not in STOPWORDS and lowered not in _NUMBER_WORDS
                    and not _is_protected(lowered, protected) and _lower_or_title(word.replace("-", ""))):
                eligible.append((match.span(), word, lowered))
        self._prefetch([lowered for _, _, lowered in eligible])
        candidates = [(span, word, self._neighbours[lowered]) for span, word, lowered in eligible
                      if self._neighbours.get(lowered)]
        return _word_substitution_variants(text, candidates, n, seed, self.strength)


# --- sentence operations -----------------------------------------------------------------------

_SENTENCE_BOUNDARY = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_MIN_SENTENCES = 3


def split_sentences(text: str) -> list[str]:
    """Sentences by a simple rule: . ! or ? then whitespace then a capital letter or digit."""
    return [sentence for sentence in (part.strip() for part in _SENTENCE_BOUNDARY.split(text.strip())) if sentence]


class _SentenceOp:
    """Base for sentence-level ops: the first sentence (an abstract's title) always stays first."""

    name = ""

    def __init__(self, strength: float):
        self.strength = _check_strength(strength)

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]:
        sentences = split_sentences(text)
        if n <= 0 or len(sentences) < _MIN_SENTENCES:
            return []
        protected = _lower_terms(protected)
        rng = random.Random(seed)

        def make_one() -> str | None:
            # any sentence but the first may go, as long as every protected word stays present
            kept = self._variant(sentences, rng)
            variant = " ".join(kept) if kept else None
            return variant if variant and keeps_protected_terms(text, variant, protected, self.name) else None

        return _collect(text, n, make_one, attempts=5 * n + 5)

    def _variant(self, sentences: list[str], rng: random.Random) -> list[str] | None:
        raise NotImplementedError


class SentenceDropoutAugmenter(_SentenceOp):
    """Drops `strength` share of the sentences (at least one), never the first, never all others."""

    name = "sentence_dropout"

    def _variant(self, sentences, rng):
        k = min(len(sentences) - 2, max(1, round(self.strength * len(sentences))))
        dropped = set(rng.sample(range(1, len(sentences)), k))
        return [sentence for index, sentence in enumerate(sentences) if index not in dropped]


class SentenceShuffleAugmenter(_SentenceOp):
    """Reorders `strength` share of the sentences after the first (at least two)."""

    name = "sentence_shuffle"

    def _variant(self, sentences, rng):
        body = sentences[1:]
        k = min(len(body), max(2, round(self.strength * len(body))))
        positions = sorted(rng.sample(range(len(body)), k))
        original = [body[position] for position in positions]
        moved = original[:]
        rng.shuffle(moved)
        if moved == original:
            moved = moved[1:] + moved[:1]  # the shuffle changed nothing: rotate instead
        for position, sentence in zip(positions, moved):
            body[position] = sentence
        return [sentences[0], *body]


class SentenceCropAugmenter(_SentenceOp):
    """Keeps the first sentence and a contiguous window of (1 - strength) share of the rest."""

    name = "sentence_crop"

    def _variant(self, sentences, rng):
        body = sentences[1:]
        width = min(len(body) - 1, max(1, round((1.0 - self.strength) * len(body))))
        start = rng.randrange(len(body) - width + 1)
        return [sentences[0], *body[start:start + width]]


# --- nlpaug ------------------------------------------------------------------------------------


def _split_whitespace(text: str) -> list[str]:
    return text.split()


def _join_space(tokens: list[str]) -> str:
    return " ".join(token for token in tokens if token)


# nlpaug's default tokenizer splits at every non-word character and its detokenizer does not
# restore the text ("5.3" comes back as "5. 3", "+/-" as "+ / -"), so these run on whitespace
# tokens: punctuation stays attached to its word and the rest of the text is unchanged. A token is
# skipped when it contains a protected word ("aspirin," or "aspirin-induced").
class _NlpaugAugmenter:
    """Base for nlpaug augmenters: built once; protected words are passed as nlpaug `stopwords`."""

    name = ""

    def __init__(self, strength: float):
        self.strength = _check_strength(strength)
        self._augmenter = self._build()

    def _build(self):
        raise NotImplementedError

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]:
        if n <= 0 or not text.strip():
            return []
        protected = _lower_terms(protected)
        self._augmenter.stopwords = _ProtectedTokens(protected) if protected else None
        # nlpaug draws every position and replacement through `sample` (a classmethod on Python's
        # global `random`); an instance attribute of the same shape makes the draws private.
        rng = random.Random(seed)
        self._augmenter.sample = lambda x, num=None: rng.sample(x, num)

        def make_one() -> str | None:
            result = self._augmenter.augment(text)
            return result[0] if result else None

        return _collect(text, n, make_one)


class RandomSwapAugmenter(_NlpaugAugmenter):
    """nlpaug RandomWordAug(action="swap"): swaps `strength` share of words with a neighbour."""

    name = "random_swap"

    def _build(self):
        import nlpaug.augmenter.word as naw

        return naw.RandomWordAug(action="swap", aug_p=self.strength, aug_max=None,
                                 tokenizer=_split_whitespace, reverse_tokenizer=_join_space)


class RandomDeleteAugmenter(_NlpaugAugmenter):
    """nlpaug RandomWordAug(action="delete"): deletes `strength` share of words."""

    name = "random_delete"

    def _build(self):
        import nlpaug.augmenter.word as naw

        return naw.RandomWordAug(action="delete", aug_p=self.strength, aug_max=None,
                                 tokenizer=_split_whitespace, reverse_tokenizer=_join_space)


class KeyboardAugmenter(_NlpaugAugmenter):
    """nlpaug KeyboardAug: lower-case QWERTY-neighbour typos in `strength` share of words."""

    name = "keyboard"

    def _build(self):
        import nlpaug.augmenter.char as nac

        # Letter-for-letter typos only: numbers, symbols and case stay as written.
        return nac.KeyboardAug(aug_word_p=self.strength, aug_word_max=None, include_special_char=False,
                               include_numeric=False, include_upper_case=False,
                               tokenizer=_split_whitespace, reverse_tokenizer=_join_space)


class OcrAugmenter(_NlpaugAugmenter):
    """nlpaug OcrAug: OCR confusions (0/o, 1/l, ...) in `strength` share of words."""

    name = "ocr"

    def _build(self):
        import nlpaug.augmenter.char as nac

        return nac.OcrAug(aug_word_p=self.strength, aug_word_max=None,
                          tokenizer=_split_whitespace, reverse_tokenizer=_join_space)


# --- eda (TextAttack) --------------------------------------------------------------------------

# TextAttack builds every candidate text per step, each in time quadratic in the text's length,
# so EDA runs on short pieces and is offered a few random positions per step: long sentences are
# cut into pieces of at most this many words...
_EDA_CHUNK_WORDS = 20
# ...and each step may change one of this many positions (TextAttack would try all of them),
_EDA_INDEX_SAMPLE = 3
# ...to one of this many synonyms: TextAttack builds a whole new text per candidate, then keeps one.
_EDA_SYNONYM_SAMPLE = 2


@lru_cache(maxsize=8)
def _textattack_eda(strength: float):
    """TextAttack's EDA sub-augmenters for `strength`, built once per process, and their guard.

    Returns (synonym replacement, deletion, swap, insertion) and the constraint whose
    `protected` set decides which words they may touch.
    """
    import nltk

    from model_hooks.resources import textattack_offline

    load_wordnet()  # before TextAttack touches NLTK's WordNet, so its load takes the fast path
    with textattack_offline():
        from textattack.augmentation import EasyDataAugmenter
        from textattack.constraints import PreTransformationConstraint
        from textattack.shared.validators import transformation_consists_of_word_swaps

        eda = EasyDataAugmenter(pct_words_to_swap=strength, transformations_per_example=4)
    stopwords = frozenset(nltk.corpus.stopwords.words("english"))

    class ProtectedAndSampled(PreTransformationConstraint):
        """Leaves protected words (and, for word swaps, stopwords in any case) alone; offers a few others."""

        protected: frozenset[str] = frozenset()
        rng: random.Random = random.Random(0)

        def __call__(self, current_text, transformation):
            done = current_text.attack_attrs.get("modified_indices", set())
            skip_stopwords = transformation_consists_of_word_swaps(transformation)
            synonym_swap = transformation is eda.synonym_replacement.transformation
            allowed = [index for index, word in enumerate(current_text.words)
                       if index not in done and not _is_protected(word, self.protected)
                       and not (skip_stopwords and word.lower() in stopwords)
                       and not (synonym_swap and not transformation._get_replacement_words(word))]
            if len(allowed) > _EDA_INDEX_SAMPLE:
                allowed = self.rng.sample(allowed, _EDA_INDEX_SAMPLE)
            return set(allowed)

        def _get_modifiable_indices(self, current_text):  # required by the ABC; __call__ decides
            return set(range(len(current_text.words)))

    guard = ProtectedAndSampled()
    ops = (eda.synonym_replacement, eda.random_deletion, eda.random_swap, eda.random_insertion)
    for op in ops:
        op.pre_transformation_constraints.append(guard)
    _sort_candidates(eda.synonym_replacement.transformation, "_get_replacement_words", guard)
    _sort_candidates(eda.random_insertion.transformation, "_get_synonyms", guard)
    return ops, guard


def _sort_candidates(transformation, method: str, guard) -> None:
    """Make a TextAttack synonym lookup cached and reproducible (it returns set order), offering a
    sample of `_EDA_SYNONYM_SAMPLE` synonyms drawn from `guard.rng` (TextAttack picks one of them at
    random anyway)."""
    original = getattr(transformation, method)

    @lru_cache(maxsize=65536)
    def sorted_lookup(word: str) -> tuple[str, ...]:
        return tuple(sorted(original(word)))

    def sampled_lookup(word: str, *args, **kwargs) -> list[str]:
        synonyms = sorted_lookup(word)
        if len(synonyms) > _EDA_SYNONYM_SAMPLE:
            return guard.rng.sample(synonyms, _EDA_SYNONYM_SAMPLE)
        return list(synonyms)

    setattr(transformation, method, sampled_lookup)


# The TextAttack modules whose module-level `random` EDA draws from (candidate, swap and insertion choices).
_TEXTATTACK_RANDOM_MODULES = (
    "textattack.augmentation.augmenter",
    "textattack.transformations.word_innerswap_random",
    "textattack.transformations.word_insertions.word_insertion_random_synonym",
)
# The EDA sub-augmenters and their guard are shared per process, and the swap is module-wide.
_EDA_LOCK = threading.Lock()


@contextmanager
def _textattack_random(rng: random.Random) -> Iterator[None]:
    """Let the TextAttack modules EDA uses draw from `rng` instead of Python's global generator."""
    import importlib

    modules = [importlib.import_module(name) for name in _TEXTATTACK_RANDOM_MODULES]
    for module in modules:
        module.random = rng
    try:
        yield
    finally:
        for module in modules:
            module.random = random


def _eda_chunks(text: str) -> list[str]:
    chunks = []
    for sentence in split_sentences(text) or [text.strip()]:
        words = sentence.split()
        chunks += [" ".join(words[i:i + _EDA_CHUNK_WORDS]) for i in range(0, len(words), _EDA_CHUNK_WORDS)]
    return chunks


class EdaAugmenter:
    """TextAttack's EasyDataAugmenter operations, one op per variant, applied sentence by sentence."""

    name = "eda"

    def __init__(self, strength: float):
        self.strength = _check_strength(strength)

    def augment(self, text: str, n: int, seed: int, protected: frozenset[str]) -> list[str]:
        """Variant i applies one EDA op (synonym replacement, deletion, swap, insertion; order
        shuffled per call) with pct_words_to_swap=strength to every sentence.

        TextAttack's own `EasyDataAugmenter.augment` is not used: on a whole abstract it is far
        too slow, and it orders results through a set of strings (not reproducible across
        processes). Protected words are kept out of TextAttack's modifiable positions; the
        central `keeps_protected_terms` check still applies to the output.
        """
        chunks = _eda_chunks(text)
        if n <= 0 or not chunks:
            return []
        ops, guard = _textattack_eda(self.strength)
        order = list(range(len(ops)))
        random.Random(seed).shuffle(order)
        calls = itertools.count()

        def make_one() -> str:
            op = ops[order[next(calls) % len(ops)]]
            parts = []
            for chunk in chunks:
                result = op.augment(chunk)
                parts.append(_normalise(result[0]) if result else chunk)
            return " ".join(part for part in parts if part)

        with _EDA_LOCK:
            guard.protected = _lower_terms(protected)
            guard.rng = random.Random(seed)
            with _textattack_random(guard.rng):
                return _collect(text, n, make_one)


# --- registry ----------------------------------------------------------------------------------

_CLASSES = {
    "wordnet_synonym": WordNetSynonymAugmenter,
    "eda": EdaAugmenter,
    "random_swap": RandomSwapAugmenter,
    "random_delete": RandomDeleteAugmenter,
    "keyboard": KeyboardAugmenter,
    "ocr": OcrAugmenter,
    "sentence_dropout": SentenceDropoutAugmenter,
    "sentence_shuffle": SentenceShuffleAugmenter,
    "sentence_crop": SentenceCropAugmenter,
}


def build_augmenter(name: str, strength: float, vectors=None, **options) -> Augmenter:
    """The augmenter for an op name; `vectors` (gensim KeyedVectors) is needed by `word_vector`."""
    if name == "word_vector":
        return WordVectorAugmenter(strength, vectors=vectors, **options)
    if name not in _CLASSES:
        raise ValueError(f"unknown augmenter {name!r}; valid names: {', '.join(AUGMENTER_NAMES)}")
    return _CLASSES[name](strength, **options)
