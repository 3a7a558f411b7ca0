"""A short-text classification set built offline from WordNet: a check on data unlike the demo's.

The demo abstracts are long (about 200 words). Defaults are meant for text classification in
general, so this builds a second, short-text task from the project's own WordNet 3.0 (installed by
`make resources`; Princeton's WordNet licence allows it): each noun synset's gloss (4 to 20 words,
e.g. "type genus of the Salamandridae") labeled with its lexicographer file, six classes (animal,
plant, food, artifact, body, person), 500 glosses each drawn with a fixed seed. Many glosses follow
templates ("a genus of ...", "a native or inhabitant of ..."), which near-duplicate detection and
the eval-leak rule must not mistake for copies. `make bench-short-texts` builds it, then runs the
curate flow and the k=10 experiment on it (configs/wordnet_glosses.yaml).

    python benchmarks/wordnet_glosses.py [--per-class 500] [--out benchmarks/work/wordnet_glosses/glosses.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import random
from pathlib import Path

import harness
from harness import ROOT

DEFAULT_OUT = ROOT / "benchmarks" / "work" / "wordnet_glosses" / "glosses.csv"
CLASSES = ("animal", "plant", "food", "artifact", "body", "person")
MIN_WORDS, MAX_WORDS = 4, 20


def glosses(per_class: int, seed: int = 0) -> list[tuple[str, str]]:
    """(gloss, class) rows: `per_class` distinct noun glosses of each class, shuffled with `seed`."""
    from model_hooks.resources import load_wordnet

    wordnet = load_wordnet()
    by_class: dict[str, set[str]] = {name: set() for name in CLASSES}
    for synset in wordnet.all_synsets("n"):
        name = synset.lexname().removeprefix("noun.")
        if name in by_class and MIN_WORDS <= len(synset.definition().split()) <= MAX_WORDS:
            by_class[name].add(synset.definition())
    rng = random.Random(seed)
    rows = []
    for name in CLASSES:
        texts = sorted(by_class[name])
        if len(texts) < per_class:
            raise ValueError(f"WordNet has {len(texts)} {name} glosses of {MIN_WORDS}-{MAX_WORDS} words, fewer than {per_class}")
        rows += [(text, name) for text in rng.sample(texts, per_class)]
    rng.shuffle(rows)
    return rows


def write_csv(rows: list[tuple[str, str]], path: Path) -> None:
    """Write `rows` as a text,label CSV, atomically."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
    harness.write_text(path, buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-class", type=int, default=500)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    rows = glosses(args.per_class)
    write_csv(rows, args.out)
    print(f"{len(rows)} glosses, {args.per_class} per class, in {args.out}")


if __name__ == "__main__":
    main()
