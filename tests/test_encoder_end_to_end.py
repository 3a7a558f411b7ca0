"""`pdap curate` and `pdap experiment` with a user's own sentence encoder: real CLI runs with Prefect, in subprocesses.

The encoder is a tiny 2-layer BERT folder (tests/encoder_folders.py). Each run gets its own embedding cache and ONNX
folder (PDAP_CACHE_DIR, PDAP_ONNX_DIR) and the ONNX backend, so the folder's export on first use is exercised and
nothing lands in the project's caches; MiniLM's installed exports are linked in for the run that also uses MiniLM.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from encoder_folders import build_tiny_encoder
from test_experiment_flow import write_topics_csv

from model_hooks import onnx_export
from model_hooks.encoders import resolve_encoder

pytestmark = pytest.mark.slow

PDAP = [sys.executable, "-m", "flows.cli"]
TINY_FOLDER = "tiny-encoder"
EXPERIMENT = ("experiment", "--data", "topics.csv", "--text-column", "sentence", "--label-column", "topic", "--k", "2",
              "--seeds", "1", "--no-ablations", "--noise", "none", "--results-dir", "results")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("encoders") / TINY_FOLDER)


@pytest.fixture
def workdir(tmp_path) -> Path:
    """A working folder with the topics CSV (3 classes x 14 rows), as test_experiment_flow's `data_file`."""
    write_topics_csv(tmp_path / "topics.csv")
    onnx = tmp_path / "onnx"
    onnx.mkdir()
    for export in onnx_export.ONNX_DIR.glob("all-MiniLM-L6-v2*.onnx"):  # read only: MiniLM's installed exports
        (onnx / export.name).symlink_to(export)
    return tmp_path


def pdap(workdir: Path, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PDAP_CACHE_DIR": str(workdir / "cache"), "PDAP_ONNX_DIR": str(workdir / "onnx"),
           "PDAP_EMBEDDING_BACKEND": "onnx", "COLUMNS": "250"}
    env.pop("PDAP_ENCODER", None)
    return subprocess.run([*PDAP, *map(str, args)], capture_output=True, text=True, timeout=600, cwd=workdir, env=env)


def succeeded(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def vector_bytes(workdir: Path) -> dict[int, int]:
    """Stored vectors by blob size (4 bytes a dimension) in the run's embedding cache."""
    with sqlite3.connect(workdir / "cache" / "embeddings.sqlite") as connection:
        return dict(connection.execute("SELECT length(vector), count(*) FROM vectors GROUP BY 1"))


def write_config(workdir: Path, tiny: Path) -> Path:
    folder = workdir / "configs"
    folder.mkdir()
    path = folder / "run.yaml"
    path.write_text(
        "name: byo\nruns_dir: ../runs\n"
        "ingest:\n  sources:\n    - path: ../topics.csv\n  columns: {text: sentence, label: topic}\n  eval_rule: sha256_even\n"
        f"embedding: {{model: {os.path.relpath(tiny, folder)}}}\n", encoding="utf-8")
    return path


def records(workdir: Path) -> list[dict]:
    return [json.loads(line) for line in (workdir / "results" / "experiment_topics.jsonl").read_text().splitlines()]


def test_curate_embeds_with_the_configured_folder(workdir, tiny):
    succeeded(pdap(workdir, "curate", "--config", write_config(workdir, tiny), "--run-id", "byo"))
    run = workdir / "runs" / "byo"
    tiny_name = resolve_encoder(str(tiny)).name
    summary = json.loads((run / "summary.json").read_text())
    assert summary["encoder"] == {"configured": tiny_name, "used": tiny_name}
    assert pq.read_table(run / "40_validated.parquet").num_rows > 0
    sizes = vector_bytes(workdir)
    assert set(sizes) == {32 * 4} and sizes[128] > 0, f"only the tiny encoder's 32-dim vectors: {sizes}"
    exported = sorted(path.name for path in (workdir / "onnx").iterdir() if not path.is_symlink())
    assert exported == [f"{resolve_encoder(str(tiny)).identity}.onnx"], "the folder is exported on first use, into PDAP_ONNX_DIR"


def test_experiment_with_one_encoder_folder(workdir, tiny):
    succeeded(pdap(workdir, *EXPERIMENT, "--encoder", os.path.relpath(tiny, workdir), "--run-id", "one"))
    tiny_name = resolve_encoder(str(tiny)).name  # the folder's name and 8 digits of its digest
    found = records(workdir)
    assert found and all((record["encoder"], record["encoder_used"]) == (tiny_name, tiny_name) for record in found)
    assert json.loads((workdir / "runs" / "one" / "cells" / "k2-seed0.json").read_text())["encoder"] == {"chosen": tiny_name}
    assert set(vector_bytes(workdir)) == {32 * 4}
    wall = json.loads((workdir / "results" / "experiment_wall_time.jsonl").read_text().splitlines()[-1])
    assert wall["encoder"] == tiny_name and list(wall["embedding"]) == [tiny_name] and wall["embedding"][tiny_name]["texts"] > 0


def test_experiment_with_two_encoders_chooses_one_per_cell(workdir, tiny):
    succeeded(pdap(workdir, *EXPERIMENT, "--encoder", "minilm", "--encoder", tiny, "--run-id", "two"))
    tiny_name = resolve_encoder(str(tiny)).name
    cell = json.loads((workdir / "runs" / "two" / "cells" / "k2-seed0.json").read_text())
    chosen, scores = cell["encoder"]["chosen"], cell["encoder"]["inner_macro_f1"]
    assert chosen in ("minilm", tiny_name) and set(scores) == {"minilm", tiny_name}
    assert all(isinstance(score, float) and 0 <= score <= 1 for score in scores.values()), scores
    assert scores[chosen] == max(scores.values())
    found = records(workdir)
    assert found and all((record["encoder"], record["encoder_used"]) == (f"minilm|{tiny_name}", chosen) for record in found)
    assert set(vector_bytes(workdir)) == {32 * 4, 384 * 4}, "every text is embedded with both encoders"


def test_a_missing_encoder_folder_fails_in_one_line_before_any_run(workdir, tiny):
    result = pdap(workdir, "curate", "--config", write_config(workdir, tiny), "--encoder", "/no/such/folder")
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "/no/such/folder" in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (workdir / "runs").exists()
