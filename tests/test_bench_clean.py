"""The cleaning benchmark scores a peer's removed ids like our rejects and shards its corpus."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import polars as pl
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_clean.py"
sys.path.insert(0, str(BENCH.parent))  # the script imports benchmarks/harness.py, as it does when run


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_clean", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def corpus():
    """Three planted pairs (v1-b1, v2-b2, v3-b3), four unpaired base documents and a real abstract."""
    return pl.DataFrame(
        {
            "id": ["b1", "b2", "b3", "v1", "v2", "v3", "u1", "u2", "u3", "u4", "r1"],
            "text": [f"text {i}" for i in range(11)],
            "kind": ["base"] * 3 + ["edit", "shuffle", "shuffle+edit"] + ["base"] * 4 + ["real"],
            "source_id": [None] * 3 + ["b1", "b2", "b3"] + [None] * 5,
        }
    )


def test_a_pair_is_caught_when_the_peer_removed_either_side(bench, corpus):
    pairs, false_positive_rate = bench.score(corpus, bench.removed_as_rejects(["v1", "b2", "u1", "r1"]))
    caught = dict(zip(pairs["id"], pairs["caught"]))
    assert caught == {"v1": True, "v2": True, "v3": False}
    assert false_positive_rate == 0.25  # u1 of u1..u4; the real abstract r1 does not count


def test_no_removed_ids_score_zero(bench, corpus):
    pairs, false_positive_rate = bench.score(corpus, bench.removed_as_rejects([]))
    assert not pairs["caught"].any() and false_positive_rate == 0.0


def test_shards_hold_every_row_once_in_order(bench, corpus, tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "stale.jsonl").write_text("{}\n")
    bench.write_shards(corpus, folder, 2)
    shards = sorted(folder.glob("*.jsonl"))
    rows = [json.loads(line) for shard in shards for line in shard.read_text().splitlines()]
    assert [s.name for s in shards] == ["00000.jsonl", "00001.jsonl"]
    assert [r["id"] for r in rows] == corpus["id"].to_list() and set(rows[0]) == {"id", "text"}


def test_ours_beats_the_peer_only_when_fast_enough_at_equal_recall(bench):
    peer = {"docs_per_s": 400.0, "near_dup_recall": 0.9}
    assert bench.beats_peer(bench.versus_peer({"docs_per_s": 1000.0, "near_dup_recall": 0.9}, peer))
    assert not bench.beats_peer(bench.versus_peer({"docs_per_s": 990.0, "near_dup_recall": 0.99}, peer))
    assert not bench.beats_peer(bench.versus_peer({"docs_per_s": 5000.0, "near_dup_recall": 0.89}, peer))
