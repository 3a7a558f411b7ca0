"""Robustness probe: TextAttack attack recipes that run offline, against any probability model.

A model is a function `texts -> probabilities` (rows in the label order); `probe` attacks each
(text, label) pair and returns the success rate, the words perturbed, the queries and the seconds.
Only recipes without downloads are offered (OFFLINE.md):
- `deepwordbug`, `pruthi`: TextAttack's character-level recipes;
- `pwws`: TextAttack's PWWSRen2019, WordNet synonym swaps over the project's offline WordNet. Its
  word ranking queries every synonym of every word before the first swap, which on ~200-word
  abstracts takes most of a 1,000-query budget (10 to 18 s a row measured on 2 cores);
- `wordnet_swap`: PWWS's transformation and constraints (WordNet synonyms, no stopword or word
  swapped twice) with the greedy search in the order of [UNK] word importance (TextFooler's ranking,
  one query per word) instead of PWWS's probability-weighted saliency. It is not PWWS, hence its name.

`SharedEmbeddings` memoises the embeddings of the models of one cell, which share an encoder: the
word ranking of every recipe here but `pwws` queries the same [UNK] variants for every model.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from model_hooks.resources import load_wordnet, textattack_offline

RECIPES = ("deepwordbug", "wordnet_swap", "pwws", "pruthi")
WORDNET_RECIPES = ("wordnet_swap", "pwws")
ProbabilityModel = Callable[[list[str]], np.ndarray]
# texts per model call: a word ranking (one variant per word of an abstract) goes to the encoder in one call
MODEL_BATCH = 512


class SharedEmbeddings:
    """`texts -> vectors` through `embed`, memoised by what the encoder reads of each text (`inputs`: texts
    -> hashable keys; default the text itself). A call embeds only the unseen keys, one text each, in one
    call of `embed`. Meant for one cell; it holds every vector it made."""

    def __init__(self, embed: Callable[[list[str]], np.ndarray], inputs: Callable[[list[str]], list] | None = None):
        self._embed = embed
        self._inputs = inputs or list
        self._vectors: dict = {}
        self.computed = 0  # texts embedded so far (distinct encoder inputs)

    @classmethod
    def of(cls, embedder) -> SharedEmbeddings:
        """For a model_hooks.embedder.Embedder. In `truncate` mode a vector depends only on the first
        max_tokens word pieces of its encoder, so texts that differ only beyond them share one vector (an attack's edits
        to words the model never reads: nearly half of the distinct texts an attack on abstracts queries)."""
        from model_hooks.embedder import tokenizer

        def pieces(texts: list[str]) -> list[bytes]:
            ids = tokenizer(embedder.encoder)(texts, truncation=True, max_length=embedder.encoder.max_tokens, verbose=False)["input_ids"]
            return [np.asarray(piece, np.int32).tobytes() for piece in ids]

        return cls(embedder.embed, pieces if embedder.mode == "truncate" else None)

    def __call__(self, texts: list[str]) -> np.ndarray:
        keys = self._inputs(texts)
        missing = {key: text for key, text in zip(keys, texts) if key not in self._vectors}
        if missing:
            self._vectors.update(zip(missing, self._embed(list(missing.values()))))
            self.computed += len(missing)
        return np.stack([self._vectors[key] for key in keys])


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
    queries: int
    seconds: float = field(compare=False)  # wall time: equal probes differ in it

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
            "queries": self.queries, "seconds": round(self.seconds, 2),
        }


def _wordnet_swap(model_wrapper):
    """PWWS's synonym swaps and constraints, searched greedily in [UNK] word-importance order."""
    from textattack import Attack
    from textattack.constraints.pre_transformation import RepeatModification, StopwordModification
    from textattack.goal_functions import UntargetedClassification
    from textattack.search_methods import GreedyWordSwapWIR
    from textattack.transformations import WordSwapWordNet

    constraints = [RepeatModification(), StopwordModification()]
    return Attack(UntargetedClassification(model_wrapper), constraints, WordSwapWordNet(), GreedyWordSwapWIR("unk"))


def _build_attack(recipe: str, model: ProbabilityModel, query_budget: int):
    if recipe not in RECIPES:
        raise ValueError(f"unknown attack recipe {recipe!r}; offline recipes: {', '.join(RECIPES)}")
    if recipe in WORDNET_RECIPES:
        load_wordnet()  # the project's WordNet, loaded before TextAttack's WordNet swaps look it up
    # built inside the block too: WordSwapWordNet calls nltk.download when constructed
    with textattack_offline():
        from textattack.attack_recipes import DeepWordBugGao2018, PWWSRen2019, Pruthi2019
        from textattack.models.wrappers import ModelWrapper

        class FunctionWrapper(ModelWrapper):
            def __init__(self, function: ProbabilityModel):
                self.model = function

            def __call__(self, text_input_list):
                return np.asarray(self.model(list(text_input_list)), dtype=np.float64)

        builders = {"deepwordbug": DeepWordBugGao2018.build, "pruthi": Pruthi2019.build, "pwws": PWWSRen2019.build,
                    "wordnet_swap": _wordnet_swap}
        attack = builders[recipe](FunctionWrapper(model))
    attack.goal_function.query_budget = query_budget
    attack.goal_function.batch_size = MODEL_BATCH
    return attack


def _attack_results(model: ProbabilityModel, texts: list[str], labels: list[int], recipe: str, query_budget: int, seed: int):
    """TextAttack's result for every (text, label index) pair. Random draws restart from (seed, row) at
    each row, so a row's perturbations do not depend on the rows attacked before it."""
    attack = _build_attack(recipe, model, query_budget)
    for row, (text, label) in enumerate(zip(texts, labels)):
        random.seed(seed * 1_000_003 + row)
        np.random.seed((seed * 1_000_003 + row) % 2**32)
        yield attack.attack(text, int(label))


def attack_texts(model: ProbabilityModel, texts: list[str], labels: list[int], recipe: str = "deepwordbug", query_budget: int = 300,
                 seed: int = 0) -> list[str | None]:
    """Per (text, label index): the text of a successful attack, or None (already misread, or the attack failed)."""
    with textattack_offline():
        from textattack.attack_results import SuccessfulAttackResult

    return [result.perturbed_result.attacked_text.text if isinstance(result, SuccessfulAttackResult) else None
            for result in _attack_results(model, texts, labels, recipe, query_budget, seed)]


def probe(model: ProbabilityModel, texts: list[str], labels: list[int], recipe: str = "deepwordbug", query_budget: int = 2000, seed: int = 0) -> ProbeResult:
    """Attack every (text, label index) pair with `recipe` (`_attack_results`) and count the outcomes."""
    with textattack_offline():
        from textattack.attack_results import FailedAttackResult, SkippedAttackResult, SuccessfulAttackResult

    started = time.perf_counter()
    skipped = succeeded = failed = 0
    perturbed, shares, queries = [], [], []
    for result in _attack_results(model, texts, labels, recipe, query_budget, seed):
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
    return ProbeResult(recipe, len(texts), skipped, succeeded, failed, mean(perturbed), mean(shares), mean(queries),
                       int(sum(queries)) + skipped, time.perf_counter() - started)
