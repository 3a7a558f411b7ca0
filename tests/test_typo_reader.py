"""The typo reader (model_hooks/spelling.py) and its place in the experiment: which arms read through it, what it learns from."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from experiments.noise import noisy_copy, parse_noise
from experiments.runner import TYPO_READER_ARM, noisy_eval_sets, run_cell, scored_eval_rows, typo_reader
from flows.config import ConfigError, RunConfig
from model_hooks.spelling import TypoReader
from test_self_tuning import corpus, small_config

READER = TypoReader.from_texts(["the card arrived late", "my card was declined", "the transfer failed", "a cash withdrawal",
                                "the card", "cart wheels"])


@pytest.mark.parametrize("typo, repaired", [
    ("crd", "card"),          # a dropped letter
    ("cadr", "card"),         # neighbours transposed
    ("cxrd", "card"),         # a substitution
    ("caard", "card"),        # a doubled letter
    ("transfr", "transfer"),
    ("dec1ined", "declined"),  # an OCR confusion (1 for l)
])
def test_a_word_one_edit_from_the_vocabulary_reads_as_that_word(typo, repaired):
    assert READER.repair(f"my {typo} is gone") == f"my {repaired} is gone"


def test_the_most_frequent_neighbour_wins_and_ties_go_to_the_alphabetically_first():
    assert READER.repair_word("carx") == "card"  # card (4 uses) over cart (1)
    assert TypoReader.from_texts(["bat cat"]).repair_word("dat") == "bat"  # one use each: bat before cat


def test_known_words_short_words_numbers_and_words_without_a_neighbour_stay_as_written():
    text = "The card, 2019 & 1234: xq zzzzzz withdrawal!"
    assert READER.repair(text) == text
    assert READER.repair("Crd CRD crd") == "Card CARD card"  # the case as written
    assert READER.repair("a  crd\n\tarrived") == "a  card\n\tarrived"  # whatever lies between words stays


def test_the_reader_undoes_most_char_noise_on_text_it_knows():
    sentences = ["the customer could not activate the new card after the transfer", "my payment was declined twice yesterday evening"]
    reader = TypoReader.from_texts(sentences)
    noise = parse_noise("char@0.20")
    noisy = [noisy_copy(text, noise, seed) for text in sentences for seed in range(10)]
    repaired = sum(reader.repair(text) in sentences for text in noisy)
    assert sum(text in sentences for text in noisy) == 0 and repaired >= 12  # one-edit typos come back; OCR's rn/m (two edits) do not


def _config(**experiment):
    base = small_config()
    return base.model_copy(update={"experiment": base.experiment.model_copy(update={
        "ks": [6], "seeds": [0], "reference_arms": ["tuned_lr"], "ablations": False, "eval_split": "dev", "noise": ["char@0.20"], **experiment})})


def test_the_reader_is_on_with_the_robustness_goal_or_when_asked_and_learns_only_from_training_texts():
    rows = corpus()
    assert typo_reader(rows, _config()) is None
    assert typo_reader(rows, _config(typo_reader="off").model_copy(update={"augmentation": small_config(goal="robustness").augmentation})) is None
    for config in (_config(typo_reader="on"), _config().model_copy(update={"augmentation": small_config(goal="robustness").augmentation})):
        reader = typo_reader(rows, config)
        assert reader is not None and "follow" in reader.vocabulary and "patient" in reader.vocabulary  # unlabeled and labeled texts
        assert "secret" not in reader.vocabulary  # every eval row says SECRET


def test_a_bad_typo_reader_setting_is_a_clear_config_error(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ingest:\n  sources:\n    - path: x.csv\nexperiment:\n  typo_reader: maybe\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="typo_reader"):
        RunConfig.load(path)


def test_with_the_reader_every_arm_but_raw_and_the_references_reads_through_it_and_its_own_share_is_an_arm():
    rows = corpus()
    records, report = run_cell(rows, _config(typo_reader="on"), ["cardio", "neuro"], 6, 0)
    clean = {r["arm"]: r for r in records if r["noise"] == "none"}
    assert set(clean) == {"raw", "curated", "all_stages", "ref:tuned_lr", TYPO_READER_ARM}
    assert {arm for arm, record in clean.items() if record.get("typo_reader")} == {"curated", "all_stages", TYPO_READER_ARM}
    assert all(r.get("typo_reader") == clean[r["arm"]].get("typo_reader") for r in records)  # noisy records say so too
    assert clean[TYPO_READER_ARM]["n_train"] == clean["raw"]["n_train"]
    eval_rows = rows.filter(pc.equal(rows.column("split"), "eval"))
    assert report["typo_reader"]["vocabulary"] > 0 and report["typo_reader"]["eval_texts"] <= eval_rows.num_rows
    assert set(report["typo_reader"]["eval_texts_changed"]) == {"none", "char@0.20"}
    reader, scored = typo_reader(rows, _config(typo_reader="on")), scored_eval_rows(rows, "dev").column("text").to_pylist()
    for noise, texts in noisy_eval_sets(rows, scored, ["char@0.20"], 0).items():
        assert report["typo_reader"]["eval_texts_changed"][noise] == sum(reader.repair(text) != text for text in texts)
    without, without_report = run_cell(rows, _config(), ["cardio", "neuro"], 6, 0)
    assert "typo_reader" not in without_report and not any(r.get("typo_reader") for r in without)
    raw = lambda found: [r for r in found if r["arm"] == "raw"]  # noqa: E731
    strip = lambda found: [{key: value for key, value in r.items() if key != "train_seconds"} for r in found]  # noqa: E731
    assert strip(raw(records)) == strip(raw(without))  # the raw arm is untouched by the reader
