"""The curate pipeline as an ordered list of stage functions, for in-process use.

The Prefect flow runs the same stages as tasks; the experiment runner calls `run_pipeline` with
stages switched off for ablations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import pyarrow as pa

from stages.adversarial_validation import validate
from stages.base import StageResult
from stages.cleaning import clean
from stages.domain_adaptation import adapt, build_domain_inputs
from stages.semantic_augmentation import AugmentationInputs, augment


@dataclass
class PipelineContext:
    """The run config, the seed, and resources one stage prepares for the next."""

    config: object
    seed: int
    domain: AugmentationInputs | None = None  # None: mined from the rows reaching augmentation


def _clean(rows: pa.Table, context: PipelineContext) -> StageResult:
    return clean(rows, context.config.cleaning)


def _augment(rows: pa.Table, context: PipelineContext) -> StageResult:
    if context.domain is None:
        context.domain = build_domain_inputs(rows, context.config.domain)
    return augment(rows, context.config.augmentation, context.domain, context.seed, cleaning=context.config.cleaning)


def _adapt(rows: pa.Table, context: PipelineContext) -> StageResult:
    return adapt(rows, context.config.domain, context.seed)


def _validate(rows: pa.Table, context: PipelineContext) -> StageResult:
    return validate(rows, context.config.validation, context.seed)


PIPELINE: tuple[tuple[str, Callable[[pa.Table, PipelineContext], StageResult]], ...] = (
    ("clean", _clean),
    ("augment", _augment),
    ("adapt", _adapt),
    ("validate", _validate),
)
STAGE_NAMES = tuple(name for name, _ in PIPELINE)


def run_pipeline(rows: pa.Table, config, seed: int, skip: frozenset[str] = frozenset(), memo: dict | None = None,
                 domain: AugmentationInputs | None = None) -> tuple[pa.Table, dict]:
    """Run every stage not in `skip`; return the final rows and each stage's stats.

    `memo` (a dict the caller keeps) shares results between calls on the same rows, config and
    seed: an ablation that only drops a later stage reuses the stages before it. `domain` gives the
    domain resources (protected terms, word vectors) instead of mining them from the rows.
    """
    unknown = set(skip) - set(STAGE_NAMES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; the pipeline has {list(STAGE_NAMES)}")
    context = PipelineContext(config, seed, domain)
    stats, done = {}, ()
    for name, function in PIPELINE:
        if name in skip:
            continue
        done += (name,)
        if memo is not None and done in memo:
            rows, stats[name] = memo[done]
            continue
        result = function(rows, context)
        rows, stats[name] = result.kept, result.stats
        if memo is not None:
            memo[done] = (rows, stats[name])
    return rows, stats
