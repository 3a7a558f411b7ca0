"""The robustness probe on real parts: the MiniLM embedder, TextAttack over the project's offline
WordNet, and the experiment's own raw and curated training rows on a tiny data file."""

from __future__ import annotations

import csv
import socket
import typing
from pathlib import Path

import nltk
import numpy as np
import pyarrow as pa
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from experiments.config import RobustnessConfig
from experiments.robustness import attacked_rows, linear_model, robustness_cell, rows_digest
from experiments.runner import run_cell
from experiments.sampling import draw_k_shot
from flows.cli import app
from flows.config import RunConfig
from model_hooks.embedder import Embedder
from model_hooks.robustness import RECIPES, SharedEmbeddings, probe
from model_hooks.trainers import HeadTrainer, linear_probabilities
from stages.ingest import eval_part, ingest

TOPICS = {
    "sport": "football tennis match goal team race runner stadium coach league",
    "cooking": "sauce garlic bake bread oven butter soup recipe onion pepper",
    "finance": "bank interest stock market bond profit inflation loan investor price",
}
REVIEWS = {
    "good": ["the film was good", "a great movie", "an excellent story", "wonderful acting", "a fine and pleasant show", "I loved it"],
    "bad": ["the film was bad", "a terrible movie", "an awful story", "dreadful acting", "a poor and boring show", "I hated it"],
}


@pytest.fixture(scope="module")
def embedder():
    return Embedder("truncate", cache_dir=None)


@pytest.fixture(scope="module")
def review_model(embedder):
    """A real head on real MiniLM vectors of a few short reviews: texts -> P(good), P(bad)."""
    texts = [text for reviews in REVIEWS.values() for text in reviews]
    labels = [label for label, reviews in REVIEWS.items() for _ in reviews]
    weight, bias = HeadTrainer(l2=0.1).fit_weights(embedder.embed(texts), labels, list(REVIEWS), 0)
    return weight, bias


@pytest.fixture(scope="module")
def topic_file(tmp_path_factory):
    """A tiny topic-classification data file: 14 sentences per topic, each with two words of the next
    topic, so a k=2 model gets some rows wrong; the fixed eval rule puts about half in eval."""
    path = tmp_path_factory.mktemp("topics") / "topics.csv"
    names = list(TOPICS)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "topic"])
        for position, (label, words) in enumerate(TOPICS.items()):
            own, other = words.split(), TOPICS[names[(position + 1) % len(names)]].split()
            for i in range(14):
                mixed = " ".join(own[(i + j) % 10] for j in range(3)) + " and " + " ".join(other[(i + j) % 10] for j in range(2))
                writer.writerow([f"Item {i}: {mixed}.", label])
    return path


def test_attacked_rows_are_a_seeded_sample_of_the_test_half_whatever_the_row_order(rows):
    texts = [f"abstract number {i} about a patient" for i in range(80)]
    table = rows(*[(text, "a", "eval" if i % 4 else "labeled") for i, text in enumerate(texts)])
    test_half = {text for i, text in enumerate(texts) if i % 4 and eval_part(text) == "test"}
    sample = attacked_rows(table, 10, seed=3)
    assert sample.num_rows == 10 and set(sample.column("text").to_pylist()) <= test_half
    shuffled = table.take(pa.array(np.random.default_rng(0).permutation(table.num_rows)))
    assert attacked_rows(shuffled, 10, seed=3).column("id").to_pylist() == sample.column("id").to_pylist()
    assert attacked_rows(table, 10, seed=4).column("id").to_pylist() != sample.column("id").to_pylist()
    assert set(attacked_rows(table, 1000, seed=3).column("text").to_pylist()) == test_half


