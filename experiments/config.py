"""Settings of a few-shot experiment (the `experiment:` section of a run config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt

from schemas.strict import StrictModel


class RobustnessConfig(StrictModel):
    """The `experiment.robustness` section: which attack, on how many eval rows, with what budget."""

    recipe: str = Field("deepwordbug", pattern="^(deepwordbug|pruthi)$")
    sample: int = Field(50, ge=1, description="eval rows attacked per cell (the same rows for both models)")
    query_budget: int = Field(1000, ge=10, description="model queries allowed per attacked row")
    ks: list[PositiveInt] = Field([10], min_length=1)
    seeds: list[int] = Field([0, 1, 2], min_length=1)


class ExperimentConfig(StrictModel):
    dataset: str | None = Field(None, description="name used in the results files; default: the run name")
    ks: list[PositiveInt] = Field([10, 25, 100], min_length=1, description="labeled examples per class")
    seeds: list[int] = Field([0, 1, 2, 3, 4], min_length=1)
    trainer: Literal["head", "finetune", "setfit"] = "head"
    embedding_mode: Literal["truncate", "chunk_mean"] = "truncate"
    reference_arms: list[Literal["tuned_lr", "tfidf_lr", "name_prior", "frozen_lr", "setfit"]] = Field(
        ["tuned_lr", "tfidf_lr", "name_prior"],
        description="tuned_lr: logistic regression on the frozen embeddings, C by cross-validation on the k-shot rows; "
        "tfidf_lr: the same on TF-IDF features; name_prior: the raw head times the class-name prior; "
        "frozen_lr: C=1 logistic regression; setfit: SetFit (slow on CPU)",
    )
    eval_split: Literal["dev", "test"] = Field(
        "test", description="the half of the eval rows scored: test for published figures, dev for tuning work"
    )
    self_tune: bool = Field(True, description="choose stages and ops per cell by inner cross-validation on the training rows")
    inner_folds: int = Field(3, ge=2, le=10, description="inner cross-validation folds over the labeled originals")
    head_l2: float | None = Field(None, gt=0.0, description="the head's L2 (1/C); null: chosen per cell by cross-validation")
    setfit_max_k: int = Field(25, description="SetFit reference arms run only up to this k (slow on CPU)")
    setfit_max_pairs: int | None = Field(
        None, ge=1, description="SetFit: at most this many contrastive pairs (null: SetFit's own count, 2 x 10 per example)"
    )
    sample_weighting: Literal["family", "uniform"] = Field(
        "family", description="family: a labeled row and its augmented children share one unit of training weight "
        "(trainers that take weights: head, finetune); uniform: every row counts once"
    )
    curated_arms: bool = Field(True, description="train on curated rows too; false: the raw baseline and references only")
    ablations: bool = Field(True, description="one arm per pipeline stage switched off")
    results_dir: Path = Path("benchmarks/results")
    robustness: RobustnessConfig = RobustnessConfig()
