"""Server and run-folder lifecycle: a SIGKILLed run is cleaned up by the next one, run ids are not reused."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest
from row_fixtures import write_tiny_run

from flows import servers
from flows.run_folder import RunFolder, RunIdInUse, check_run_id, open_run
from schemas.files import atomic_write_json

PDAP = [sys.executable, "-m", "flows.cli"]
ROWS = [
    ("Patients with chronic heart failure were randomised to exercise training or usual care.", "cardio"),
    ("Endoscopic findings in ulcerative colitis were compared with biopsies of the same segments.", "digestive"),
    ("Migraine frequency fell after prophylactic treatment with a beta blocker in adults.", "neuro"),
    ("Epileptic seizures in children were controlled with a new anticonvulsant drug.", "neuro"),
]


@pytest.fixture
def stopped_process():
    """The identity of a process that has ended (a dead run's owner)."""
    process = subprocess.Popen(["sleep", "60"])
    ident = servers.identity(process.pid)
    process.kill()
    process.wait()
    return ident


@pytest.fixture
def live_process():
    process = subprocess.Popen(["sleep", "60"])
    yield servers.identity(process.pid)
    process.kill()
    process.wait()


def _running_folder(root, owner, server=None) -> RunFolder:
    folder = RunFolder(root)
    (folder.shards_dir).mkdir(parents=True)
    (folder.shards_dir / "raw-00000.parquet").write_bytes(b"partial")
    atomic_write_json(folder.status_path, {"state": "running", "owner": owner, "server": server})
    return folder


def test_the_next_run_marks_a_dead_runs_folder_failed_and_replaces_it_only_on_reuse(tmp_path, stopped_process):
    dead = _running_folder(tmp_path / "runs" / "dead", stopped_process)
    other = open_run(tmp_path / "runs", "other")
    assert other.status()["state"] == "running" and other.status()["owner"]["pid"] == os.getpid()
    status = dead.status()
    assert (status["state"], status["reason"]) == ("failed", "interrupted") and not dead.shards_dir.exists()
    check_run_id(tmp_path / "runs", "dead")  # a failed run's folder may be replaced
    replaced = open_run(tmp_path / "runs", "dead")
    assert replaced.status()["state"] == "running" and sorted(p.name for p in replaced.root.iterdir()) == ["status.json"]


def test_a_live_or_completed_run_is_never_replaced(tmp_path, live_process):
    live = _running_folder(tmp_path / "runs" / "live", live_process)
    with pytest.raises(RunIdInUse, match=f"run in progress \\(pid {live_process['pid']}\\)"):
        open_run(tmp_path / "runs", "live")
    assert live.status()["state"] == "running" and live.shards_dir.exists()  # untouched

    done = open_run(tmp_path / "runs", "done")
    (done.root / "summary.json").write_text("{}", encoding="utf-8")
    done.finish()
    with pytest.raises(RunIdInUse, match="already holds a run; choose another --run-id"):
        open_run(tmp_path / "runs", "done")
    assert (done.root / "summary.json").exists() and done.status()["state"] == "completed"
    assert open_run(tmp_path / "runs", "done", unique=True).root.name == "done-2"  # a generated id moves aside


def test_a_recorded_server_pid_is_only_stopped_if_it_is_still_a_prefect_server(live_process):
    assert not servers.stop_server(live_process)  # `sleep` is not a Prefect server: left alone
    assert servers.alive(live_process)


def _wait_for(condition, process, timeout_s: float = 240) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the run did not get that far in time"
        time.sleep(0.2)


def test_a_sigkilled_curate_leaves_a_server_and_a_partial_folder_that_the_next_run_cleans_up(tmp_path):
    config = write_tiny_run(tmp_path, ROWS)
    victim = RunFolder(tmp_path / "runs" / "victim")
    run = subprocess.Popen([*PDAP, "curate", "--config", str(config), "--run-id", "victim"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    server = None
    try:
        _wait_for(lambda: victim.shards_dir.exists(), run)
        server = victim.status()["server"]
        assert victim.status()["owner"]["pid"] == run.pid and server is not None
        registered = json.loads((servers.registry() / f"{server['pid']}.json").read_text())
        assert registered["owner"]["pid"] == run.pid
        run.send_signal(signal.SIGKILL)
        run.wait()
        assert servers.alive(server)  # Prefect could not stop it: the leak the next run must clean up

        again = subprocess.run([*PDAP, "curate", "--config", str(config), "--run-id", "again"], capture_output=True, text=True,
                               timeout=600)
        assert again.returncode == 0, again.stdout + again.stderr
        assert not servers.alive(server)
        assert not (servers.registry() / f"{server['pid']}.json").exists()
        status = victim.status()
        assert (status["state"], status["reason"]) == ("failed", "interrupted") and not victim.shards_dir.exists()
        assert RunFolder(tmp_path / "runs" / "again").status()["state"] == "completed"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if server and servers.alive(server):
            psutil.Process(server["pid"]).kill()


def test_reusing_the_run_id_of_a_completed_run_exits_2_and_keeps_it(tmp_path):
    config = write_tiny_run(tmp_path, ROWS)
    done = open_run(tmp_path / "runs", "done")
    (done.root / "summary.json").write_text('{"kept": true}', encoding="utf-8")
    done.finish()
    reused = subprocess.run([*PDAP, "curate", "--config", str(config), "--run-id", "done"], capture_output=True, text=True,
                            timeout=600)
    assert reused.returncode == 2
    last_line = reused.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and f"{done.root}: the folder already holds a run" in last_line
    assert "Traceback" not in reused.stderr  # refused before any flow or server starts
    assert json.loads((done.root / "summary.json").read_text()) == {"kept": True} and done.status()["state"] == "completed"
    assert sorted(p.name for p in done.root.iterdir()) == ["status.json", "summary.json"]
