"""Deterministic noisy copies of eval texts: the typos, OCR errors and word choices real text carries.

A noise is named `<kind>@<rate>`: `char@0.10` changes one character in 10% of a text's words (a
keyboard-neighbour typo, an OCR confusion, a dropped or a doubled letter, chosen at random);
`word@0.10` rewrites 10% of its words at the word level (an abbreviation for its long form or back,
from the abbreviations defined in the run's own training and unlabeled text, else a WordNet synonym).
`none` is the clean text.

The copy of a text depends only on (text, noise, seed): `random.Random` seeded by a hash of the three,
never a global generator. The generators here are our own, not the augmenters of stages/augmenters.py,
so a model trained on augmented children is not scored on the very generator that made them.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

CLEAN = "none"
KINDS = ("char", "word")
_NAME = re.compile(r"^(char|word)@(0(?:\.\d+)?|1(?:\.0+)?)$")
_WORD = re.compile(r"[A-Za-z]{3,}")

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
_NEIGHBOURS: dict[str, str] = {}
for _row_index, _row in enumerate(_KEYBOARD_ROWS):
    for _position, _key in enumerate(_row):
        _near = {_row[p] for p in (_position - 1, _position + 1) if 0 <= p < len(_row)}
        for _other in (_row_index - 1, _row_index + 1):
            if 0 <= _other < len(_KEYBOARD_ROWS):
                _near |= {_KEYBOARD_ROWS[_other][p] for p in (_position - 1, _position, _position + 1) if 0 <= p < len(_KEYBOARD_ROWS[_other])}
        _NEIGHBOURS[_key] = "".join(sorted(_near))
# What an OCR engine confuses, both ways where both read as text.
_OCR = {"o": "0", "0": "o", "l": "1", "i": "1", "e": "c", "c": "e", "s": "5", "b": "6", "g": "9", "a": "o", "u": "v",
        "m": "rn", "rn": "m", "d": "cl", "h": "b", "n": "ri", "t": "f", "f": "t"}


class NoiseError(ValueError):
    """A noise name that is not `none` or `<char|word>@<rate in [0, 1]>`."""


@dataclass(frozen=True)
class Noise:
    """One noise: its kind and the share of words it changes."""

    kind: str
    rate: float

    @property
    def name(self) -> str:
        return f"{self.kind}@{self.rate:.2f}"


def parse_noise(name: str) -> Noise:
    """`char@0.10` -> Noise("char", 0.1); a clear error for anything else."""
    match = _NAME.match(name.strip())
    if not match:
        raise NoiseError(f"noise {name!r}: expected <char|word>@<rate between 0 and 1>, e.g. char@0.10")
    return Noise(match.group(1), float(match.group(2)))


def _rng(text: str, noise: Noise, seed: int) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{noise.name}\x1f{text}".encode("utf-8")).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    return replacement[:1].upper() + replacement[1:] if original[:1].isupper() else replacement


def _typo(word: str, rng: random.Random) -> str:
    """One character-level error in `word`: keyboard neighbour, OCR confusion, dropped or doubled letter."""
    position = rng.randrange(len(word))
    letter = word[position]
    lower = letter.lower()
    kind = rng.choice(("keyboard", "ocr", "drop", "double"))
    if kind == "ocr":
        pair = word[position:position + 2].lower()
        if pair in _OCR:
            return word[:position] + _match_case(word[position:position + 2], _OCR[pair]) + word[position + 2:]
        if lower in _OCR:
            return word[:position] + _match_case(letter, _OCR[lower]) + word[position + 1:]
        kind = "keyboard"
    if kind == "keyboard" and lower in _NEIGHBOURS:
        return word[:position] + _match_case(letter, rng.choice(_NEIGHBOURS[lower])) + word[position + 1:]
    if kind == "drop" and len(word) > 3:
        return word[:position] + word[position + 1:]
    return word[:position] + letter + word[position:]


def _chosen(count: int, rate: float, rng: random.Random) -> list[int]:
    """round(rate x count) positions out of `count` (at least one when rate > 0 and count > 0), sorted."""
    n = min(count, max(1 if rate > 0 else 0, round(rate * count)))
    return sorted(rng.sample(range(count), n)) if n else []


def char_noise(text: str, rate: float, rng: random.Random) -> str:
    spans = [match.span() for match in _WORD.finditer(text)]
    pieces, last = [], 0
    for index in _chosen(len(spans), rate, rng):
        start, end = spans[index]
        pieces += [text[last:start], _typo(text[start:end], rng)]
        last = end
    return "".join(pieces) + text[last:]


@dataclass(frozen=True)
class WordNoiseLexicon:
    """Word-level rewrites known for a run: abbreviation <-> long form pairs, and a synonym lookup."""

    abbreviations: dict[str, str]  # long form (lower case) -> abbreviation, and abbreviation -> long form
    synonyms: object = None  # word -> tuple of synonyms (stages.augmenters.wordnet_synonyms); None: none

    @cached_property
    def _phrases(self) -> list[tuple[re.Pattern, str]]:
        """One compiled pattern per abbreviation or long form (long forms match in any case)."""
        return [(re.compile(r"(?<![\w-])" + re.escape(phrase) + r"(?![\w-])", re.IGNORECASE if " " in phrase else 0), replacement)
                for phrase, replacement in self.abbreviations.items()]

    def phrase_spans(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, replacement) of every abbreviation or long form in `text`."""
        return [(m.start(), m.end(), replacement) for pattern, replacement in self._phrases for m in pattern.finditer(text)]

    def rewrites(self, word: str) -> tuple[str, ...]:
        if self.synonyms is None:
            return ()
        return tuple(s for s in self.synonyms(word.lower()) if " " not in s and s.lower() != word.lower())


