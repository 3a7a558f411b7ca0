"""Settings of a few-shot experiment (the `experiment:` section of a run config)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, field_validator

from experiments.noise import CLEAN, parse_noise

from schemas.strict import StrictModel


class RobustnessConfig(StrictModel):
    """The `experiment.robustness` section: which attacks, on how many test rows, with what budget."""

    recipes: list[Literal["deepwordbug", "wordnet_swap", "pwws", "pruthi"]] = Field(
        ["deepwordbug", "wordnet_swap"], min_length=1,
        description="TextAttack recipes that run offline (model_hooks/robustness.py), each run on every cell: deepwordbug and "
        "pruthi (character level), wordnet_swap (WordNet synonyms in [UNK] word-importance order), pwws (PWWSRen2019; "
        "about 15 s a row on ~200-word abstracts)",
    )
    sample: int = Field(100, ge=1, description="test-half eval rows attacked per cell (the same rows for both models)")
    query_budget: int = Field(1000, ge=10, description="model queries allowed per attacked row")
    adversarial_addback: bool = Field(
        False, description="also attack a third model, `curated+adversarial`: the curated rows plus the adversarial add-back "
        "children of their originals (stages/adversarial_addback.py, augmentation.adversarial_* settings)")
    ks: list[PositiveInt] = Field([10], min_length=1)
    seeds: list[int] = Field([0, 1, 2], min_length=1)

    @field_validator("recipes")
    @classmethod
    def _each_once(cls, recipes: list[str]) -> list[str]:
        repeated = sorted({recipe for recipe in recipes if recipes.count(recipe) > 1})
        if repeated:
            raise ValueError(f"recipe listed more than once: {', '.join(repeated)}")
        return recipes


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
    noise: list[str] = Field(
        ["char@0.05", "char@0.10", "char@0.20", "word@0.10"],
        description="noisy copies of the eval rows every arm is also scored on (experiments/noise.py); [] for clean rows only",
    )
    typo_reader: Literal["auto", "on", "off"] = Field(
        "auto", description="the curated models read each eval text through a typo reader built from the run's own "
        "training texts (model_hooks/spelling.py) before embedding it; auto: on with augmentation.goal robustness")
    results_dir: Path = Path("benchmarks/results")
    robustness: RobustnessConfig = RobustnessConfig()

    @field_validator("noise")
    @classmethod
    def _known_noise(cls, names: list[str]) -> list[str]:
        """Each name parses (`char@0.10`), written in its canonical form, once."""
        canonical = [parse_noise(name).name for name in names if name != CLEAN]
        return list(dict.fromkeys(canonical))
