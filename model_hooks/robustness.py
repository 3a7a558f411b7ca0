"""Robustness probe: TextAttack attack recipes that run offline, against any probability model.

A model is a function `texts -> probabilities` (rows in the label order); `probe` attacks each
(text, label) pair and returns the success rate, the share of words perturbed and the queries.
Only recipes without downloads are offered (OFFLINE.md): character-level DeepWordBug and Pruthi.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from model_hooks.resources import textattack_offline

RECIPES = ("deepwordbug", "pruthi")
ProbabilityModel = Callable[[list[str]], np.ndarray]


@dataclass(frozen=True)
class ProbeResult:
    recipe: str
    n: int
    skipped: int
    succeeded: int
    failed: int
    avg_words_perturbed: float
    avg_words_perturbed_share: float
    avg_queries: float

    @property
    def attack_success_rate(self) -> float:
        """Successful attacks among the attacked rows (rows the model already got wrong are skipped)."""
        attacked = self.succeeded + self.failed
        return self.succeeded / attacked if attacked else float("nan")

    def as_dict(self) -> dict:
        return {
            "recipe": self.recipe, "n": self.n, "skipped": self.skipped, "succeeded": self.succeeded, "failed": self.failed,
            "attack_success_rate": round(self.attack_success_rate, 4), "avg_words_perturbed": round(self.avg_words_perturbed, 3),
            "avg_words_perturbed_share": round(self.avg_words_perturbed_share, 4), "avg_queries": round(self.avg_queries, 1),
        }


def _build_attack(recipe: str, model: ProbabilityModel, query_budget: int):
    with textattack_offline():
        from textattack.attack_recipes import DeepWordBugGao2018, Pruthi2019
        from textattack.models.wrappers import ModelWrapper

    class FunctionWrapper(ModelWrapper):
        def __init__(self, function: ProbabilityModel):
            self.model = function

        def __call__(self, text_input_list):
            return np.asarray(self.model(list(text_input_list)), dtype=np.float64)

    recipes = {"deepwordbug": DeepWordBugGao2018, "pruthi": Pruthi2019}
    if recipe not in recipes:
        raise ValueError(f"unknown attack recipe {recipe!r}; offline recipes: {', '.join(RECIPES)}")
    attack = recipes[recipe].build(FunctionWrapper(model))
    attack.goal_function.query_budget = query_budget
    return attack


def probe(model: ProbabilityModel, texts: list[str], labels: list[int], recipe: str = "deepwordbug", query_budget: int = 2000, seed: int = 0) -> ProbeResult:
    """Attack every (text, label index) pair with `recipe`; same seed, same perturbations."""
    with textattack_offline():
        from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    random.seed(seed)
    np.random.seed(seed)
    attack = _build_attack(recipe, model, query_budget)
    skipped = succeeded = failed = 0
    perturbed, shares, queries = [], [], []
    for text, label in zip(texts, labels):
        result = attack.attack(text, int(label))
        if isinstance(result, SkippedAttackResult):
            skipped += 1
            continue
        queries.append(result.perturbed_result.num_queries)
        if isinstance(result, SuccessfulAttackResult):
            succeeded += 1
            original = result.original_result.attacked_text
            changed = len(original.all_words_diff(result.perturbed_result.attacked_text))
            perturbed.append(changed)
            shares.append(changed / max(1, len(original.words)))
        elif isinstance(result, FailedAttackResult):
            failed += 1
        else:  # a maximized or other result type would be a recipe we do not offer
            raise RuntimeError(f"unexpected attack result {type(result).__name__}")
    mean = lambda values: float(np.mean(values)) if values else float("nan")  # noqa: E731
    return ProbeResult(recipe, len(texts), skipped, succeeded, failed, mean(perturbed), mean(shares), mean(queries))