_DEFINITION = re.compile(r"((?:[A-Za-z][A-Za-z-]*\s+){1,6}?)\(([A-Z][A-Za-z]{1,7}s?)\)")


def learn_abbreviations(texts: Iterable[str]) -> dict[str, str]:
    """Abbreviations a text defines as `long form (ABBR)`, where the long form's last words start with the
    abbreviation's letters in order (Schwartz & Hearst 2003, simplified): both directions, sorted keys."""
    pairs: dict[str, str] = {}
    for text in texts:
        for match in _DEFINITION.finditer(text):
            abbreviation = match.group(2).rstrip("s") if match.group(2).endswith("s") and match.group(2)[:-1].isupper() else match.group(2)
            letters = [c.lower() for c in abbreviation if c.isalpha() and c.isupper()]
            candidate = match.group(1).split()
            if len(letters) < 2 or len(candidate) < len(letters):
                continue
            long_words = candidate[-len(letters):]
            if [word[0].lower() for word in long_words] == letters:
                long_form = " ".join(long_words).lower()
                pairs.setdefault(long_form, abbreviation)
                pairs.setdefault(abbreviation, long_form)
    return dict(sorted(pairs.items()))


def word_noise(text: str, rate: float, rng: random.Random, lexicon: WordNoiseLexicon) -> str:
    """Rewrite about `rate` of the words: abbreviate defined long forms (or expand abbreviations) first,
    then swap words for synonyms; words with no rewrite stay."""
    n_words = len(_WORD.findall(text))
    budget = max(1 if rate > 0 and n_words else 0, round(rate * n_words))
    spans = _non_overlapping(sorted(lexicon.phrase_spans(text)), rng)[:budget]
    taken = [(start, end) for start, end, _ in spans]
    words = [m.span() for m in _WORD.finditer(text) if not any(s < m.end() and m.start() < e for s, e in taken)]
    for index in rng.sample(range(len(words)), len(words)):
        if len(spans) >= budget:
            break
        start, end = words[index]
        options = lexicon.rewrites(text[start:end])
        if options:
            spans.append((start, end, _match_case(text[start:end], rng.choice(sorted(options)))))
    pieces, last = [], 0
    for start, end, replacement in sorted(spans):
        pieces += [text[last:start], replacement]
        last = end
    return "".join(pieces) + text[last:]


def _non_overlapping(spans: list[tuple[int, int, str]], rng: random.Random) -> list[tuple[int, int, str]]:
    kept, end_of_last = [], -1
    for span in spans:
        if span[0] >= end_of_last:
            kept.append(span)
            end_of_last = span[1]
    rng.shuffle(kept)
    return kept


def noisy_copy(text: str, noise: Noise, seed: int, lexicon: WordNoiseLexicon | None = None) -> str:
    """The noisy copy of `text`: the same for the same (text, noise, seed)."""
    rng = _rng(text, noise, seed)
    if noise.kind == "char":
        return char_noise(text, noise.rate, rng)
    return word_noise(text, noise.rate, rng, lexicon or WordNoiseLexicon({}))
