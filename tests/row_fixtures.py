"""Tiny in-code row tables for tests."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa

from schemas.rows import conform_rows, content_id


def make_rows(*rows: tuple) -> pa.Table:
    """Rows from (text, label, split) tuples; ids are content hashes of text and position."""
    return conform_rows(
        pa.table(
            {
                "id": pa.array([content_id(text, str(index)) for index, (text, _, _) in enumerate(rows)], pa.string()),
                "text": pa.array([text for text, _, _ in rows], pa.string()),
                "label": pa.array([label for _, label, _ in rows], pa.string()),
                "split": pa.array([split for _, _, split in rows], pa.string()),
                "origin": pa.array(["original"] * len(rows), pa.string()),
            }
        )
    )


def write_tiny_run(folder: Path, rows: list[tuple[str, str]]) -> Path:
    """A CSV of (abstract, condition) rows and a curate config reading it, in `folder`; returns the config path."""
    with (folder / "rows.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["abstract", "condition"])
        writer.writerows(rows)
    config = folder / "run.yaml"
    config.write_text(
        "name: tiny\nruns_dir: runs\ningest:\n  sources:\n    - path: rows.csv\n  columns: {text: abstract, label: condition}\n"
        "  labels: [cardio, neuro, digestive]\n",
        encoding="utf-8",
    )
    return config
