"""Benchmark of the cleaning stage: throughput, peak memory and planted near-duplicate recall.

Builds a seeded corpus from the demo abstracts (synthetic base documents of sampled sentences,
the real abstracts, and planted near-duplicate variants of some base documents), cleans it with
the default settings in a fresh process, appends one record to results/bench_clean.jsonl and
rewrites results/bench_clean.md from all records.

    python benchmarks/bench_clean.py [--n-docs 100000] [--variant-share 0.1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import re
import resource
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

from schemas.rows import content_id, conform_rows
from stages.cleaning import CleaningConfig, clean, repaired_keys

ROOT = Path(__file__).resolve().parents[1]
ABSTRACTS = ROOT / "data" / "medical_abstracts" / "medical_tc_test.csv"
WORK = ROOT / "benchmarks" / "work"
RESULTS = ROOT / "benchmarks" / "results"
SENTENCE_END = re.compile(r"(?<=\.) ")
MIN_SENTENCE_WORDS = 4
SENTENCES_PER_DOC = (8, 10)
EDIT_RATE = (0.02, 0.05)
VARIANT_KINDS = ("shuffle", "edit", "shuffle+edit")
DUPLICATE_REASONS = ("exact_duplicate", "near_duplicate")
TARGETS = {"docs_per_s": 2000, "near_dup_recall": 0.95, "peak_rss_mb": 2048}


def read_abstracts() -> pl.DataFrame:
    """The demo abstracts as (text, label) rows."""
    frame = pl.read_csv(ABSTRACTS)
    return frame.select(text=pl.col("medical_abstract"), label=pl.col("condition_label").cast(pl.String))


def sentence_pool(texts: list[str]) -> list[str]:
    """Distinct sentences (split on '. ') of at least MIN_SENTENCE_WORDS words, in a fixed order."""
    sentences = {s.strip() for text in texts for s in SENTENCE_END.split(text)}
    return sorted(s for s in sentences if len(s.split()) >= MIN_SENTENCE_WORDS)


def base_documents(pool: list[str], n_docs: int, rng: np.random.Generator) -> list[list[str]]:
    """`n_docs` distinct documents, each a list of 8-10 sentences drawn from `pool`."""
    chosen: dict[tuple[int, ...], None] = {}
    while len(chosen) < n_docs:
        size = rng.integers(SENTENCES_PER_DOC[0], SENTENCES_PER_DOC[1] + 1)
        chosen.setdefault(tuple(rng.choice(len(pool), size=size, replace=False).tolist()), None)
    return [[pool[i] for i in picks] for picks in chosen]


def shuffle_sentences(sentences: list[str], rng: np.random.Generator) -> list[str]:
    """The sentences in a new (never the original) order."""
    order = rng.permutation(len(sentences))
    if (order == np.arange(len(sentences))).all():
        order = np.roll(order, 1)
    return [sentences[i] for i in order]


def edit_words(text: str, vocabulary: list[str], rng: np.random.Generator) -> str:
    """Replace, delete or insert 2-5% of the words (at least one edit)."""
    words = text.split(" ")
    n_edits = max(1, round(rng.uniform(*EDIT_RATE) * len(words)))
    for _ in range(n_edits):
        position = int(rng.integers(len(words)))
        operation = rng.integers(3)
        if operation == 0:
            words[position] = vocabulary[rng.integers(len(vocabulary))]
        elif operation == 1 and len(words) > 1:
            del words[position]
        else:
            words.insert(position, vocabulary[rng.integers(len(vocabulary))])
    return " ".join(words)


def make_variant(sentences: list[str], kind: str, vocabulary: list[str], rng: np.random.Generator) -> str:
    """A near-duplicate of a document: shuffled sentences, small word edits, or both."""
    if "shuffle" in kind:
        sentences = shuffle_sentences(sentences, rng)
    text = " ".join(sentences)
    return edit_words(text, vocabulary, rng) if "edit" in kind else text


def build_corpus(n_docs: int, variant_share: float, seed: int = 0) -> pl.DataFrame:
    """Rows (id, text, label, kind, source_id) in shuffled order; variants carry their source's id.

    `n_docs` synthetic base documents, plus the real abstracts, plus `variant_share * n_docs`
    planted variants of randomly chosen synthetic documents (a third of each kind).
    """
    rng = np.random.default_rng(seed)
    real = read_abstracts()
    pool = sentence_pool(real["text"].to_list())
    vocabulary = sorted({word for sentence in pool for word in sentence.split()})
    docs = base_documents(pool, n_docs, rng)
    sources = rng.choice(n_docs, size=round(variant_share * n_docs), replace=False)
    kinds = [VARIANT_KINDS[i % len(VARIANT_KINDS)] for i in range(len(sources))]
    variants = [make_variant(docs[s], kind, vocabulary, rng) for s, kind in zip(sources.tolist(), kinds)]

    texts = [" ".join(doc) for doc in docs] + real["text"].to_list() + variants
    labels = ["x"] * n_docs + real["label"].to_list() + ["x"] * len(variants)
    row_kinds = ["base"] * n_docs + ["real"] * real.height + kinds
    source_rows = [None] * (n_docs + real.height) + sources.tolist()
    order = rng.permutation(len(texts))
    position = np.empty_like(order)
    position[order] = np.arange(len(order))
    ids = [content_id(texts[i], str(row)) for row, i in enumerate(order.tolist())]
    return pl.DataFrame(
        {
            "id": ids,
            "text": [texts[i] for i in order],
            "label": [labels[i] for i in order],
            "kind": [row_kinds[i] for i in order],
            "source_id": [None if source_rows[i] is None else ids[position[source_rows[i]]] for i in order],
        }
    )


def write_rows(corpus: pl.DataFrame, path: Path) -> None:
    """Write the corpus as Parquet in the row schema (split 'labeled', origin 'original')."""
    rows = corpus.select("id", "text", "label", split=pl.lit("labeled"), origin=pl.lit("original"))
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(conform_rows(rows.to_arrow()), path)


def measure(corpus_path: str, rejects_path: str) -> dict:
    """Run in a fresh process: read the corpus, clean it, save rejects (id, reason), report cost."""
    started = time.perf_counter()
    table = pq.read_table(corpus_path)
    clean_started = time.perf_counter()
    result = clean(table, CleaningConfig())
    finished = time.perf_counter()
    pq.write_table(result.rejected.select(["id", "reason"]), rejects_path)
    return {
        "seconds": finished - clean_started,
        "seconds_with_read": finished - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "dropped": {k: v for k, v in result.stats.items() if k.startswith("dropped_")},
    }


def measure_in_child(corpus_path: Path, rejects_path: Path) -> dict:
    """`measure` in a spawned process, so the parent's memory does not count."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(measure, str(corpus_path), str(rejects_path)).result()


