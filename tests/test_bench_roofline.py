"""The fp32 floor counts the bundled model's real matrix products, each distinct text once, at a measured rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_roofline  # noqa: E402


def test_flops_equal_what_torch_counts_in_a_forward_pass_of_the_bundled_model():
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from transformers import AutoModel

    from model_hooks.locations import model_path

    # eager attention, so the attention products are matrix products the counter sees; no pooler (not embedded)
    model = AutoModel.from_pretrained(str(model_path()), attn_implementation="eager", add_pooling_layer=False)
    ids = torch.randint(1000, 2000, (1, 200), generator=torch.Generator().manual_seed(0))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert bench_roofline.encoder_flops(np.array([200]), **bench_roofline.model_shape())[0] == counter.get_total_flops()


def test_each_distinct_truncated_sequence_counts_once():
    long_text = "pain " * 400
    pieces = bench_roofline.distinct_word_pieces(["the heart", "the heart", long_text, long_text + " and more words"])
    # [CLS] the heart [SEP]; the long texts share their first 256 pieces, so one sequence of 256
    assert sorted(pieces.tolist()) == [4, 256]


def test_cheapest_children_are_the_shortest_and_repeated_sequences_are_free():
    long_parent = "pain " * 400
    children_of = {
        "the heart": ["one two three four five", "one", "one two", "the heart"],  # the last is the parent again: free
        long_parent: [long_parent + " more", "alpha beta gamma"],  # the first truncates to the parent's pieces: free
        "the lung": ["alpha beta gamma", "delta"],  # "alpha beta gamma" is also another parent's child: free
    }
    pieces = bench_roofline.cheapest_children_pieces(children_of, per_parent=2)
    # per parent the 2 cheapest: (free, [CLS] one [SEP]), (free, free), (free, [CLS] delta [SEP])
    assert pieces.tolist() == [3, 3]


def test_matmul_rate_is_the_fastest_of_every_library_shape_and_threading(monkeypatch):
    monkeypatch.setattr(bench_roofline, "MATMUL_SHAPES", ((64, 64, 64), (128, 96, 32)))
    rate = bench_roofline.fp32_matmul_rate(seconds=0.05, repeats=1)
    assert rate["gflops"] == max(rate["gflops_by_shape"].values()) > 0
    assert rate["gflops_by_shape"][rate["best_shape"]] == rate["gflops"]
    assert sorted(rate["gflops_by_shape"]) == sorted(
        f"{library} {shape} {mode}" for library in ("torch", "numpy") for shape in ("64x64x64", "128x96x32")
        for mode in ("one call on every core", "one call per core"))


def test_blas_thread_limits_apply_inside_the_block_and_are_restored_after():
    import torch
    from threadpoolctl import threadpool_info

    def blas_threads():
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = (torch.get_num_threads(), blas_threads())
    with bench_roofline._blas_threads("torch", 1), bench_roofline._blas_threads("numpy", 1):
        assert torch.get_num_threads() == 1
        assert set(blas_threads()) == {1}
    assert (torch.get_num_threads(), blas_threads()) == before


def _augment_run(run_id: str, cpu: str, ours_seconds: float, loop_seconds: float, parents: int = 1) -> list[dict]:
    ours = {"system": "ours", "run_id": run_id, "cpu": cpu, "seconds": ours_seconds, "similarity_gate_seconds": ours_seconds / 2,
            "embedding_backend": "onnx", "parents": parents, "per_example": 1, "generated": 3,
            "rejected_by_reason": {"protected_term_lost": 1, "duplicate_candidate": 1, "too_dissimilar": 0, "near_copy": 0}}
    return [ours, {"system": "nlpaug_loop", "run_id": run_id, "cpu": cpu, "seconds": loop_seconds}]


def test_the_gate_is_compared_only_with_a_run_of_the_same_work_on_the_same_cpu(tmp_path, monkeypatch):
    amd, xeon = "AMD EPYC (avx2 fma)", "Xeon (avx2 amx_bf16)"
    records = _augment_run("a", amd, 150.0, 200.0) + _augment_run("b", xeon, 100.0, 190.0) + _augment_run("c", amd, 90.0, 95.0, parents=2)
    (tmp_path / "bench_augment.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(bench_roofline, "RESULTS", tmp_path)
    assert bench_roofline.latest_augment_run(amd, parents=1, children_at_gate=1)["ours"]["run_id"] == "a"
    assert bench_roofline.latest_augment_run(amd, parents=2, children_at_gate=1)["ours"]["run_id"] == "c"
    assert bench_roofline.latest_augment_run(amd, parents=1, children_at_gate=2) == {}
    assert bench_roofline.latest_augment_run("Other CPU", parents=1, children_at_gate=1) == {}
    assert bench_roofline.latest_augment_run(None, parents=1, children_at_gate=1) == {}

    shape = {"layers": 1, "hidden": 4, "feed_forward": 8}
    rate = {"gflops": 1e-6}  # 1,000 FLOP/s
    record = bench_roofline.gate_record({"heart": ["heart attack"]}, shape, rate, amd)
    flops = bench_roofline.encoder_flops(np.array([3, 4]), **shape).sum()  # [CLS] heart [SEP], [CLS] heart attack [SEP]
    assert record["floor_seconds"] == record["floor_seconds_at_target"] == round(flops / 1000, 1)
    assert record["max_ratio_vs_nlpaug_loop"] == round(200.0 / (flops / 1000), 2)
    assert record["gflops_needed_for_target"] == round(flops / 1e9 / 120.0, 1)


def test_markdown_has_a_row_per_record(tmp_path):
    common = {"date": "2026-12-02", "git_commit": "abc1234", "cpu": "AMD EPYC (avx2 fma)", "fastest_fp32_gflops": 150.0,
              "word_pieces": 1000, "gflop": 12.0, "floor_seconds": 2.0}
    embed = common | {"workload": "embed", "n_texts": 10, "measured_seconds": {"sentence_transformers": 3.0, "onnx": 2.5},
                      "max_ratio_vs_sentence_transformers": 1.5, "target_ratio": 2.0, "target_reachable_at_measured_rate": False}
    gate = common | {"workload": "augment_gate", "parents": 5, "children_at_gate": 40, "children_per_parent_at_target": 8,
                     "floor_seconds_at_target": 1.8, "gflops_needed_for_target": 2.3, "target_seconds": 120.0,
                     "target_reachable_at_measured_rate": True}
    path = tmp_path / "roofline.md"
    bench_roofline.write_markdown([embed, gate], path)
    rows = [line for line in path.read_text().splitlines() if line.startswith("| 2026-12-02")]
    assert len(rows) == 2
    assert "1.50x" in rows[0] and rows[0].endswith("| no |")
    assert "5 + 40" in rows[1] and "floor 1.8 s" in rows[1] and rows[1].endswith("| yes |")
