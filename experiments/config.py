"""Settings of a few-shot experiment (the `experiment:` section of a run config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from experiments.robustness import RobustnessConfig
from schemas.strict import StrictModel


class ExperimentConfig(StrictModel):
    dataset: str | None = Field(None, description="name used in the results files; default: the run name")
    ks: list[int] = Field([10, 25, 100], min_length=1, description="labeled examples per class")
    seeds: list[int] = Field([0, 1, 2, 3, 4], min_length=1)
    trainer: Literal["head", "finetune", "setfit"] = "head"
    embedding_mode: Literal["truncate", "chunk_mean"] = "truncate"
    reference_arms: list[Literal["tfidf_lr", "frozen_lr", "setfit"]] = ["tfidf_lr", "frozen_lr", "setfit"]
    setfit_max_k: int = Field(25, description="SetFit reference arms run only up to this k (slow on CPU)")
    curated_arms: bool = Field(True, description="train on curated rows too; false: the raw baseline and references only")
    ablations: bool = Field(True, description="one arm per pipeline stage switched off")
    results_dir: Path = Path("benchmarks/results")
    robustness: RobustnessConfig = RobustnessConfig()
