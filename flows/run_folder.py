"""The run folder of ARCHITECTURE.md: one Parquet file per boundary, rejects, stats, contracts.

Every write goes to a temporary file first and is then renamed, so a crash never leaves a
half-written file behind. status.json says whose run the folder is and how it ended
(running, completed, failed); see docs/run-folder.md, "Interrupted runs and run-id reuse".
"""

from __future__ import annotations

import atexit
import datetime as dt
import fcntl
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from experiments.provenance import git_commit, git_dirty
from flows import servers
from schemas.files import atomic_write_bytes, atomic_write_json


class RunIdInUse(ValueError):
    """The folder of a run id holds a completed or running run; only a failed or interrupted one is replaced."""


BOUNDARY_FILES = {"ingest": "00_raw", "clean": "10_clean", "augment": "20_augmented", "adapt": "30_adapted", "validate": "40_validated"}


def atomic_write_parquet(path: Path, table: pa.Table, compression: str = "zstd") -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression=compression)
    atomic_write_bytes(path, sink.getvalue().to_pybytes())


class RunFolder:
    """Paths and writers for one run: runs/<run_id>/."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def boundary_path(self, stage: str) -> Path:
        return self.root / f"{BOUNDARY_FILES[stage]}.parquet"

    def rejects_path(self, stage: str) -> Path:
        return self.root / "rejects" / f"{stage}.parquet"

    def stats_path(self, stage: str) -> Path:
        return self.root / "stats" / f"{stage}.json"

    def contract_path(self, boundary: str) -> Path:
        return self.root / "contracts" / f"{boundary}.json"

    @property
    def shards_dir(self) -> Path:
        """Scratch space of the per-shard tasks; removed when the run finishes."""
        return self.root / "shards"

    @property
    def data_docs_dir(self) -> Path:
        return self.root / "data_docs"

    def extra_path(self, stage: str, name: str) -> Path:
        return self.root / f"{BOUNDARY_FILES[stage]}.{name}.parquet"

    def write_stage(self, stage: str, kept: pa.Table, rejected: pa.Table, stats: dict, extra: dict[str, pa.Table] | None = None) -> Path:
        for name, table in (extra or {}).items():
            atomic_write_parquet(self.extra_path(stage, name), table)
        atomic_write_parquet(self.boundary_path(stage), kept)
        atomic_write_parquet(self.rejects_path(stage), rejected)
        atomic_write_json(self.stats_path(stage), stats)
        return self.boundary_path(stage)

    def read_stats(self, stage: str) -> dict:
        return json.loads(self.stats_path(stage).read_text(encoding="utf-8"))

    @property
    def status_path(self) -> Path:
        return self.root / "status.json"

    def status(self) -> dict | None:
        """The run's status.json (`state`: running, completed or failed), or None when there is none."""
        try:
            return json.loads(self.status_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def finish(self) -> None:
        """Mark the run completed: its folder is kept from now on (a reused run id is refused)."""
        atomic_write_json(self.status_path, {**(self.status() or {}), "state": "completed", "finished": _now()})
        _unfinished.discard(self.root)

    def mark_failed(self, reason: str, detail: str) -> None:
        """Mark the run failed (its folder may be replaced) and delete its shard scratch space."""
        atomic_write_json(self.status_path, {**(self.status() or {}), "state": "failed", "reason": reason, "detail": detail, "finished": _now()})
        shutil.rmtree(self.shards_dir, ignore_errors=True)
        _unfinished.discard(self.root)


_unfinished: set[Path] = set()  # the runs this process started and has not finished


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@atexit.register
def _fail_unfinished() -> None:
    """At exit, a run this process started and did not finish failed (an error or a signal stopped it)."""
    for root in [root for root in _unfinished if root.is_dir()]:
        reason = "interrupted" if servers.exit_signal else "error"
        RunFolder(root).mark_failed(reason, f"pid {os.getpid()} ended before the run finished")


def _owned_by_another_live_process(status: dict) -> bool:
    owner = status.get("owner")
    return bool(owner) and owner.get("pid") != os.getpid() and servers.alive(owner)


def mark_interrupted_runs(runs_dir: Path) -> None:
    """Mark failed every run in `runs_dir` whose owner died while it was running; stop its Prefect server."""
    for root in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else []:
        folder = RunFolder(root)
        status = folder.status() if root.is_dir() else None
        if not status or status.get("state") != "running" or "owner" not in status or servers.alive(status["owner"]):
            continue
        if status.get("server"):
            servers.stop_server(status["server"])
        folder.mark_failed("interrupted", f"pid {status['owner']['pid']} ended while the run was running")


@contextmanager
def _locked(runs_dir: Path):
    """Hold an exclusive lock on the folder itself while runs in it are claimed."""
    runs_dir.mkdir(parents=True, exist_ok=True)
    handle = os.open(runs_dir, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def _refusal(root: Path) -> str | None:
    """Why a new run may not use the folder `root`, or None when it may (new, empty, failed or interrupted)."""
    if not (root.is_dir() and any(root.iterdir())):
        return None
    status = RunFolder(root).status() or {}
    if status.get("state") == "running" and _owned_by_another_live_process(status):
        return f"{root}: a run in progress (pid {status['owner']['pid']}) writes to this folder; choose another --run-id"
    if status.get("state") in ("failed", "running"):  # running: its owner is dead, or it is this process's failed attempt
        return None
    return f"{root}: the folder already holds a run; choose another --run-id (only the folder of a failed or interrupted run is replaced)"


def check_run_id(runs_dir: Path, run_id: str) -> None:
    """Raise RunIdInUse when `runs_dir/run_id` holds a completed or running run (a check before starting anything)."""
    refusal = _refusal(Path(runs_dir) / run_id)
    if refusal:
        raise RunIdInUse(refusal)


def _claim(root: Path, server: dict | None) -> RunFolder:
    check_run_id(root.parent, root.name)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    folder = RunFolder(root)
    atomic_write_json(folder.status_path, {"state": "running", "started": _now(), "owner": servers.identity(), "server": server,
                                           "git_commit": git_commit(), "git_dirty": git_dirty()})
    _unfinished.add(root)
    return folder


def open_run(runs_dir: Path, run_id: str, unique: bool = False) -> RunFolder:
    """Claim `runs_dir/run_id` for a run of this process and mark it running.

    First cleans up after dead runs: stops the Prefect servers whose owner died and marks their
    unfinished runs in `runs_dir` failed. A new or empty folder is claimed; the folder of a failed
    or interrupted run is replaced; any other raises RunIdInUse, or with `unique` (a generated
    run id) the id gets a -2, -3, ... suffix.
    """
    servers.stop_orphaned_servers()
    server = servers.record_temporary_server()
    with _locked(runs_dir):
        mark_interrupted_runs(runs_dir)
        name, suffix = run_id, 1
        while True:
            try:
                return _claim(runs_dir / name, server)
            except RunIdInUse:
                if not unique:
                    raise
                suffix += 1
                name = f"{run_id}-{suffix}"