def score(corpus: pl.DataFrame, rejects: pl.DataFrame) -> tuple[pl.DataFrame, float]:
    """Planted pairs with a `caught` flag, and the false-positive rate on unpaired base documents.

    A pair is caught when the variant or its source was rejected as a duplicate. Only synthetic
    base documents count for false positives: the real abstracts hold genuine duplicates.
    """
    duplicates = rejects.filter(pl.col("reason").is_in(DUPLICATE_REASONS))["id"].implode()
    pairs = corpus.filter(pl.col("source_id").is_not_null()).with_columns(
        caught=pl.col("id").is_in(duplicates) | pl.col("source_id").is_in(duplicates)
    )
    unpaired = corpus.filter((pl.col("kind") == "base") & ~pl.col("id").is_in(pairs["source_id"].implode()))
    return pairs, float(unpaired["id"].is_in(duplicates).mean())


def shingles(key: str, size: int) -> set[tuple[str, ...]]:
    """Word `size`-grams of a key (a shorter key is its own single shingle)."""
    words = key.split(" ")
    return {tuple(words[i : i + size]) for i in range(max(1, len(words) - size + 1))}


def true_jaccard(corpus: pl.DataFrame, pairs: pl.DataFrame, config: CleaningConfig) -> np.ndarray:
    """Exact word n-gram Jaccard of each planted pair, on the keys the cleaning stage builds."""
    text_of = dict(zip(corpus["id"], corpus["text"]))
    variants = repaired_keys(pairs["text"], config).to_list()
    sources = repaired_keys(pl.Series([text_of[i] for i in pairs["source_id"]]), config).to_list()
    similarity = []
    for variant, source in zip(variants, sources):
        a, b = shingles(variant, config.shingle_words), shingles(source, config.shingle_words)
        similarity.append(len(a & b) / len(a | b))
    return np.array(similarity)


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def meets_targets(record: dict) -> bool:
    return (
        record["docs_per_s"] >= TARGETS["docs_per_s"]
        and record["near_dup_recall"] >= TARGETS["near_dup_recall"]
        and record["peak_rss_mb"] < TARGETS["peak_rss_mb"]
    )


