"""The curate pipeline as an ordered list of stage functions, for in-process use.

The Prefect flow runs the same stages as tasks; the experiment runner calls `run_pipeline` with
stages switched off for ablations.
"""

from __future__ import annotations

from typing import Callable

import pyarrow as pa

from stages.base import StageResult
from stages.cleaning import clean

StageFunction = Callable[[pa.Table, object], StageResult]

# (name, function of (rows, run config)) in pipeline order.
PIPELINE: tuple[tuple[str, StageFunction], ...] = (("clean", lambda rows, config: clean(rows, config.cleaning)),)
STAGE_NAMES = tuple(name for name, _ in PIPELINE)


def run_pipeline(rows: pa.Table, config, skip: frozenset[str] = frozenset()) -> tuple[pa.Table, dict]:
    """Run every stage not in `skip`; return the final rows and each stage's stats."""
    unknown = set(skip) - set(STAGE_NAMES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; the pipeline has {list(STAGE_NAMES)}")
    stats = {}
    for name, function in PIPELINE:
        if name in skip:
            continue
        result = function(rows, config)
        rows, stats[name] = result.kept, result.stats
    return rows, stats
