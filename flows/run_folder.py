"""The run folder of ARCHITECTURE.md: one Parquet file per boundary, rejects, stats, contracts.

Every write goes to a temporary file first and is then renamed, so a crash never leaves a
half-written file behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

BOUNDARY_FILES = {"ingest": "00_raw", "clean": "10_clean", "augment": "20_augmented", "adapt": "30_adapted", "validate": "40_validated"}


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode("utf-8"))


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
