"""The state of an incremental refresh: generations of (manifest, clean rows, rejects), a lock.

    <state_dir>/
      CURRENT                 the number of the last complete generation (replaced atomically)
      generations/<n>/        manifest.json (input file -> SHA-256), clean.parquet (the cleaned rows
                              of every input file so far), rejects.parquet (ingest and clean
                              rejects), sources.parquet (row id -> input file), run/ (the curate
                              run on clean.parquet, when the refresh curates)
      .lock                   held (flock) by the refresh that is running

A generation is written under a temporary name and renamed when complete; CURRENT moves last.
A refresh killed at any point leaves the previous generation current and complete, and the
next refresh redoes the unfinished work: nothing is lost or counted twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flows.run_folder import atomic_write_parquet
from schemas.files import atomic_write_bytes, atomic_write_json
from schemas.rows import REJECT_SCHEMA, empty_rows

_SOURCES_SCHEMA = pa.schema([pa.field("id", pa.string()), pa.field("file", pa.string())])


class RefreshLocked(RuntimeError):
    """Another refresh of the same state folder is running."""


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Generation:
    """One complete refresh result (number 0: nothing processed yet)."""

    number: int = 0
    manifest: dict[str, str] = field(default_factory=dict)
    clean: pa.Table = field(default_factory=empty_rows)
    rejects: pa.Table = field(default_factory=REJECT_SCHEMA.empty_table)
    sources: pa.Table = field(default_factory=_SOURCES_SCHEMA.empty_table)


class RefreshState:
    """Reads the current generation, writes the next one atomically, and holds the lock."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def generation_dir(self, number: int) -> Path:
        return self.root / "generations" / str(number)

    def current(self) -> Generation:
        pointer = self.root / "CURRENT"
        if not pointer.exists():
            return Generation()
        number = int(pointer.read_text(encoding="utf-8").strip())
        folder = self.generation_dir(number)
        return Generation(
            number=number,
            manifest=json.loads((folder / "manifest.json").read_text(encoding="utf-8")),
            clean=pq.read_table(folder / "clean.parquet"),
            rejects=pq.read_table(folder / "rejects.parquet"),
            sources=pq.read_table(folder / "sources.parquet"),
        )

    def write(self, generation: Generation) -> Path:
        """Write `generation` completely under a temporary name, rename it, then move CURRENT."""
        final = self.generation_dir(generation.number)
        temporary = final.with_name(f".{generation.number}.partial")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        atomic_write_json(temporary / "manifest.json", generation.manifest)
        atomic_write_parquet(temporary / "clean.parquet", generation.clean)
        atomic_write_parquet(temporary / "rejects.parquet", generation.rejects)
        atomic_write_parquet(temporary / "sources.parquet", generation.sources)
        shutil.rmtree(final, ignore_errors=True)  # a complete but never-current leftover of a killed run
        os.replace(temporary, final)
        return final

    def publish(self, number: int) -> None:
        atomic_write_bytes(self.root / "CURRENT", f"{number}\n".encode("utf-8"))

    def remove_leftovers(self) -> None:
        """Delete partial or never-published generations left by a killed refresh."""
        current = self.current().number
        folder = self.root / "generations"
        for path in folder.iterdir() if folder.exists() else []:
            if path.name.startswith(".") or (path.name.isdigit() and int(path.name) > current):
                shutil.rmtree(path, ignore_errors=True)

    @contextmanager
    def lock(self, wait_seconds: float = 0.0):
        """Hold the state folder's lock; wait up to `wait_seconds`, then raise RefreshLocked."""
        self.root.mkdir(parents=True, exist_ok=True)
        handle = (self.root / ".lock").open("a+")
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.seek(0)
                    holder = handle.read().strip() or "unknown"
                    handle.close()
                    raise RefreshLocked(f"another refresh of {self.root} is running (pid {holder}); "
                                        "wait for it to finish or set refresh.lock_wait_seconds") from None
                time.sleep(0.5)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
