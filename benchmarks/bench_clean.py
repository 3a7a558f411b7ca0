"""Benchmark of the cleaning stage against datatrove's MinHash dedup: speed, memory, recall.

Builds a seeded corpus from the demo abstracts (synthetic base documents of sampled sentences,
the real abstracts, and planted near-duplicate variants of some base documents), cleans it with
the default settings in a fresh process, then deduplicates the same corpus with datatrove's
default MinHash pipeline on as many processes as there are cores (in .venv-datatrove, see
peers/install_datatrove.sh). Both are scored alike; one record per system, sharing a `run_id`,
is appended to results/bench_clean.jsonl, and results/bench_clean.md and bench_clean.png are
rewritten.

    python benchmarks/bench_clean.py [--n-docs 100000] [--variant-share 0.1] [--skip-peer]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
from datetime import datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow.parquet as pq

import harness
from harness import RESULTS, ROOT
from schemas.rows import content_id, conform_rows
from schemas.text_keys import repaired_keys
from stages.cleaning import CleaningConfig, clean

ABSTRACTS = ROOT / "data" / "medical_abstracts" / "medical_tc_test.csv"
WORK = ROOT / "benchmarks" / "work"
SENTENCE_END = re.compile(r"(?<=\.) ")
MIN_SENTENCE_WORDS = 4
SENTENCES_PER_DOC = (8, 10)
EDIT_RATE = (0.02, 0.05)
VARIANT_KINDS = ("shuffle", "edit", "shuffle+edit")
DUPLICATE_REASONS = ("exact_duplicate", "near_duplicate")
TARGETS = {"docs_per_s": 2000, "near_dup_recall": 0.95, "peak_rss_mb": 2048}
PEER_SPEEDUP_TARGET = 2.5
PEER_PYTHON = ROOT / ".venv-datatrove" / "bin" / "python"
PEER_SCRIPT = ROOT / "benchmarks" / "peers" / "datatrove_minhash.py"
PEER_INSTALL = "bash benchmarks/peers/install_datatrove.sh"


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
    with harness.timed() as with_read:
        table = pq.read_table(corpus_path)
        with harness.timed() as cleaning:
            result = clean(table, CleaningConfig())
    pq.write_table(result.rejected.select(["id", "reason"]), rejects_path)
    return {
        "seconds": cleaning.seconds,
        "seconds_with_read": with_read.seconds,
        "peak_rss_mb": harness.peak_rss_mb(),
        "dropped": {k: v for k, v in result.stats.items() if k.startswith("dropped_")},
    }


def peer_python() -> Path:
    """The interpreter of datatrove's venv; stops with the install command when it is missing."""
    if not PEER_PYTHON.exists():
        raise SystemExit(f"{PEER_PYTHON.parents[1].name} is missing; install datatrove with: {PEER_INSTALL}")
    return PEER_PYTHON


def write_shards(corpus: pl.DataFrame, folder: Path, n_shards: int) -> None:
    """Replace `folder` with `n_shards` JSONL files of consecutive (id, text) rows."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    size = -(-corpus.height // n_shards)
    for shard in range(n_shards):
        corpus.select("id", "text").slice(shard * size, size).write_ndjson(folder / f"{shard:05d}.jsonl")


def measure_peer(corpus: pl.DataFrame, python: Path, workers: int) -> dict:
    """datatrove's MinHash dedup of the corpus, one shard per worker: seconds, peak RSS, removed ids."""
    folder = WORK / "datatrove"
    write_shards(corpus, folder / "corpus", workers)
    result, log = folder / "result.json", folder / "run.log"
    command = [python, PEER_SCRIPT, folder / "corpus", folder / "work", "--out", result, "--workers", str(workers)]
    with log.open("w") as handle:
        done = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    if done.returncode != 0:
        raise SystemExit(f"datatrove's MinHash dedup failed with exit code {done.returncode}; its log: {log}")
    return json.loads(result.read_text())


def removed_as_rejects(ids: list[str]) -> pl.DataFrame:
    """Ids a peer removed as duplicates, as rejects (id, reason) that `score` reads."""
    return pl.DataFrame({"id": ids, "reason": ["near_duplicate"] * len(ids)}, schema={"id": pl.String, "reason": pl.String})


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


def recall_fields(pairs: pl.DataFrame, false_positive_rate: float) -> dict:
    """The scores every system's record carries."""
    return {
        "near_dup_recall": round(float(pairs["caught"].mean()), 4),
        "recall_by_kind": {k: round(float(v), 4) for k, v in pairs.group_by("kind").agg(pl.col("caught").mean()).iter_rows()},
        "false_positive_rate": round(false_positive_rate, 6),
        "planted_pairs": pairs.height,
    }


