"""The typo reader: a word the run's own text never uses becomes its most frequent known neighbour one edit away.

A frozen sentence encoder maps a misspelt word to other word pieces, and no linear head drawn from a few
rows per class learns to follow it (docs/experiments.md, "Noisy evaluation"). Reading the text first undoes most typos: the
vocabulary is every word of the run's training texts (labeled and unlabeled, never eval rows) with its
count; a word outside it, with a letter in it and at least `MIN_LENGTH` characters, is replaced by the
most frequent vocabulary word one edit away (a deletion, a transposition of neighbours, a substitution or
an insertion, over the characters the vocabulary uses), ties to the alphabetically first. A word with no
such neighbour, a number and every known word stay as written. The same text always reads the same.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

MIN_LENGTH = 3  # shorter words have too many neighbours to guess from
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """The lower-cased words of `text` (runs of letters and digits)."""
    return [word.lower() for word in _WORD.findall(text)]


def _match_case(original: str, replacement: str) -> str:
    if original.isupper() and len(original) > 1:
        return replacement.upper()
    if original[:1].isupper():
        return replacement[:1].upper() + replacement[1:]
    return replacement


class TypoReader:
    """Repairs the words of a text against a vocabulary; see the module docstring."""

    def __init__(self, vocabulary: Counter):
        self.vocabulary = vocabulary
        self.alphabet = "".join(sorted({character for word in vocabulary for character in word}))
        self._repairs: dict[str, str] = {}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> TypoReader:
        """A reader whose vocabulary is every word of `texts` with its count."""
        return cls(Counter(word for text in texts for word in words(text)))

    def repair_word(self, word: str) -> str:
        """`word`, or its most frequent vocabulary neighbour one edit away when `word` is unknown."""
        lower = word.lower()
        if lower in self.vocabulary or len(lower) < MIN_LENGTH or not any(c.isalpha() for c in lower):
            return word
        if lower not in self._repairs:
            known = [edit for edit in self._edits(lower) if edit in self.vocabulary]
            self._repairs[lower] = min(known, key=lambda edit: (-self.vocabulary[edit], edit)) if known else lower
        repaired = self._repairs[lower]
        return word if repaired == lower else _match_case(word, repaired)

    def repair(self, text: str) -> str:
        """`text` with every unknown word repaired; everything between words as written."""
        return _WORD.sub(lambda match: self.repair_word(match.group()), text)

    def _edits(self, word: str) -> set[str]:
        splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
        edits = {left + right[1:] for left, right in splits if right}
        edits |= {left + right[1] + right[0] + right[2:] for left, right in splits if len(right) > 1}
        edits |= {left + character + right[1:] for left, right in splits if right for character in self.alphabet}
        edits |= {left + character + right for left, right in splits for character in self.alphabet}
        edits.discard(word)
        return edits
