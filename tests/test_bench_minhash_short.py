"""The short-text near-duplicate bench measures what it says: error stats, flood counts, its table."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_minhash_short  # noqa: E402


def test_flood_counts_only_non_eval_rows_and_the_table_names_each_part(tmp_path):
    flood = bench_minhash_short.templated_flood(n_rows=1_000, eval_every=10)
    assert flood["eval_rows"] == 100 and 0 <= flood["flagged"] <= 900
    record = {"date": "2026-12-02", "git_commit": "abc", "part": "templated_flood", "figures": flood}
    bench_minhash_short.write_markdown([record], tmp_path / "t.md")
    assert f"flagged {flood['flagged']}" in (tmp_path / "t.md").read_text()


def test_bigram_jaccard_matches_a_hand_count():
    assert bench_minhash_short._bigram_jaccard("type genus of the a", "type genus of the b") == 3 / 5
