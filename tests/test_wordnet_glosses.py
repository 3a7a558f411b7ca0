"""The short-text check's data: WordNet glosses, balanced, distinct, the same bytes every time."""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import wordnet_glosses  # noqa: E402


def test_glosses_are_balanced_short_distinct_and_reproducible(tmp_path):
    rows = wordnet_glosses.glosses(per_class=30)
    assert Counter(label for _, label in rows) == {name: 30 for name in wordnet_glosses.CLASSES}
    assert len({text for text, _ in rows}) == len(rows)
    assert all(wordnet_glosses.MIN_WORDS <= len(text.split()) <= wordnet_glosses.MAX_WORDS for text, _ in rows)
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    wordnet_glosses.write_csv(rows, first)
    wordnet_glosses.write_csv(wordnet_glosses.glosses(per_class=30), second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text(encoding="utf-8").splitlines()[0] == "text,label"
