"""The benchmarks' shared harness: records appended or merged by key, atomic writes, provenance, timing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import harness  # noqa: E402
from schemas.files import atomic_write_bytes  # noqa: E402


def test_appending_keeps_the_earlier_lines_byte_for_byte_and_returns_every_record(tmp_path):
    log = tmp_path / "bench.jsonl"
    log.write_text('{"system": "ours", "seconds": 2.0}')  # an older writer: unsorted keys, no final newline
    every = harness.write_records(log, [{"system": "peer", "seconds": 3.5}, {"system": "ours", "seconds": 1.5}])
    assert every == [{"system": "ours", "seconds": 2.0}, {"system": "peer", "seconds": 3.5}, {"system": "ours", "seconds": 1.5}]
    assert log.read_text().splitlines() == ['{"system": "ours", "seconds": 2.0}', '{"seconds": 3.5, "system": "peer"}',
                                            '{"seconds": 1.5, "system": "ours"}']
    assert harness.read_records(log) == every


def test_records_merge_by_key_without_duplicates_and_sorted_by_it(tmp_path):
    log = tmp_path / "oracle.jsonl"
    harness.write_records(log, [{"k": 100, "seed": 1, "macro_f1": 0.5}, {"k": 10, "seed": 0, "macro_f1": 0.3}], key=("k", "seed"))
    merged = harness.write_records(log, [{"k": 100, "seed": 1, "macro_f1": 0.6}, {"k": 100, "seed": 0, "macro_f1": 0.7}], key=("k", "seed"))
    assert merged == [{"k": 10, "seed": 0, "macro_f1": 0.3}, {"k": 100, "seed": 0, "macro_f1": 0.7}, {"k": 100, "seed": 1, "macro_f1": 0.6}]
    assert harness.read_records(log) == merged


def test_rewriting_replaces_every_record(tmp_path):
    log = tmp_path / "sweep.jsonl"
    harness.write_records(log, [{"a": 1}, {"a": 2}])
    harness.rewrite_records(log, [{"a": 3}])
    assert harness.read_records(log) == [{"a": 3}]
    assert harness.read_records(tmp_path / "missing.jsonl") == []


def test_writes_leave_only_their_targets_and_a_failed_write_keeps_the_old_file(tmp_path):
    folder = tmp_path / "results"
    harness.write_records(folder / "a.jsonl", [{"a": 1}])
    harness.write_records(folder / "a.jsonl", [{"a": 2}], key=("a",))
    harness.write_lines(folder / "a.md", ["| a |", "|---|"])
    plt = harness.pyplot()
    figure, axis = plt.subplots()
    axis.plot([1, 2], [3, 4])
    harness.save_figure(figure, folder / "a.png")
    assert sorted(path.name for path in folder.iterdir()) == ["a.jsonl", "a.md", "a.png"]
    assert (folder / "a.md").read_text() == "| a |\n|---|\n"
    assert (folder / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.get_fignums()  # the figure was closed

    with pytest.raises(TypeError):
        atomic_write_bytes(folder / "a.md", "text, not bytes")  # fails while writing the temporary file
    assert (folder / "a.md").read_text() == "| a |\n|---|\n"
    assert sorted(path.name for path in folder.iterdir()) == ["a.jsonl", "a.md", "a.png"]


def test_provenance_names_the_run_the_machine_and_the_commit():
    fields = harness.provenance("run-1")
    assert set(fields) == {"run_id", "date", "machine", "cpu", "cpu_count", "load_average_1m", "git_commit", "git_dirty"}
    assert fields["run_id"] == "run-1" and fields["cpu_count"] == os.cpu_count()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=harness.ROOT, capture_output=True, text=True).stdout.strip()
    assert fields["git_commit"] == head and isinstance(fields["git_dirty"], bool)
    first, second = harness.provenance()["run_id"], harness.provenance()["run_id"]
    assert first != second and re.fullmatch(r"[0-9a-f]{12}", first)


def test_timed_measures_the_block_even_when_it_raises():
    with harness.timed() as timing:
        time.sleep(0.05)
    assert 0.05 <= timing.seconds < 5
    with pytest.raises(RuntimeError), harness.timed() as failed:
        time.sleep(0.02)
        raise RuntimeError("stop")
    assert 0.02 <= failed.seconds < 5


def test_a_fresh_process_is_another_process_and_peak_memory_is_in_mib():
    import psutil

    assert harness.in_fresh_process(os.getpid) != os.getpid()
    assert harness.in_fresh_process(abs, -3) == 3
    current = psutil.Process().memory_info().rss / 2**20
    assert 0.9 * current <= harness.peak_rss_mb() < 100 * current  # the kernel counts the peak a little apart
