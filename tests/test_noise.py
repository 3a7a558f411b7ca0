"""Noisy copies of eval rows: deterministic per seed, the share of words asked for, never the training rows."""

import re

import pyarrow.compute as pc
import pytest

from experiments.noise import NoiseError, WordNoiseLexicon, learn_abbreviations, noisy_copy, parse_noise
from experiments.runner import noisy_eval_sets, run_cell
from flows.config import ConfigError, RunConfig
from test_self_tuning import corpus, small_config

ABSTRACT = ("Magnetic resonance imaging (MRI) of the brain showed multiple lesions in patients with relapsing sclerosis. "
            "Treatment with interferon reduced relapses over two years of careful clinical follow-up in every centre.")
WORD = re.compile(r"[A-Za-z]{3,}")


def changed_words(original: str, copy: str) -> int:
    return sum(a != b for a, b in zip(original.split(), copy.split())) + abs(len(original.split()) - len(copy.split()))


def test_noise_names_parse_to_a_canonical_form_and_bad_ones_are_clear_errors():
    assert parse_noise("char@0.1").name == "char@0.10" and parse_noise("word@0.20").kind == "word"
    for bad in ("char", "char@1.5", "typo@0.1", "char@-0.1"):
        with pytest.raises(NoiseError, match="expected <char|word>@<rate"):
            parse_noise(bad)
    config = RunConfig.model_validate({"ingest": {"sources": [{"path": "x.csv"}]}, "experiment": {"noise": ["char@0.1", "none", "char@0.10"]}})
    assert config.experiment.noise == ["char@0.10"]


def test_a_bad_noise_in_a_config_file_names_the_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("ingest: {sources: [{path: x.csv}]}\nexperiment: {noise: [char@2]}\n")
    with pytest.raises(ConfigError, match=r"experiment\.noise.*char@2"):
        RunConfig.load(path)


def test_char_noise_is_deterministic_per_seed_and_changes_the_share_of_words_asked_for():
    noise = parse_noise("char@0.10")
    first = noisy_copy(ABSTRACT, noise, seed=0)
    assert first == noisy_copy(ABSTRACT, noise, seed=0)
    assert first != noisy_copy(ABSTRACT, noise, seed=1)
    n_words = len(WORD.findall(ABSTRACT))
    assert changed_words(ABSTRACT, first) == round(0.1 * n_words)
    assert changed_words(ABSTRACT, noisy_copy(ABSTRACT, parse_noise("char@0.20"), seed=0)) == round(0.2 * n_words)
    assert noisy_copy(ABSTRACT, parse_noise("char@0.00"), seed=0) == ABSTRACT


def test_word_noise_uses_the_abbreviations_the_training_text_defines():
    abbreviations = learn_abbreviations([ABSTRACT, "The randomised controlled trial (RCT) was small."])
    assert abbreviations["magnetic resonance imaging"] == "MRI" and abbreviations["RCT"] == "randomised controlled trial"
    lexicon = WordNoiseLexicon(abbreviations)  # no synonyms: only abbreviation swaps can change the text
    copy = noisy_copy("An MRI was done before the randomised controlled trial began.", parse_noise("word@0.30"), 0, lexicon)
    assert copy == "An magnetic resonance imaging was done before the RCT began."


def test_noisy_copies_are_of_eval_texts_only_and_leave_the_training_rows_and_clean_scores_alone():
    rows = corpus()
    eval_texts = rows.filter(pc.equal(rows.column("split"), "eval")).column("text").to_pylist()
    sets = noisy_eval_sets(rows, eval_texts, ["char@0.20", "word@0.10"], seed=3)
    assert list(sets) == ["none", "char@0.20", "word@0.10"] and sets["none"] == eval_texts
    assert all(len(copies) == len(eval_texts) for copies in sets.values())
    assert sets == noisy_eval_sets(rows, eval_texts, ["char@0.20", "word@0.10"], seed=3)

    def cell(noise):
        config = small_config().model_copy(update={"experiment": small_config().experiment.model_copy(
            update={"ks": [6], "seeds": [0], "reference_arms": ["tuned_lr"], "ablations": False, "eval_split": "dev", "noise": noise})})
        return run_cell(rows, config, ["cardio", "neuro"], 6, 0)

    noisy_records, noisy_report = cell(["char@0.20"])
    clean_records, clean_report = cell([])
    assert noisy_report["n_train"] == clean_report["n_train"] and noisy_report["decisions"] == clean_report["decisions"]
    strip = lambda record: {key: value for key, value in record.items() if key != "train_seconds"}  # noqa: E731
    assert [strip(r) for r in noisy_records if r["noise"] == "none"] == [strip(r) for r in clean_records]
    assert {r["noise"] for r in noisy_records} == {"none", "char@0.20"} and {r["noise"] for r in clean_records} == {"none"}
