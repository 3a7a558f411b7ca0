"""What every benchmark script shares: timing, provenance, and writing its results files.

A benchmark times its work with `timed()`, stamps each record with `provenance()`, keeps its records
in benchmarks/results/<name>.jsonl with `write_records` (appended, or merged by key) or
`rewrite_records`, and writes its Markdown table with `write_lines` and its plot with `save_figure`.
Every write is atomic (schemas/files.py): a crash leaves the old file, never half a new one.
"""

from __future__ import annotations

import io
import json
import multiprocessing
import resource
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from experiments.provenance import run_fields
from schemas.files import atomic_write_bytes

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def new_run_id() -> str:
    """A fresh id for the records of one run to share: 12 hex digits."""
    return uuid.uuid4().hex[:12]


def provenance(run_id: str | None = None) -> dict:
    """The fields every record carries (experiments/provenance.py): run id (a new one unless given), date,
    machine, CPU, cores, load average, git commit and whether tracked files differ from it."""
    return run_fields(run_id or new_run_id())


@dataclass
class Timing:
    """Wall seconds of a `timed()` block, set when the block ends."""

    seconds: float = 0.0


@contextmanager
def timed():
    """Time the block with time.perf_counter: `with timed() as timing: ...`, then `timing.seconds`."""
    timing = Timing()
    started = time.perf_counter()
    try:
        yield timing
    finally:
        timing.seconds = time.perf_counter() - started


def peak_rss_mb() -> float:
    """The peak resident memory of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_fresh_process(function, *args):
    """`function(*args)` in a spawned process, so its peak memory is its own and nothing this process holds counts."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def read_records(path: Path) -> list[dict]:
    """The records of a JSON Lines file in file order; none when the file does not exist."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _json_lines(records: list[dict]) -> bytes:
    return "".join(json.dumps(record, sort_keys=True) + "\n" for record in records).encode("utf-8")


def write_records(path: Path, records: list[dict], key: tuple[str, ...] | None = None) -> list[dict]:
    """Add `records` to the JSON Lines file `path` and return every record it then holds.

    Without `key` they are appended (the earlier lines stay byte for byte). With `key` (field names) each
    replaces the earlier records with its values of those fields, and the file is sorted by them.
    """
    path = Path(path)
    if key is not None:
        from experiments.report import merge_records

        return merge_records(path, list(records), key=key, replace=key)
    old = path.read_bytes() if path.exists() else b""
    if old and not old.endswith(b"\n"):
        old += b"\n"
    atomic_write_bytes(path, old + _json_lines(records))
    return read_records(path)


def rewrite_records(path: Path, records: list[dict]) -> None:
    """Replace the JSON Lines file `path` with `records` (a script whose run remakes every record)."""
    atomic_write_bytes(Path(path), _json_lines(records))


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` as UTF-8."""
    atomic_write_bytes(Path(path), text.encode("utf-8"))


def write_lines(path: Path, lines: list[str]) -> None:
    """Write `lines` (a Markdown table, say) to `path`, each ended by a newline."""
    write_text(path, "\n".join(lines) + "\n")


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, path: Path, dpi: int = 110) -> None:
    """Write `figure` to `path` as PNG, without the Software tag (equal plots give equal bytes), and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Software": None})
    pyplot().close(figure)
    atomic_write_bytes(Path(path), buffer.getvalue())
