"""Near-duplicate detection on short texts: estimate error, a templated flood, and what cleaning rejects.

Records (one run, one `run_id`) in results/bench_minhash_short.jsonl, table in .md:
- `short_pairs`: 200 pairs of short texts sharing a stem (2 to 4 words, then one different word):
  estimated minus true word-bigram Jaccard (mean, std, 95th percentile of the absolute error).
- `templated_flood`: 20,000 rows of one template ("a person who studies nameN", bigram Jaccard 0.6
  between any two), every tenth an eval row: seconds of the eval-duplicate search and rows flagged
  (the MinHash noise at the 0.7 threshold; the README's limit).
- `wordnet_glosses` and `demo`: the cleaning stage on the short-text check's glosses (built if
  missing) and on the demo abstracts: rows kept, rejects by reason, and a digest of the kept ids
  and texts (equal digests: equal output).

    python benchmarks/bench_minhash_short.py [--code-tree PATH]

`--code-tree` measures the stages of another checkout (e.g. a `git worktree` of an older commit) with
this script, so a change can be measured before and after; parts that tree cannot run are skipped,
and the records name that tree's commit.
"""

from __future__ import annotations

import collections
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl

import harness
from harness import RESULTS, ROOT

NAME = "bench_minhash_short"
PACKAGES = ("flows", "stages", "model_hooks", "schemas", "data_contracts", "experiments")


def short_pairs(n_pairs: int = 200, seed: int = 4) -> dict:
    from schemas.minhash import estimated_jaccard

    words = "the patient was treated with a new drug and the pain decreased over two weeks of follow up".split()
    rng = np.random.default_rng(seed)
    errors = []
    for _ in range(n_pairs):
        stem = " ".join(rng.choice(words, size=int(rng.integers(2, 5))))
        a, b = f"{stem} {rng.choice(words)}x", f"{stem} {rng.choice(words)}y"
        errors.append(estimated_jaccard(a, b) - _bigram_jaccard(a, b))
    errors = np.asarray(errors)
    return {"pairs": n_pairs, "error_mean": round(float(errors.mean()), 4), "error_std": round(float(errors.std()), 4),
            "abs_error_p95": round(float(np.percentile(np.abs(errors), 95)), 4)}


def _bigram_jaccard(a: str, b: str) -> float:
    def bigrams(text):
        words = text.split()
        return {tuple(words[i : i + 2]) for i in range(len(words) - 1)}

    return len(bigrams(a) & bigrams(b)) / len(bigrams(a) | bigrams(b))


def templated_flood(n_rows: int = 20_000, eval_every: int = 10) -> dict:
    from schemas.minhash import MinHashParams, eval_duplicate_of, signed_keys
    from schemas.text_keys import key_hashes

    keys = pl.Series([f"a person who studies name{index}" for index in range(n_rows)])
    is_eval = np.arange(n_rows) % eval_every == 0
    params = MinHashParams()
    signatures = signed_keys(keys, params)
    with harness.timed() as timing:
        found = eval_duplicate_of(key_hashes(keys), is_eval, params, signatures)
    return {"rows": n_rows, "eval_rows": int(is_eval.sum()), "seconds": round(timing.seconds, 2),
            "flagged": int((found >= 0).sum())}


def cleaning_outcome(config_path: Path) -> dict:
    from flows.config import RunConfig
    from stages.cleaning import clean
    from stages.ingest import ingest

    config = RunConfig.load(config_path)
    result = clean(ingest(config.ingest).kept, config.cleaning)
    digest = hashlib.sha256()
    for column in ("id", "text"):
        digest.update("\n".join(result.kept.column(column).to_pylist()).encode())
    return {"rows_in": result.stats["rows_in"], "rows_out": result.kept.num_rows,
            "rejected": dict(sorted(collections.Counter(result.rejected.column("reason").to_pylist()).items())),
            "kept_digest": digest.hexdigest()[:16]}


def write_markdown(records: list[dict], path: Path) -> None:
    lines = ["# Near-duplicate detection on short texts", "", f"Written by `benchmarks/{NAME}.py`.", "",
             "| date | commit | part | figures |", "|---|---|---|---|"]
    for record in records:
        figures = ", ".join(f"{key} {value}" for key, value in record["figures"].items())
        lines.append(f"| {record['date']} | {record['git_commit']} | {record['part']} | {figures} |")
    harness.write_lines(path, lines)


def use_code_tree(tree: Path) -> dict:
    """Import the project's packages from the checkout `tree` from now on (forgetting those this checkout loaded so
    far); return the git fields for its records: its commit and whether its tracked files differ from it."""
    sys.path.insert(0, str(tree.resolve()))
    for name in [name for name in sys.modules if name.split(".")[0] in PACKAGES]:
        del sys.modules[name]
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
    return {"git_commit": commit.stdout.strip() or None, "git_dirty": bool(status.stdout.strip()) if status.returncode == 0 else None}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-tree", type=Path, default=None, help="measure the stages of this checkout")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from wordnet_glosses import DEFAULT_OUT, glosses, write_csv

    if not DEFAULT_OUT.is_file():
        write_csv(glosses(500), DEFAULT_OUT)
    fields = harness.provenance()
    if args.code_tree:
        fields.update(use_code_tree(args.code_tree))
    parts = {
        "short_pairs": short_pairs,
        "templated_flood": templated_flood,
        "wordnet_glosses": lambda: cleaning_outcome(ROOT / "configs" / "wordnet_glosses.yaml"),
        "demo": lambda: cleaning_outcome(ROOT / "configs" / "demo.yaml"),
    }
    records = []
    for name, measure in parts.items():
        try:
            records.append({"bench": "minhash_short", "part": name, "figures": measure(), **fields})
        except ImportError as missing:  # an older tree without this part's functions
            print(f"skipped {name}: {missing}")
    write_markdown(harness.write_records(RESULTS / f"{NAME}.jsonl", records), RESULTS / f"{NAME}.md")
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