def ours_record(corpus: pl.DataFrame, cost: dict, rejects: pl.DataFrame, config: CleaningConfig) -> dict:
    """The record of our cleaning stage, with recall on the pairs that are truly above our threshold."""
    pairs, false_positive_rate = score(corpus, rejects)
    jaccard = true_jaccard(corpus, pairs, config)
    detectable = pairs.filter(pl.Series(jaccard >= config.near_duplicate_threshold))
    return {
        "bench": "clean",
        "system": "ours",
        "n_docs": corpus.height,
        "seconds": round(cost["seconds"], 3),
        "seconds_with_read": round(cost["seconds_with_read"], 3),
        "docs_per_s": round(corpus.height / cost["seconds"], 1),
        "peak_rss_mb": round(cost["peak_rss_mb"], 1),
        **recall_fields(pairs, false_positive_rate),
        "recall_true_jaccard_above_threshold": round(float(detectable["caught"].mean()), 4),
        "planted_jaccard": {
            "min": round(float(jaccard.min()), 4),
            "p5": round(float(np.percentile(jaccard, 5)), 4),
            "median": round(float(np.median(jaccard)), 4),
            "share_below_threshold": round(float((jaccard < config.near_duplicate_threshold).mean()), 4),
        },
        "dropped": cost["dropped"],
        "threshold": config.near_duplicate_threshold,
        "num_perm": config.num_perm,
        "shingle_words": config.shingle_words,
    }


def peer_record(corpus: pl.DataFrame, peer: dict) -> dict:
    """The record of datatrove's MinHash dedup, scored like ours."""
    pairs, false_positive_rate = score(corpus, removed_as_rejects(peer["removed_ids"]))
    return {
        "bench": "clean",
        "system": "datatrove",
        "n_docs": corpus.height,
        "seconds": round(peer["seconds"], 3),
        "docs_per_s": round(corpus.height / peer["seconds"], 1),
        "peak_rss_mb": round(peer["peak_rss_mb"], 1),
        "peak_rss_scope": "process tree (sum)",
        **recall_fields(pairs, false_positive_rate),
        "removed": len(peer["removed_ids"]),
        "datatrove_version": peer["datatrove_version"],
        "config": peer["config"],
        "tasks": peer["tasks"],
        "workers": peer["workers"],
    }


def versus_peer(ours: dict, peer: dict) -> dict:
    """Our throughput ratio and recall difference against the peer's."""
    return {
        "docs_per_s_ratio_vs_datatrove": round(ours["docs_per_s"] / peer["docs_per_s"], 2),
        "recall_minus_datatrove": round(ours["near_dup_recall"] - peer["near_dup_recall"], 4),
    }


def meets_targets(record: dict) -> bool:
    return (
        record["docs_per_s"] >= TARGETS["docs_per_s"]
        and record["near_dup_recall"] >= TARGETS["near_dup_recall"]
        and record["peak_rss_mb"] < TARGETS["peak_rss_mb"]
    )


def beats_peer(ours: dict) -> bool:
    """At least PEER_SPEEDUP_TARGET times datatrove's docs/s at equal or better recall."""
    return ours["docs_per_s_ratio_vs_datatrove"] >= PEER_SPEEDUP_TARGET and ours["recall_minus_datatrove"] >= 0


