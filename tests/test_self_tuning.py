"""Self-tuning from training rows only: the head's L2, the inner folds, the stage and op decisions."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from experiments.runner import scored_eval_rows
from experiments.self_tuning import GATED_STAGES, Tuning, calibrated, inner_folds, tune_pipeline
from model_hooks.trainers import L2_GRID, choose_head_l2, make_trainer, stratified_folds
from row_fixtures import make_rows
from flows.config import RunConfig
from stages.domain_adaptation import limit_pseudo_labels
from stages.ingest import eval_part


def clustered(n_classes: int, per_class: int, spread: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, 32))
    x = np.vstack([centre + spread * rng.normal(size=(per_class, 32)) for centre in centres]).astype(np.float32)
    labels = [f"c{i}" for i in range(n_classes) for _ in range(per_class)]
    return x, labels, [f"c{i}" for i in range(n_classes)]


def test_head_l2_is_chosen_from_the_grid_by_cross_validation_and_is_repeatable():
    x, labels, classes = clustered(8, 5, spread=1.0)
    best, scores = choose_head_l2(x, labels, classes, seed=0)
    assert set(scores) == set(L2_GRID) and best in L2_GRID
    assert scores[best] == max(scores.values())
    assert choose_head_l2(x, labels, classes, seed=0) == (best, scores)


def test_many_classes_with_few_rows_get_a_weaker_penalty_than_the_fixed_default():
    # 30 separable classes of 4 rows: the C=1 form (l2=1) shrinks every class towards the others
    x, labels, classes = clustered(30, 4, spread=1.5, seed=3)
    best, scores = choose_head_l2(x, labels, classes, seed=0)
    assert best < 1.0 and scores[best] > scores[1.0]


def test_stratified_folds_hold_out_every_class_in_every_fold_when_it_can():
    targets = np.repeat(np.arange(4), 6)
    folds = stratified_folds(targets, 3, seed=1)
    for fold in range(3):
        assert sorted(set(targets[folds == fold])) == [0, 1, 2, 3]
    assert np.bincount(folds).tolist() == [8, 8, 8]


def test_tuned_references_choose_c_on_the_training_rows():
    tuned, fixed = make_trainer("tuned_lr"), make_trainer("frozen_lr")
    assert tuned.tune and tuned.name == "tuned_lr" and not fixed.tune
    x, labels, classes = clustered(5, 6, spread=0.5)
    predicted = tuned.fit_predict_vectors(x, labels, x, classes, seed=0)
    assert predicted == labels


def corpus():
    """Two topics of short clinical sentences, a pool, and eval rows with secret texts."""
    topics = {"cardio": ["heart", "artery", "blood pressure", "cardiac rhythm"], "neuro": ["brain", "nerve", "seizure", "memory loss"]}
    rows = []
    for label, words in topics.items():
        for i in range(12):
            rows.append((f"The patient {i} was examined for {words[i % 4]} problems and treated with care number {i}.", label, "labeled"))
        for i in range(6):
            rows.append((f"Follow-up {i}: {words[(i + 1) % 4]} findings were stable in the clinic visit {i}.", None, "unlabeled"))
        for i in range(4):
            rows.append((f"SECRET eval row {label} {i} about {words[i % 4]}.", label, "eval"))
    return make_rows(*rows)


def small_config(typo_reader="auto", **augmentation):
    return RunConfig.model_validate({
        "ingest": {"sources": [{"path": "x.csv"}]},
        "experiment": {"typo_reader": typo_reader},
        "augmentation": {"ops": ["random_swap", "keyboard"], "max_parents_per_class": 4, "min_similarity": 0.5, **augmentation},
        "domain": {"word_vectors": False, "pseudo_per_class": 3},
        "validation": {"enabled": False},
    })


class SpyHead:
    """The experiment's head, recording every text it is shown."""

    def __init__(self, inner=None):
        self.inner = inner or make_trainer("head", head_l2=0.1)
        self.seen: set[str] = set()
        self.shown_held: list[list[str]] = []

    def fit_predict_proba(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        self.seen.update(train_texts, test_texts)
        self.shown_held.append(list(test_texts))
        return self.inner.fit_predict_proba(train_texts, train_labels, test_texts, labels, seed, families)


def test_inner_folds_hold_out_labeled_originals_and_drop_the_eval_rows():
    rows = corpus()
    folds = inner_folds(rows, seed=0, n_folds=3)
    held = [set(f.filter(pc.equal(f.column("split"), "eval")).column("id").to_pylist()) for f in folds]
    labeled = set(rows.filter(pc.equal(rows.column("split"), "labeled")).column("id").to_pylist())
    assert set().union(*held) == labeled and sum(map(len, held)) == len(labeled)  # each original held out once
    for table in folds:
        assert not any(text.startswith("SECRET") for text in table.column("text").to_pylist())


def test_tuning_never_reads_eval_rows_and_records_every_decision():
    rows = corpus()
    head = SpyHead()
    tuning = tune_pipeline(rows, small_config(), ["cardio", "neuro"], seed=0, head=head, n_folds=3)
    assert head.seen and not any(text.startswith("SECRET") for text in head.seen)
    names = [decision.name for decision in tuning.decisions]
    assert names[: len(GATED_STAGES)] == list(GATED_STAGES[::-1]) and names[-1] == "curation"
    for decision in tuning.decisions:
        change, low, high = decision.log_loss
        assert low <= change <= high
        if not decision.name.startswith("pseudo_cap:"):  # pseudo_cap: on = the cap chosen among several
            assert decision.on == (change < 0)
        assert decision.describe().startswith(f"{decision.name}: {'on' if decision.on else 'off'}, inner log-loss")
    assert tuning.inner_rows == 24
    off = frozenset(decision.name for decision in tuning.decisions if decision.name in GATED_STAGES and not decision.on)
    assert tuning.skip == (off if tuning.curate else frozenset(GATED_STAGES))
    # changing the eval rows (texts and labels) changes no decision
    changed = rows.set_column(1, "text", pc.if_else(pc.equal(rows.column("split"), "eval"), "other eval text entirely", rows.column("text")))
    again = tune_pipeline(changed, small_config(), ["cardio", "neuro"], seed=0, head=SpyHead(), n_folds=3)
    assert [d.as_record() for d in again.decisions] == [d.as_record() for d in tuning.decisions]


def test_decisions_follow_the_inner_figures():
    # children too dissimilar to help: a similarity gate at -1 lets keyboard noise at full strength through
    rows = corpus()
    tuning = tune_pipeline(rows, small_config(strength=1.0, min_similarity=-1.0, ops=["keyboard"]), ["cardio", "neuro"], seed=0,
                           head=SpyHead(), n_folds=3)
    by_name = {d.name: d for d in tuning.decisions}
    assert tuning.curate == by_name["curation"].on
    chosen = frozenset(stage for stage in GATED_STAGES if not by_name[stage].on)
    assert tuning.skip == (chosen if tuning.curate else frozenset(GATED_STAGES))


def test_a_pipeline_that_changes_nothing_is_not_curation():
    """Every stage off: the chosen rows are the raw rows, no log-loss gain, so the curated arm is the raw rows."""
    config = small_config(enabled=False).model_copy(update={"domain": small_config().domain.model_copy(update={"enabled": False})})
    tuning = tune_pipeline(corpus(), config, ["cardio", "neuro"], seed=0, head=SpyHead(), n_folds=3)
    assert not tuning.curate and tuning.skip == frozenset(GATED_STAGES) and not tuning.dropped_ops
    assert [d.name for d in tuning.decisions][-1] == "curation" and not tuning.decisions[-1].on


def test_too_few_rows_for_two_folds_means_no_curation():
    rows = make_rows(("one cardio text here", "cardio", "labeled"), ("one neuro text here", "neuro", "labeled"))
    tuning = tune_pipeline(rows, small_config(), ["cardio", "neuro"], seed=0, head=SpyHead(), n_folds=3)
    assert not tuning.curate and [d.name for d in tuning.decisions] == ["curation"]


def test_the_experiment_scores_only_the_configured_half_of_the_eval_rows():
    rows = corpus()
    test_rows = scored_eval_rows(rows, "test")
    dev_rows = scored_eval_rows(rows, "dev")
    assert test_rows.num_rows + dev_rows.num_rows == 8
    assert {eval_part(t) for t in test_rows.column("text").to_pylist()} <= {"test"}
    assert {eval_part(t) for t in dev_rows.column("text").to_pylist()} <= {"dev"}


@pytest.mark.parametrize("split", ["dev", "test"])
def test_eval_split_is_a_config_choice(split):
    config = RunConfig.model_validate({"ingest": {"sources": [{"path": "x.csv"}]}, "experiment": {"eval_split": split}})
    assert config.experiment.eval_split == split


def test_no_tuning_step_of_a_cell_reads_the_eval_rows():
    """Swap every eval row's label and rewrite its text: the cell's L2, decisions and training rows stay the same."""
    from experiments.runner import run_cell

    rows = corpus()
    config = small_config().model_copy(update={"experiment": small_config().experiment.model_copy(
        update={"ks": [6], "seeds": [0], "reference_arms": ["tuned_lr"], "ablations": False})})
    is_eval = pc.equal(rows.column("split"), "eval")
    flipped = rows.set_column(2, "label", pc.if_else(is_eval, pc.if_else(pc.equal(rows.column("label"), "cardio"), "neuro", "cardio"),
                                                     rows.column("label")))
    flipped = flipped.set_column(1, "text", pc.if_else(is_eval, pc.binary_join_element_wise("unrelated words ", rows.column("id"), ""),
                                                       rows.column("text")))
    _, report = run_cell(rows, config, ["cardio", "neuro"], 6, 0)
    _, again = run_cell(flipped, config, ["cardio", "neuro"], 6, 0)
    for key in ("head_l2", "head_l2_scores", "decisions", "n_train"):
        assert report[key] == again[key], key


def test_a_stage_that_cannot_run_on_the_inner_folds_is_switched_off_not_fatal(monkeypatch):
    import stages.pipeline as pipeline
    from stages.validation_checks import CheckFailed

    def failing(*args, **kwargs):
        raise CheckFailed("adversarial validation needs at least two labeled original rows")

    monkeypatch.setattr(pipeline, "validate", failing)
    config = small_config().model_copy(update={"validation": small_config().validation.model_copy(update={"enabled": True})})
    tuning = tune_pipeline(corpus(), config, ["cardio", "neuro"], seed=0, head=SpyHead(), n_folds=3)
    validate = tuning.decisions[0]
    assert validate.name == "validate" and not validate.on and "validate" in tuning.skip


def test_calibrated_loss_ignores_how_sure_a_variant_is_but_not_how_well_it_ranks():
    rng = np.random.default_rng(0)
    true = rng.integers(0, 4, size=200)
    logits = rng.normal(size=(200, 4))
    logits[np.arange(200), true] += 1.0
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sharp = np.exp(3 * logits) / np.exp(3 * logits).sum(axis=1, keepdims=True)  # same ranking, far surer
    raw_soft, raw_sharp = -np.log(soft[np.arange(200), true]), -np.log(sharp[np.arange(200), true])
    assert abs(raw_sharp.mean() - raw_soft.mean()) > 0.2
    assert calibrated(sharp, true).mean() == pytest.approx(calibrated(soft, true).mean(), abs=0.01)
    shuffled = soft[rng.permutation(200)]  # worse ranking: no temperature rescues it
    assert calibrated(shuffled, true).mean() > calibrated(soft, true).mean() + 0.2


def test_pseudo_label_cap_keeps_the_most_confident_per_class():
    rows = make_rows(*[(f"labeled {label} {i}", label, "labeled") for label in ("a", "b") for i in range(2)],
                     *[(f"pool {i}", None, "unlabeled") for i in range(8)])
    n = rows.num_rows
    origin = ["original"] * 4 + ["pseudo_labeled"] * 6 + ["original"] * 2
    split = ["labeled"] * 10 + ["unlabeled"] * 2
    labels = ["a", "a", "b", "b", "a", "a", "a", "a", "a", "b", None, None]
    confidence = [None] * 4 + [0.9, 0.5, 0.8, 0.7, 0.6, 0.4, None, None]
    for name, values in (("origin", origin), ("split", split), ("label", labels), ("label_agreement", confidence)):
        field = rows.schema.field(name)
        rows = rows.set_column(rows.schema.get_field_index(name), field, pa.array(values[:n], field.type))
    kept = limit_pseudo_labels(rows, 1.0)  # at most 2 per class (2 labeled originals each)
    pseudo = [(label, agreement) for label, agreement, origin in zip(kept.column("label").to_pylist(),
              kept.column("label_agreement").to_pylist(), kept.column("origin").to_pylist()) if origin == "pseudo_labeled"]
    assert sorted(pseudo) == [("a", 0.8), ("a", 0.9), ("b", 0.4)]
    assert kept.num_rows == n - 3
    assert Tuning(pseudo_cap=1.0).apply(rows).num_rows == kept.num_rows and Tuning().apply(rows).num_rows == n


def test_pseudo_labeled_rows_train_at_half_weight_and_children_share_their_parents_unit():
    from schemas.rows import PSEUDO_LABELS_PER_UNIT, family_keys, weights_of_families

    rows = make_rows(("original a", "a", "labeled"), ("pseudo a one", "a", "labeled"), ("pseudo a two", "a", "labeled"),
                     ("pseudo a three", "a", "labeled"), ("pseudo b one", "b", "labeled"), ("child of original a", "a", "labeled"))
    ids = rows.column("id").to_pylist()
    origin = ["original", "pseudo_labeled", "pseudo_labeled", "pseudo_labeled", "pseudo_labeled", "augmented"]
    parent = [None, None, None, None, None, ids[0]]
    for name, values in (("origin", origin), ("parent_id", parent)):
        field = rows.schema.field(name)
        rows = rows.set_column(rows.schema.get_field_index(name), field, pa.array(values, field.type))
    weights = weights_of_families(family_keys(rows))
    assert PSEUDO_LABELS_PER_UNIT == 2
    assert weights[0] == weights[5] == 0.5  # a parent and its child share one unit
    assert sorted(weights[1:4].tolist()) == [0.5, 0.5, 1.0]  # class a: a pair, then the odd one alone
    assert weights[4] == 1.0  # pairs form within a class only
    assert family_keys(rows.take([3, 2, 1, 0, 4, 5])) == [family_keys(rows)[i] for i in (3, 2, 1, 0, 4, 5)]  # by id, not position


def test_goal_robustness_scores_every_variant_on_the_held_out_rows_and_their_noisy_copies():
    rows = corpus()
    head = SpyHead()
    tuning = tune_pipeline(rows, small_config(goal="robustness", typo_reader="off"), ["cardio", "neuro"], seed=0, head=head, n_folds=3)
    assert tuning.inner_rows == 2 * 24
    assert not any(text.startswith("SECRET") for text in head.seen)
    # every held-out original is shown once more, as its char@0.10 copy
    from experiments.noise import noisy_copy, parse_noise
    originals = rows.filter(pc.equal(rows.column("split"), "labeled")).column("text").to_pylist()
    assert {noisy_copy(text, parse_noise("char@0.10"), 0) for text in originals} <= head.seen
    accuracy = tune_pipeline(rows, small_config(), ["cardio", "neuro"], seed=0, head=SpyHead(), n_folds=3)
    assert accuracy.inner_rows == 24


def test_with_the_typo_reader_every_variant_reads_the_held_out_rows_through_the_folds_own_reader():
    from experiments.noise import noisy_copy, parse_noise
    from experiments.typo_reading import typo_reader

    rows = corpus()
    config = small_config(goal="robustness")  # typo_reader auto: on with goal robustness
    head = SpyHead()
    tune_pipeline(rows, config, ["cardio", "neuro"], seed=0, head=head, n_folds=3)
    expected, changed = [], 0
    for fold_rows in inner_folds(rows, seed=0, n_folds=3):
        held = fold_rows.filter(pc.equal(fold_rows.column("split"), "eval")).column("text").to_pylist()
        texts = held + [noisy_copy(text, parse_noise("char@0.10"), 0) for text in held]
        reader = typo_reader(fold_rows, config)
        # the fold's vocabulary, like the run's, never holds the rows it is scored on
        assert reader.vocabulary == typo_reader(fold_rows.filter(pc.not_equal(fold_rows.column("split"), "eval")), config).vocabulary
        expected.append([reader.repair(text) for text in texts])
        changed += sum(read != text for read, text in zip(expected[-1], texts))
    assert changed > 0  # the reader undid some of the noise
    shown = {tuple(texts) for texts in head.shown_held}
    assert {tuple(texts) for texts in expected} <= shown
    assert len(head.shown_held) % 3 == 0 and all(tuple(texts) in {tuple(e) for e in expected} for texts in head.shown_held)