def write_markdown(records: list[dict], path: Path) -> None:
    """A Markdown table of every recorded run, under the targets."""
    lines = [
        "# Cleaning stage benchmark",
        "",
        "Written by `benchmarks/bench_clean.py` from `bench_clean.jsonl`. Targets: "
        f">= {TARGETS['docs_per_s']:,} docs/s, near-duplicate recall >= {TARGETS['near_dup_recall']}, "
        "peak RSS < 2 GB.",
        "",
        "| date | commit | docs | seconds | docs/s | peak RSS MB | recall | FP rate | pairs | CPUs | machine | targets met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['date']} | {r['git_commit']} | {r['n_docs']:,} | {r['seconds']:.1f} | {r['docs_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['near_dup_recall']:.4f} | {r['false_positive_rate']:.5f} "
            f"| {r['planted_pairs']:,} | {r['cpu_count']} | {r['machine']} | {'yes' if meets_targets(r) else 'no'} |"
        )
    path.write_text("\n".join(lines) + "\n")


def save(record: dict) -> None:
    """Append `record` to the JSONL log and rewrite the Markdown summary."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    log = RESULTS / "bench_clean.jsonl"
    with log.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    write_markdown(records, RESULTS / "bench_clean.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=100_000, help="synthetic base documents")
    parser.add_argument("--variant-share", type=float, default=0.1, help="share of base documents given a variant")
    args = parser.parse_args()

    config = CleaningConfig()
    corpus = build_corpus(args.n_docs, args.variant_share)
    corpus_path = WORK / f"clean_corpus_{args.n_docs}_{args.variant_share}.parquet"
    rejects_path = WORK / "clean_rejects.parquet"
    write_rows(corpus, corpus_path)
    cost = measure_in_child(corpus_path, rejects_path)
    pairs, false_positive_rate = score(corpus, pl.read_parquet(rejects_path))
    jaccard = true_jaccard(corpus, pairs, config)
    detectable = pairs.filter(pl.Series(jaccard >= config.near_duplicate_threshold))

    record = {
        "bench": "clean",
        "system": "ours",
        "n_docs": corpus.height,
        "seconds": round(cost["seconds"], 3),
        "seconds_with_read": round(cost["seconds_with_read"], 3),
        "docs_per_s": round(corpus.height / cost["seconds"], 1),
        "peak_rss_mb": round(cost["peak_rss_mb"], 1),
        "near_dup_recall": round(float(pairs["caught"].mean()), 4),
        "recall_true_jaccard_above_threshold": round(float(detectable["caught"].mean()), 4),
        "recall_by_kind": {k: round(float(v), 4) for k, v in pairs.group_by("kind").agg(pl.col("caught").mean()).iter_rows()},
        "planted_jaccard": {
            "min": round(float(jaccard.min()), 4),
            "p5": round(float(np.percentile(jaccard, 5)), 4),
            "median": round(float(np.median(jaccard)), 4),
            "share_below_threshold": round(float((jaccard < config.near_duplicate_threshold).mean()), 4),
        },
        "false_positive_rate": round(false_positive_rate, 6),
        "planted_pairs": pairs.height,
        "dropped": cost["dropped"],
        "threshold": config.near_duplicate_threshold,
        "num_perm": config.num_perm,
        "shingle_words": config.shingle_words,
        "cpu_count": os.cpu_count(),
        "machine": platform.platform(),
        "date": date.today().isoformat(),
        "git_commit": git_commit(),
    }
    save(record)
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
