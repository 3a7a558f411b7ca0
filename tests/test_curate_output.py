"""What `pdap curate` prints: stage progress (bars on a terminal, plain lines in a pipe) and an honest summary."""

import csv
import io
import json
import logging
import os
import pty
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.curate import STAGES
from flows.progress import StageProgress

ROOT = Path(__file__).resolve().parents[1]
ANSI_OR_CR = re.compile(r"\x1b|\r")


def test_plain_progress_is_one_line_per_stage_in_order_without_control_codes():
    stream = io.StringIO()  # not a terminal
    with StageProgress("curate", ["ingest", "clean"], stream) as progress:
        for name in ("ingest", "clean"):
            step = progress.stage(name)
            step.expect(3)
            step.advance()
            seconds = step.finish(f"{name} done")
            assert seconds > 0
    lines = stream.getvalue().splitlines()
    assert [re.sub(r"[\d.]+ s$", "S", line) for line in lines] == ["curate 1/2 ingest: ingest done, S", "curate 2/2 clean: clean done, S"]
    assert not ANSI_OR_CR.search(stream.getvalue())


def test_terminal_progress_draws_a_live_bar_per_stage(monkeypatch):
    monkeypatch.setenv("TERM", "xterm-256color")
    leader, follower = pty.openpty()
    received = bytearray()

    def drain():
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    logger = logging.getLogger("pdap.test_progress")
    with os.fdopen(follower, "w", encoding="utf-8") as terminal:
        handler = logging.StreamHandler(terminal)  # like Prefect's console handler: straight to the terminal
        logger.addHandler(handler)
        logger.propagate = False
        try:
            with StageProgress("curate", ["ingest", "clean"], terminal) as progress:
                for name in ("ingest", "clean"):
                    step = progress.stage(name)
                    step.expect(2)
                    step.advance()
                    time.sleep(0.3)  # a refresh or two of the live display
                    logger.warning("a log record during %s", name)
                    time.sleep(0.3)
                    step.finish(f"{name} done")
            assert logger.handlers == [handler]  # put back when the bars are gone
        finally:
            logger.removeHandler(handler)
            logger.propagate = True
    reader.join(timeout=5)
    os.close(leader)
    shown = received.decode("utf-8", "replace")
    assert "\x1b[" in shown and "━" in shown  # drawn with control codes: a live bar, not plain lines
    assert "curate 1/2 ingest: ingest done" in shown and "curate 2/2 clean: clean done" in shown
    assert "1/2" in shown and "2/2" in shown  # steps done of the stage's total
    logged = [line for line in shown.splitlines() if "a log record during" in line]
    assert len(logged) == 2 and not any("━" in line for line in logged)  # printed above the bars, not into them


def test_summary_piped_keeps_long_lines_whole(tmp_path):
    run_dir = str(tmp_path / ("run-" + "x" * 120))
    reasons = ", ".join(f"reason_{index}={index}" for index in range(12))
    summary = {
        "embedding_backend": "onnx", "runner": "local", "splits": {"labeled": 3},
        "funnel": [{"stage": "augment", "rows_in": 4, "added": 9, "relabeled": 0, "rows_out": 7, "rejected": 6,
                    "rejected_by_reason": reasons, "seconds": 12.34}],
        "run_dir": run_dir, "output": f"{run_dir}/40_validated.parquet", "data_docs": "d", "report": "r",
    }
    code = f"import json, sys; from flows.cli import print_summary; print_summary(json.loads({json.dumps(json.dumps(summary))}))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True,
                          env={**os.environ, "COLUMNS": "80"})
    lines = done.stdout.splitlines()
    assert any(re.fullmatch(rf"│ augment +│ 4 +│ 9 +│ 7 +│ 6 +│ {reasons} +│ 12\.3 +│", line) for line in lines), done.stdout
    assert f"run folder:  {run_dir}" in lines
    assert any("(embedding backend onnx, runner local)" in line for line in lines)
    assert not ANSI_OR_CR.search(done.stdout)


@pytest.fixture
def slice_config(tmp_path):
    """The first 150 demo abstracts, 4 labeled per class: the rest unlabeled, so adapt pseudo-labels some."""
    with (ROOT / "data/medical_abstracts/medical_tc_test.csv").open(encoding="utf-8", newline="") as source:
        rows = list(csv.reader(source))[:151]
    with (tmp_path / "rows.csv").open("w", encoding="utf-8", newline="") as target:
        csv.writer(target).writerows(rows)
    config = tmp_path / "slice.yaml"
    config.write_text(
        "name: slice\nruns_dir: runs\nlabeled_per_class: 4\n"
        "ingest:\n  sources:\n    - path: rows.csv\n  columns: {text: medical_abstract, label: condition_label}\n"
        "  eval_rule: sha256_even\n"
        "augmentation:\n  max_parents_per_class: 2\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_piped_curate_prints_plain_stage_lines_and_an_honest_summary(slice_config):
    run_id = "piped-" + "x" * 90  # the run folder's lines are longer than 80 columns
    env = {key: value for key, value in os.environ.items() if key != "COLUMNS"}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "flows.cli", "curate", "--config", str(slice_config), "--run-id", run_id],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr[-3000:]
    assert not ANSI_OR_CR.search(done.stdout + done.stderr)

    progress = [re.match(r"curate (\d)/5 (\w+): \d+ rows in, \d+ added, \d+ out, \d+ rejected", line)
                for line in done.stderr.splitlines() if line.startswith("curate ")]
    assert all(progress) and [(int(m[1]), m[2]) for m in progress] == list(enumerate(STAGES, start=1))

    run = slice_config.parent / "runs" / run_id
    summary = json.loads((run / "summary.json").read_text())
    for row in summary["funnel"]:
        assert row["rows_in"] + row["added"] == row["rows_out"] + row["rejected"], row
        assert row["rejected"] == pq.read_table(run / "rejects" / f"{row['stage']}.parquet").num_rows, row
        assert row["seconds"] > 0, row
    assert [row["stage"] for row in summary["funnel"]] == list(STAGES)
    assert sum(row["seconds"] for row in summary["funnel"]) <= wall
    adapt = summary["funnel"][STAGES.index("adapt")]
    assert adapt["relabeled"] > 0 and adapt["added"] == 0  # pseudo-labels relabel rows that were already in

    lines = done.stdout.splitlines()
    assert any(line.strip().endswith(f"(embedding backend {summary['embedding_backend']}, runner local)") for line in lines)
    for row in summary["funnel"]:  # every stage on one whole line, though wider than 80 columns
        cells = [row["stage"], row["rows_in"], row["added"], row["rows_out"], row["rejected"], re.escape(row["rejected_by_reason"]), f"{row['seconds']:.1f}"]
        assert any(re.fullmatch("│ " + " +│ ".join(str(cell) for cell in cells) + " +│", line) for line in lines), (row, done.stdout)
    assert f"run folder:  {run}" in lines
    assert f"adapt: {adapt['relabeled']} unlabeled rows pseudo-labeled (already in rows in, so not added)" in lines
