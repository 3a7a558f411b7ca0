"""Incremental refresh: only new files, no-op when nothing is new, crash safety, one run at a time,
and scheduled runs served by a real local Prefect server."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.refresh import refresh_flow
from flows.refresh_state import RefreshState
from flows.config import RunConfig

pytestmark = pytest.mark.slow
PDAP = [sys.executable, "-m", "flows.cli"]

TOPICS = {
    "cardio": ["heart failure", "myocardial infarction", "coronary stenting", "atrial fibrillation", "hypertension"],
    "neuro": ["migraine", "epileptic seizures", "stroke rehabilitation", "parkinson disease", "multiple sclerosis"],
}


def write_csv(path: Path, rows: list[tuple[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["abstract", "condition"])
        writer.writerows(rows)


def rows_for(batch: int, n: int = 6) -> list[tuple[str, str]]:
    rows = []
    for i in range(n):
        for label, terms in TOPICS.items():
            term = terms[(i + batch) % len(terms)]
            rows.append((f"Batch {batch} study {i}: patients with {term} were followed for {i + batch + 2} years in clinic {label} {i}.", label))
    return rows


def make_config(root: Path, curate: bool = False, extra: str = "") -> Path:
    (root / "inbox").mkdir(exist_ok=True)
    config = root / "refresh.yaml"
    config.write_text(
        "name: refresh\nruns_dir: runs\n"
        "ingest:\n  columns: {text: abstract, label: condition}\n  labels: [cardio, neuro]\n"
        f"refresh:\n  input_dir: inbox\n  curate: {str(curate).lower()}\n{extra}",
        encoding="utf-8",
    )
    return config


def accounted(state: Path, inbox: Path) -> tuple[int, int, int]:
    """(rows in the current input files, clean rows, rejected rows) of the current generation."""
    number = int((state / "CURRENT").read_text())
    generation = state / "generations" / str(number)
    inputs = sum(sum(1 for _ in csv.reader(path.open(encoding="utf-8"))) - 1 for path in inbox.glob("*.csv"))
    return inputs, pq.read_table(generation / "clean.parquet").num_rows, pq.read_table(generation / "rejects.parquet").num_rows


def test_refresh_processes_only_new_or_changed_files_and_is_a_no_op_without_them(tmp_path):
    config = RunConfig.load(make_config(tmp_path))
    inbox, state = tmp_path / "inbox", tmp_path / "runs" / "refresh-refresh"
    write_csv(inbox / "a.csv", rows_for(0))
    write_csv(inbox / "b.csv", rows_for(1) + [rows_for(0)[0]])  # one exact duplicate of a.csv
    first = refresh_flow(config)
    assert first["status"] == "refreshed" and first["new_or_changed"] == ["a.csv", "b.csv"] and first["generation"] == 1
    inputs, clean_rows, rejected = accounted(state, inbox)
    assert inputs == clean_rows + rejected and rejected == 1

    second = refresh_flow(config)
    assert second["status"] == "unchanged" and second["generation"] == 1 and second["seconds"] < 5
    assert sorted(p.name for p in (state / "generations").iterdir()) == ["1"]

    write_csv(inbox / "c.csv", rows_for(2) + [rows_for(1)[3]])  # new file, one duplicate of an old row
    third = refresh_flow(config)
    assert third["new_or_changed"] == ["c.csv"] and third["generation"] == 2
    generation = pq.read_table(state / "generations" / "2" / "rejects.parquet").to_pylist()
    duplicate = [r for r in generation if r["reason"] == "exact_duplicate" and r["text"] == rows_for(1)[3][0]]
    sources = dict(zip(*pq.read_table(state / "generations" / "2" / "sources.parquet").to_pydict().values()))
    assert len(duplicate) == 1 and sources[duplicate[0]["id"]] == "c.csv"  # the old row stays, the new copy goes
    assert accounted(state, inbox)[0] == sum(accounted(state, inbox)[1:])

    write_csv(inbox / "a.csv", rows_for(3, n=2))  # changed: its old rows are withdrawn
    (inbox / "c.csv").unlink()  # removed
    fourth = refresh_flow(config)
    assert fourth["new_or_changed"] == ["a.csv"] and fourth["removed"] == ["c.csv"]
    clean = pq.read_table(state / "generations" / "3" / "clean.parquet").column("text").to_pylist()
    assert not any(text.startswith("Batch 2 ") for text in clean) and any(t.startswith("Batch 3 ") for t in clean)
    # the b.csv copy of an old a.csv row was rejected as a duplicate; with a.csv changed it is clean again
    assert [text for text in clean if text.startswith("Batch 0 ")] == [rows_for(0)[0][0]]
    inputs, clean_rows, rejected = accounted(state, inbox)
    assert inputs == clean_rows + rejected == len(rows_for(1)) + 1 + len(rows_for(3, n=2))


def test_a_refresh_killed_mid_run_loses_nothing_and_the_next_one_completes(tmp_path):
    config_path = make_config(tmp_path, curate=True)
    inbox, state = tmp_path / "inbox", tmp_path / "runs" / "refresh-refresh"
    write_csv(inbox / "a.csv", rows_for(0, n=10))
    run = subprocess.Popen([*PDAP, "refresh", "--config", str(config_path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while not (state / "generations" / "1" / "run" / "10_clean.parquet").exists():  # inside the curate flow
        assert run.poll() is None and time.monotonic() < deadline, "the refresh ended before it could be killed"
        time.sleep(0.2)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (state / "CURRENT").exists()  # the killed generation was never published

    done = subprocess.run([*PDAP, "refresh", "--config", str(config_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (state / "CURRENT").read_text().strip() == "1"
    assert sorted(p.name for p in (state / "generations").iterdir()) == ["1"]
    inputs, clean_rows, rejected = accounted(state, inbox)
    assert inputs == clean_rows + rejected == 20
    clean_ids = pq.read_table(state / "generations" / "1" / "clean.parquet").column("id").to_pylist()
    assert len(clean_ids) == len(set(clean_ids))
    assert (state / "generations" / "1" / "run" / "40_validated.parquet").exists()
    assert (state / "generations" / "1" / "run" / "report.html").exists()


def test_a_second_refresh_at_the_same_time_exits_with_a_clear_message(tmp_path):
    config_path = make_config(tmp_path)
    write_csv(tmp_path / "inbox" / "a.csv", rows_for(0))
    with RefreshState(tmp_path / "runs" / "refresh-refresh").lock():
        busy = subprocess.run([*PDAP, "refresh", "--config", str(config_path)], capture_output=True, text=True, timeout=300)
    assert busy.returncode == 3
    assert "another refresh" in busy.stderr and f"pid {os.getpid()}" in busy.stderr and "Traceback" not in busy.stdout + busy.stderr
    assert not (tmp_path / "runs" / "refresh-refresh" / "CURRENT").exists()
    after = subprocess.run([*PDAP, "refresh", "--config", str(config_path)], capture_output=True, text=True, timeout=300)
    assert after.returncode == 0, after.stdout + after.stderr


def _completed_runs(api_url: str) -> list[dict]:
    body = json.dumps({"flow_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}).encode()
    request = urllib.request.Request(f"{api_url}/flow_runs/filter", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_pdap_serve_runs_the_refresh_on_its_schedule_against_a_local_server(tmp_path):
    config_path = make_config(tmp_path, extra="schedule:\n  interval_seconds: 5\n  flows: [refresh]\n")
    write_csv(tmp_path / "inbox" / "a.csv", rows_for(0))
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    serving = subprocess.Popen([*PDAP, "serve", "--config", str(config_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env={**env, "COLUMNS": "200"}, start_new_session=True)
    try:
        api_url = None
        for line in serving.stdout:
            if line.startswith("Prefect API:"):
                api_url = line.split()[-1]
                break
        assert api_url and api_url.startswith("http://127.0.0.1:")
        deadline = time.monotonic() + 240
        runs = []
        while time.monotonic() < deadline and not runs:
            time.sleep(3)
            runs = [r for r in _completed_runs(api_url) if r.get("deployment_id")]
        assert runs, "no scheduled run completed"
        assert (tmp_path / "runs" / "refresh-refresh" / "CURRENT").read_text().strip() == "1"
    finally:
        serving.send_signal(signal.SIGTERM)
        serving.wait(timeout=60)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{api_url}/health", timeout=2)  # the server stopped with pdap serve