def test_shared_embeddings_give_the_uncached_probabilities_and_embed_each_text_once(embedder, review_model):
    counted = Embedder("truncate", cache_dir=None)
    shared = SharedEmbeddings.of(counted)
    model = linear_model(shared, *review_model)
    first = ["a great movie", "the film was bad", "a great movie"]
    second = ["the film was bad", "a new text", "a great movie"]
    assert np.array_equal(model(first), linear_probabilities(embedder.embed(first), *review_model))
    assert np.array_equal(model(second), linear_probabilities(embedder.embed(second), *review_model))
    assert counted.computed == shared.computed == 3  # three distinct texts over both calls
    # texts that differ only past the encoder's 256 word pieces are the same input to it: one vector
    long = " ".join(["patients with chronic kidney disease"] * 80)
    variants = [long + " the end", long + " a different end"]
    assert np.array_equal(shared(variants), embedder.embed(variants)) and shared.computed == 4


@pytest.mark.parametrize("recipe", ["wordnet_swap", "pwws"])
def test_word_level_recipes_run_offline_on_a_real_model_and_swap_words(recipe, review_model, embedder, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the attack tried to reach the network")

    monkeypatch.setattr(nltk, "download", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    model = linear_model(SharedEmbeddings.of(embedder), *review_model)
    texts = ["the film was good", "a great story", "the movie was bad", "a terrible show"]
    result = probe(model, texts, [0, 0, 1, 1], recipe, query_budget=300, seed=0)
    assert result.n == 4 and result.skipped == 0 and result.succeeded >= 1
    assert result.avg_words_perturbed >= 1 and result.queries >= result.n and result.seconds > 0
    assert probe(model, texts, [0, 0, 1, 1], recipe, query_budget=300, seed=0) == result  # the same seed, the same attacks


@pytest.mark.parametrize("self_tune", [False, True])
def test_robustness_cell_attacks_the_experiments_raw_and_curated_models_on_the_same_test_rows(topic_file, self_tune):
    folder = topic_file.parent / f"tune-{self_tune}"
    overrides = {"runs_dir": str(folder / "runs"), "experiment": {
        "self_tune": self_tune, "results_dir": str(folder / "results"), "reference_arms": [], "ablations": False,
        "robustness": {"ks": [2], "seeds": [0], "sample": 100, "query_budget": 60, "adversarial_addback": True}}}
    config = RunConfig.from_data_file(topic_file, "sentence", "topic", overrides)
    rows, labels = ingest(config.ingest).kept, sorted(TOPICS)
    records = robustness_cell(rows, config, labels, k=2, seed=0)
    assert [(r["recipe"], r["model"]) for r in records] == [(recipe, model) for recipe in ("deepwordbug", "wordnet_swap")
                                                            for model in ("raw", "curated", "curated+adversarial")]
    addback = [r for r in records if r["model"] == "curated+adversarial"]
    records = [r for r in records if r["model"] != "curated+adversarial"]
    for record in addback:  # the curated rows plus the add-back children that passed the gates
        assert record["n_train"] >= records[1]["n_train"] and record["rows"] == records[0]["rows"]
    expected = attacked_rows(draw_k_shot(rows, 2, 0), 100, 0)
    assert {eval_part(text) for text in expected.column("text").to_pylist()} == {"test"} and expected.num_rows >= 5
    for record in records:
        assert record["rows"] == rows_digest(expected) and record["n"] == expected.num_rows and record["eval_split"] == "test"
        assert record["succeeded"] + record["failed"] + record["skipped"] == record["n"]
        assert record["query_budget"] == 60 and record["queries"] >= record["n"] and record["seconds"] > 0
    # every test row is sampled here, so each model's clean accuracy is the experiment's for the same arm
    experiment, _ = run_cell(rows, config, labels, 2, 0)
    scored = {r["arm"]: r for r in experiment if r.get("noise", "none") == "none"}
    for record in records:
        arm = scored[record["model"]]
        assert (record["clean_accuracy"], record["n_train"], record["head_l2"]) == (round(arm["accuracy"], 4), arm["n_train"], arm["head_l2"])
    if self_tune:  # the tuning keeps curation off here, as the experiment's does
        assert records[1]["curation"] is scored["curated"]["decisions"][-1]["on"] is False
    else:  # every stage: a different model, trained on more rows
        assert records[1]["n_train"] > records[0]["n_train"] and records[1]["clean_accuracy"] != records[0]["clean_accuracy"]
    # both models read one cache: the curated model's attacks embed fewer texts than the raw model's
    assert records[1]["texts_embedded"] < records[0]["texts_embedded"] and records[3]["texts_embedded"] < records[2]["texts_embedded"]


def test_recipes_are_checked_where_they_are_configured():
    assert typing.get_args(typing.get_args(RobustnessConfig.model_fields["recipes"].annotation)[0]) == RECIPES
    assert RobustnessConfig().recipes == ["deepwordbug", "wordnet_swap"] and RobustnessConfig().sample == 100
    with pytest.raises(ValidationError, match="'deepwordbug', 'wordnet_swap', 'pwws' or 'pruthi'"):
        RobustnessConfig(recipes=["textfooler"])
    with pytest.raises(ValidationError, match="recipe listed more than once: pwws"):
        RobustnessConfig(recipes=["pwws", "deepwordbug", "pwws"])
    with pytest.raises(ValueError, match="offline recipes"):
        probe(lambda texts: np.ones((len(texts), 2)) / 2, ["a text"], [0], "textfooler")
    demo = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    result = CliRunner().invoke(app, ["robustness", "-c", str(demo), "--recipe", "pwws", "--recipe", "textfooler"])
    assert result.exit_code == 2 and "experiment.robustness.recipes.1" in result.stderr and "textfooler" in result.stderr


def test_the_table_pairs_the_models_seed_by_seed_with_t_intervals():
    from flows.robustness import summary_table

    def record(model, seed, rate, words, seconds, recipe="deepwordbug"):
        return {"recipe": recipe, "k": 10, "model": model, "seed": seed, "n": 100, "succeeded": 40, "failed": 10, "clean_accuracy": 0.5,
                "attack_success_rate": rate, "avg_words_perturbed": words, "seconds": seconds}

    records = [record("raw", seed, rate, words, 10.0) for seed, rate, words in ((0, 0.8, 5), (1, 0.9, 6), (2, 1.0, 7))]
    records += [record("curated", seed, rate, words, 5.0) for seed, rate, words in ((0, 0.7, 4), (1, 0.9, float("nan")), (2, 0.8, 6))]
    records.append(record("raw", 0, 0.5, 3, 1.0, recipe="wordnet_swap"))  # no curated model for this seed: not in the table
    lines = summary_table(records).splitlines()
    assert len(lines) == 3
    assert lines[2] == ("| deepwordbug | 10 | curated | 3 | 100 | 50.0 / 50.0 | 90.0 [65.2, 114.8] | 80.0 [55.2, 104.8] | -10.0 [-34.8, +14.8] "
                        "| 6.00 [3.52, 8.48] | 5.00 [-7.71, 17.71] | 0.500 / 0.500 | 15 [15, 15] |")


def test_with_the_typo_reader_the_curated_model_reads_through_it_and_a_raw_model_with_it_shows_its_share(topic_file):
    folder = topic_file.parent / "typo-reader"
    overrides = {"runs_dir": str(folder / "runs"), "experiment": {
        "self_tune": False, "results_dir": str(folder / "results"), "reference_arms": [], "ablations": False, "typo_reader": "on",
        "robustness": {"ks": [2], "seeds": [0], "sample": 100, "query_budget": 60, "recipes": ["deepwordbug"]}}}
    config = RunConfig.from_data_file(topic_file, "sentence", "topic", overrides)
    rows, labels = ingest(config.ingest).kept, sorted(TOPICS)
    records = {r["model"]: r for r in robustness_cell(rows, config, labels, k=2, seed=0)}
    assert set(records) == {"raw", "curated+typo_reader", "raw+typo_reader"}
    assert len({r["rows"] for r in records.values()}) == 1  # the same attacked rows for every model
    assert records["raw+typo_reader"]["n_train"] == records["raw"]["n_train"] < records["curated+typo_reader"]["n_train"]