def side_by_side_lines(records: list[dict]) -> list[str]:
    """A table of every run measured against datatrove: our row with the ratio, then datatrove's."""
    peers = {r["run_id"]: r for r in records if r["system"] == "datatrove"}
    lines = [
        "## Side by side with datatrove",
        "",
        f"Target: ours >= {PEER_SPEEDUP_TARGET}x datatrove's docs/s at equal or better near-duplicate recall. "
        "Same corpus and cores in one run; datatrove runs its four MinHash stages with the default "
        "`MinhashConfig`, one process per core. Peak RSS: ours is its one process, datatrove's is summed "
        "over its process tree.",
        "",
        "| date | commit | system | docs | seconds | docs/s | peak RSS MB | recall | FP rate | docs/s ratio | recall diff | target met |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for ours in (r for r in records if r["system"] == "ours" and r.get("run_id") in peers):
        peer = peers[ours["run_id"]]
        lines.append(
            system_row(ours)
            + f" {ours['docs_per_s_ratio_vs_datatrove']:.2f}x | {ours['recall_minus_datatrove']:+.4f} "
            f"| {'yes' if beats_peer(ours) else 'no'} |"
        )
        lines.append(system_row(peer) + " | | |")
    return lines


def system_row(r: dict) -> str:
    """The opening cells of one system's row in the side-by-side table."""
    return (
        f"| {r['date']} | {r['git_commit']} | {r['system']} | {r['n_docs']:,} | {r['seconds']:.1f} "
        f"| {r['docs_per_s']:,.0f} | {r['peak_rss_mb']:,.0f} | {r['near_dup_recall']:.4f} "
        f"| {r['false_positive_rate']:.5f} |"
    )


def history_lines(records: list[dict]) -> list[str]:
    """A table of every recorded run of ours, under the absolute targets."""
    lines = [
        "## Every run of ours",
        "",
        f"Targets: >= {TARGETS['docs_per_s']:,} docs/s, near-duplicate recall >= {TARGETS['near_dup_recall']}, "
        "peak RSS < 2 GB.",
        "",
        "| date | commit | docs | seconds | docs/s | peak RSS MB | recall | FP rate | pairs | CPUs | machine | targets met |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in (r for r in records if r["system"] == "ours"):
        lines.append(
            f"| {r['date']} | {r['git_commit']} | {r['n_docs']:,} | {r['seconds']:.1f} | {r['docs_per_s']:,.0f} "
            f"| {r['peak_rss_mb']:,.0f} | {r['near_dup_recall']:.4f} | {r['false_positive_rate']:.5f} "
            f"| {r['planted_pairs']:,} | {r['cpu_count']} | {r['machine']} | {'yes' if meets_targets(r) else 'no'} |"
        )
    return lines


def write_markdown(records: list[dict], path: Path) -> None:
    """The side-by-side table with datatrove, then the history of our runs."""
    lines = ["# Cleaning stage benchmark", "", "Written by `benchmarks/bench_clean.py` from `bench_clean.jsonl`.", ""]
    lines += side_by_side_lines(records) + [""] + history_lines(records)
    harness.write_lines(path, lines)


def write_plot(ours: dict, peer: dict, path: Path) -> None:
    """Bar charts of docs/s and near-duplicate recall per system for one run."""
    figure, axes = harness.pyplot().subplots(1, 2, figsize=(8, 3.6))
    for axis, key, title, fmt in zip(axes, ("docs_per_s", "near_dup_recall"), ("docs/s", "near-duplicate recall"), ("{:,.0f}", "{:.4f}")):
        bars = axis.bar(["ours", "datatrove"], [ours[key], peer[key]], color=["tab:blue", "tab:gray"])
        axis.bar_label(bars, labels=[fmt.format(ours[key]), fmt.format(peer[key])])
        axis.set_title(title)
        axis.margins(y=0.15)
    figure.suptitle(
        f"{ours['n_docs']:,} docs on {ours['cpu_count']} CPUs, run {ours['run_id']}: "
        f"ours {ours['docs_per_s_ratio_vs_datatrove']:.1f}x datatrove's docs/s"
    )
    figure.tight_layout()
    harness.save_figure(figure, path, dpi=120)


def save(records: list[dict]) -> None:
    """Append `records` to the JSONL log and rewrite the Markdown summary from the whole log."""
    write_markdown(harness.write_records(RESULTS / "bench_clean.jsonl", records), RESULTS / "bench_clean.md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=100_000, help="synthetic base documents")
    parser.add_argument("--variant-share", type=float, default=0.1, help="share of base documents given a variant")
    parser.add_argument("--skip-peer", action="store_true", help="measure ours only (no datatrove run)")
    args = parser.parse_args()
    python = None if args.skip_peer else peer_python()

    config = CleaningConfig()
    shared = harness.provenance(datetime.now().strftime("%Y%m%dT%H%M%S"))
    corpus = build_corpus(args.n_docs, args.variant_share)
    corpus_path = WORK / f"clean_corpus_{args.n_docs}_{args.variant_share}.parquet"
    rejects_path = WORK / "clean_rejects.parquet"
    write_rows(corpus, corpus_path)
    cost = harness.in_fresh_process(measure, str(corpus_path), str(rejects_path))
    ours = {**ours_record(corpus, cost, pl.read_parquet(rejects_path), config), **shared}
    records = [ours]
    if python is not None:
        peer = {**peer_record(corpus, measure_peer(corpus, python, os.cpu_count())), **shared}
        ours.update(versus_peer(ours, peer))
        records.append(peer)
        write_plot(ours, peer, RESULTS / "bench_clean.png")
    save(records)
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
