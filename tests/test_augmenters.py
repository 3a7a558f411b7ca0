"""Augmenters: changed, distinct, seed-deterministic variants that keep protected terms."""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from schemas.words import keeps_protected_terms
from stages.augmenters import (
    AUGMENTER_NAMES,
    WordVectorAugmenter,
    build_augmenter,
    split_sentences,
    wordnet_pos,
)

ROOT = Path(__file__).resolve().parents[1]

# Eight sentences; the protected terms occur in the title (first) and the fifth sentence only.
TEXT = (
    "Aspirin after acute myocardial infarction: a randomized trial. "
    "We studied 120 patients who received the drug or placebo for one year. "
    "Seven patients died in the placebo group during the first year. "
    "Physicians recorded blood pressure and heart rate every morning. "
    "The risk of recurrent myocardial infarction was lower with aspirin. "
    "Bleeding complications were rare and mild. "
    "Most participants tolerated the treatment well. "
    "Larger studies should confirm these encouraging results."
)
PROTECTED = frozenset({"myocardial", "infarction", "aspirin"})
# WordNet has no single-word synonym for those three, so wordnet_synonym is also tested on words it
# would change (in sentences 1, 4 and 8).
PROTECTED_FOR = {"wordnet_synonym": PROTECTED | {"trial", "physicians", "results"}}
SENTENCE_OPS = ("sentence_dropout", "sentence_shuffle", "sentence_crop")
CONTROL_OPS = ("wordnet_synonym", "random_delete", "keyboard", "ocr", "word_vector")  # would change a term
SLOW_OPS = {"eda"}  # TextAttack: ~13 s to import and build once per process


def independent_counts_kept(parent: str, child: str, terms, op: str | None = None) -> bool:
    """Reference for keeps_protected_terms, written differently (one regex per term)."""
    def count(text, term):
        return len(re.findall(rf"\b{re.escape(term)}\b", text, flags=re.IGNORECASE))

    if op in SENTENCE_OPS:  # whole sentences move or go: each term must stay present
        return all(count(child, term) >= min(1, count(parent, term)) for term in terms)
    return all(count(child, term) >= count(parent, term) for term in terms)


def toy_corpus() -> list[list[str]]:
    rng = random.Random(3)
    drugs = ["aspirin", "heparin", "warfarin", "clopidogrel"]
    people = ["patients", "participants", "subjects", "volunteers", "physicians"]
    events = ["infarction", "stroke", "bleeding", "death", "complications"]
    adjectives = ["rare", "mild", "uncommon", "minor", "lower", "recurrent"]
    templates = [
        "{p} received {d} after myocardial {e}",
        "{a} {e} was reported in {p} taking {d}",
        "the risk of {a} {e} was lower with {d}",
        "{p} tolerated the {d} treatment well",
        "larger studies should confirm these results in {p}",
    ]
    sentences = [re.findall(r"[a-z0-9]+", s.lower()) for s in split_sentences(TEXT)]
    for _ in range(400):
        sentence = rng.choice(templates).format(
            p=rng.choice(people), d=rng.choice(drugs), e=rng.choice(events), a=rng.choice(adjectives))
        sentences.append(sentence.split())
    return sentences


@pytest.fixture(scope="module")
def vectors():
    from gensim.models import Word2Vec

    from model_hooks.word_vectors import stable_hash

    model = Word2Vec(toy_corpus(), vector_size=24, window=3, min_count=1, sg=1, epochs=30,
                     workers=1, seed=7, hashfxn=stable_hash)
    return model.wv


def make(name: str, strength: float, vectors) -> object:
    if name == "word_vector":
        return WordVectorAugmenter(strength, vectors=vectors, min_similarity=-1.0, topn=5)
    return build_augmenter(name, strength)


def op_params():
    return [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_OPS else name for name in AUGMENTER_NAMES]


# --- every augmenter -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", op_params())
def test_variants_differ_are_distinct_and_deterministic(name, vectors):
    augmenter = make(name, 0.3, vectors)
    assert augmenter.name == name
    first = augmenter.augment(TEXT, 4, 11, PROTECTED)
    assert 1 <= len(first) <= 4
    assert all(" ".join(v.split()) != " ".join(TEXT.split()) for v in first)
    assert len(set(first)) == len(first)
    assert augmenter.augment(TEXT, 4, 11, PROTECTED) == first
    assert make(name, 0.3, vectors).augment(TEXT, 4, 11, PROTECTED) == first  # a fresh instance too
    by_seed = {tuple(augmenter.augment(TEXT, 2, seed, PROTECTED)) for seed in range(6)}
    assert len(by_seed) > 1, "the seed has no effect"
    assert augmenter.augment(TEXT, 0, 11, PROTECTED) == []


@pytest.mark.parametrize("name", op_params())
def test_protected_terms_survive_even_at_full_strength(name, vectors):
    protected = PROTECTED_FOR.get(name, PROTECTED)
    augmenter = make(name, 1.0, vectors)
    variants = [v for seed in range(3) for v in augmenter.augment(TEXT, 4, seed, protected)]
    assert variants
    for variant in variants:
        assert keeps_protected_terms(TEXT, variant, protected, name), variant
        assert independent_counts_kept(TEXT, variant, protected, name), variant


@pytest.mark.parametrize("name", CONTROL_OPS)
def test_without_protection_the_same_augmenter_does_change_the_terms(name, vectors):
    """The control for the test above: protection, not luck, kept the terms."""
    protected = PROTECTED_FOR.get(name, PROTECTED)
    augmenter = make(name, 1.0, vectors)
    variants = [v for seed in range(3) for v in augmenter.augment(TEXT, 4, seed, frozenset())]
    assert any(not keeps_protected_terms(TEXT, variant, protected) for variant in variants)


@pytest.mark.slow
def test_eda_protects_terms_and_the_central_check_flags_exactly_the_losses():
    eda = build_augmenter("eda", 0.5)
    unprotected = [v for seed in range(2) for v in eda.augment(TEXT, 8, seed, frozenset())]
    flags = [keeps_protected_terms(TEXT, v, PROTECTED) for v in unprotected]
    assert flags == [independent_counts_kept(TEXT, v, PROTECTED) for v in unprotected]
    assert not all(flags), "EDA without protection should lose a term at strength 0.5"
    protected = eda.augment(TEXT, 8, 0, PROTECTED)
    assert protected and all(keeps_protected_terms(TEXT, v, PROTECTED) for v in protected)


LIBRARY_OPS = ("random_swap", "random_delete", "keyboard", "ocr", pytest.param("eda", marks=pytest.mark.slow))


@pytest.mark.parametrize("name", LIBRARY_OPS)
def test_library_augmenters_never_draw_from_the_global_generators(name, monkeypatch):
    """Other threads (Prefect's, Dask's) draw from the global generators too, so an augmenter that
    seeded and used them could give different children in a flow than alone."""
    augmenter = build_augmenter(name, 0.3)
    expected = augmenter.augment(TEXT, 3, 99, PROTECTED)

    def global_generator_used(*args, **kwargs):
        raise AssertionError("drew from a global random generator")
    for function in ("random", "sample", "choice", "choices", "shuffle", "randint", "randrange", "seed"):
        monkeypatch.setattr(random, function, global_generator_used)
    for function in ("random", "randint", "choice", "seed", "shuffle", "permutation"):
        monkeypatch.setattr(np.random, function, global_generator_used)
    assert augmenter.augment(TEXT, 3, 99, PROTECTED) == expected


@pytest.mark.slow
def test_output_is_the_same_in_another_process_with_another_hash_seed(vectors):
    """Set iteration order depends on PYTHONHASHSEED; nothing may leak it into the output."""
    names = [name for name in AUGMENTER_NAMES if name != "word_vector"]
    script = (
        "import json, sys\n"
        "from stages.augmenters import build_augmenter\n"
        "text, protected, names = json.loads(sys.stdin.read())\n"
        "print(json.dumps({n: build_augmenter(n, 0.3).augment(text, 3, 5, frozenset(protected)) for n in names}))\n"
    )
    hash_seed = str(int(os.environ.get("PYTHONHASHSEED", "0") or 0) + 12345)
    completed = subprocess.run(
        [sys.executable, "-c", script], input=json.dumps([TEXT, sorted(PROTECTED), names]),
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": hash_seed}, timeout=300,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    other = json.loads(completed.stdout.strip().splitlines()[-1])
    for name in names:
        assert build_augmenter(name, 0.3).augment(TEXT, 3, 5, PROTECTED) == other[name], name


# --- keeps_protected_terms ---------------------------------------------------------------------------


def test_keeps_protected_terms_is_case_insensitive():
    assert keeps_protected_terms("Aspirin was given.", "ASPIRIN was given.", frozenset({"aspirin"}))
    assert keeps_protected_terms("aspirin was given.", "We gave Aspirin.", frozenset({"Aspirin"}))


def test_keeps_protected_terms_counts_occurrences():
    protected = frozenset({"aspirin"})
    parent = "Aspirin or placebo; aspirin reduced risk."
    assert keeps_protected_terms(parent, "Aspirin or placebo; aspirin lowered risk.", protected)
    assert not keeps_protected_terms(parent, "Aspirin or placebo reduced risk.", protected)
    assert keeps_protected_terms("aspirin helps", "aspirin helps, aspirin", protected)  # more is fine


def test_keeps_protected_terms_matches_whole_words_only():
    protected = frozenset({"aspirin"})
    assert not keeps_protected_terms("aspirin was given", "aspirins were given", protected)
    assert not keeps_protected_terms("aspirin was given", "nonaspirin was given", protected)
    assert keeps_protected_terms("aspirin was given", "aspirin-treated patients", protected)
    assert keeps_protected_terms("aspirin was given", "(aspirin) was given", protected)


def test_sentence_ops_need_each_protected_term_present_not_every_occurrence():
    protected = frozenset({"aspirin"})
    parent = "Aspirin trial. Aspirin was given. Risk fell."
    for op in SENTENCE_OPS:
        assert keeps_protected_terms(parent, "Aspirin trial. Risk fell.", protected, op)
        assert not keeps_protected_terms(parent, "A trial. Risk fell.", protected, op)
    assert not keeps_protected_terms(parent, "Aspirin trial. Risk fell.", protected, "random_delete")


def test_keeps_protected_terms_ignores_absent_terms_and_handles_hyphenated_terms():
    assert keeps_protected_terms("heparin was given", "warfarin was given", frozenset({"aspirin"}))
    assert keeps_protected_terms("aspirin", "", frozenset())
    protected = frozenset({"non-small"})
    assert keeps_protected_terms("non-small cell cancer", "Non-small cell carcinoma", protected)
    assert not keeps_protected_terms("non-small cell cancer", "non small cell cancer", protected)


# --- wordnet_synonym -------------------------------------------------------------------------------


def test_wordnet_synonym_needs_no_pos_tagger(monkeypatch):
    import nltk

    def no_tagger(*args, **kwargs):
        raise LookupError("averaged_perceptron_tagger_eng is not installed")

    monkeypatch.setattr(nltk, "pos_tag", no_tagger)
    monkeypatch.setattr(nltk.tag, "pos_tag", no_tagger)
    assert build_augmenter("wordnet_synonym", 0.5).augment(TEXT, 2, 0, PROTECTED)
    assert wordnet_pos("physicians") == ("n", "physician")
    assert wordnet_pos("reduce") == ("v", "reduce")
    assert wordnet_pos("quickly") == ("r", "quickly")
    assert wordnet_pos("xylophonics") is None


def test_wordnet_sense_counts_are_nltks_lemma_counts():
    from model_hooks.resources import load_wordnet
    from stages.augmenters import _sense_counts

    wordnet = load_wordnet()
    assert wordnet.get_version() == "3.0" and wordnet.map30 is None  # the skipped OMW map is an identity for 3.0
    lemmas = [lemma for word in ("patient", "reduce", "heart", "quickly", "blood", "run")
              for synset in wordnet.synsets(word) for lemma in synset.lemmas()]
    assert sum(lemma.count() for lemma in lemmas) > 0
    assert [_sense_counts().get(lemma.key(), 0) for lemma in lemmas] == [lemma.count() for lemma in lemmas]


def test_wordnet_synonym_keeps_capitalisation():
    text = "Physicians recorded results. Later physicians confirmed the results."
    variants = build_augmenter("wordnet_synonym", 1.0).augment(text, 4, 0, frozenset())
    assert variants
    changed = 0
    for variant in variants:
        for before, after in zip(text.split(), variant.split(), strict=True):
            if before != after:
                changed += 1
                assert before[0].isupper() == after[0].isupper(), (before, after)
                assert after[1:] == after[1:].lower()
    assert any(variant.split()[0] != "Physicians" and variant[0].isupper() for variant in variants)
    assert changed


def test_wordnet_synonym_leaves_stopwords_and_numbers_alone():
    text = "The 3 physicians treated seven patients with the drug in 2019 and reported 12.5 percent results."
    keep = {"The", "3", "seven", "with", "the", "in", "2019", "and", "12.5"}
    variants = build_augmenter("wordnet_synonym", 1.0).augment(text, 4, 1, frozenset())
    assert variants
    for variant in variants:
        pairs = list(zip(text.split(), variant.split(), strict=True))
        assert all(after == before for before, after in pairs if before in keep), variant
        assert any(after != before for before, after in pairs), variant


# --- nlpaug-backed ---------------------------------------------------------------------------------


def test_random_swap_only_moves_whole_tokens():
    """Whitespace tokens: numbers like 5.3 and '+/-' come back as written."""
    text = "Mean age was 39 +/- 5.3 yr in eight otherwise healthy snorers studied overnight."
    for variant in build_augmenter("random_swap", 0.5).augment(text, 4, 2, frozenset()):
        assert sorted(variant.lower().split()) == sorted(text.lower().split())


def test_keyboard_typos_leave_numbers_alone():
    text = "We studied 120 patients aged 39 to 71 years over 12 months."
    variants = build_augmenter("keyboard", 1.0).augment(text, 4, 0, frozenset())
    assert variants
    for variant in variants:
        assert re.findall(r"\d+", variant) == re.findall(r"\d+", text)
        assert len(variant.split()) == len(text.split())


# --- sentence ops ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SENTENCE_OPS)
def test_sentence_ops_return_nothing_for_short_texts(name):
    augmenter = build_augmenter(name, 0.5)
    assert augmenter.augment("One sentence only.", 3, 0, frozenset()) == []
    assert augmenter.augment("A title. And one sentence.", 3, 0, frozenset()) == []
    assert augmenter.augment("A title. One sentence. Another one.", 3, 0, frozenset())


@pytest.mark.parametrize("name", SENTENCE_OPS)
def test_sentence_ops_keep_the_first_sentence_and_only_known_sentences(name):
    sentences = split_sentences(TEXT)
    assert len(sentences) == 8
    for seed in range(4):
        for variant in build_augmenter(name, 0.4).augment(TEXT, 4, seed, PROTECTED):
            parts = split_sentences(variant)
            assert parts[0] == sentences[0]
            assert set(parts) <= set(sentences) and len(set(parts)) == len(parts)


def test_sentence_dropout_drops_a_share_and_keeps_every_protected_term_present():
    sentences = split_sentences(TEXT)
    # "bleeding" occurs only in the sixth sentence; the fifth repeats terms of the title
    protected = PROTECTED | {"bleeding"}
    variants = [v for seed in range(4) for v in build_augmenter("sentence_dropout", 0.25).augment(TEXT, 6, seed, protected)]
    for variant in variants:
        parts = split_sentences(variant)
        assert len(parts) == 8 - 2  # round(0.25 * 8)
        assert parts == [s for s in sentences if s in parts]  # order kept
        assert sentences[5] in parts  # the only sentence with "bleeding"
    assert any(sentences[4] not in split_sentences(v) for v in variants), "a sentence whose terms occur elsewhere may go"
    everything = build_augmenter("sentence_dropout", 1.0).augment(TEXT, 3, 0, frozenset())
    assert everything and all(len(split_sentences(v)) == 2 for v in everything)  # never all


def test_sentence_shuffle_reorders_but_keeps_every_sentence():
    sentences = split_sentences(TEXT)
    variants = build_augmenter("sentence_shuffle", 0.5).augment(TEXT, 5, 0, PROTECTED)
    assert len(variants) == 5
    for variant in variants:
        parts = split_sentences(variant)
        assert sorted(parts) == sorted(sentences) and parts != sentences


def test_sentence_crop_keeps_title_and_a_contiguous_window():
    sentences = split_sentences(TEXT)
    body = sentences[1:]
    variants = build_augmenter("sentence_crop", 0.3).augment(TEXT, 5, 0, frozenset())
    assert len(variants) == 3  # window of round(0.7 * 7) = 5 of 7: three positions
    for variant in variants:
        parts = split_sentences(variant)
        window = parts[1:]
        start = body.index(window[0])
        assert len(window) == 5 and body[start:start + 5] == window
    # "bleeding" occurs only in the sixth sentence: every window must contain it
    for variant in build_augmenter("sentence_crop", 0.3).augment(TEXT, 5, 0, PROTECTED | {"bleeding"}):
        assert sentences[5] in variant


# --- word_vector -------------------------------------------------------------------------------


def test_word_vector_needs_vectors():
    with pytest.raises(ValueError, match="word vectors"):
        build_augmenter("word_vector", 0.2)


def test_word_vector_replaces_with_neighbours_and_skips_inflections(vectors):
    augmenter = WordVectorAugmenter(0.5, vectors=vectors, min_similarity=-1.0)
    for variant in augmenter.augment(TEXT, 4, 0, PROTECTED):
        for before, after in zip(TEXT.split(), variant.split(), strict=True):
            if before != after:
                word = re.sub(r"\W+$", "", before).lower()
                assert re.sub(r"\W+$", "", after).lower() in augmenter.neighbours(word)

    from model_hooks.word_vectors import domain_synonyms

    for word in ("patients", "heparin", "bleeding", "recurrent", "treatment"):
        reference = [other for other in domain_synonyms(vectors, word, topn=50, min_similarity=-1.0)
                     if not (other.startswith(word[:5]) or word.startswith(other[:5]))]
        assert augmenter.neighbours(word) == tuple(reference[:5])
    assert augmenter.neighbours("not-in-the-vocabulary") == ()
    # number words neither change nor come in ("Seven", "one", "first" are in the toy vocabulary)
    everything = WordVectorAugmenter(1.0, vectors=vectors, min_similarity=-1.0)
    numbers = {"seven", "one", "first", "120"}
    for variant in everything.augment(TEXT, 4, 0, PROTECTED):
        pairs = list(zip(TEXT.lower().split(), variant.lower().split(), strict=True))
        assert all(after == before for before, after in pairs if before in numbers)
        assert not any(after in numbers for before, after in pairs if before != after)

    from gensim.models import KeyedVectors

    crafted = KeyedVectors(vector_size=3)
    crafted.add_vectors(["pain", "pains", "ache", "painful", "table"],
                        np.array([[1, 0, 0], [0.99, 0.1, 0], [0.95, 0.2, 0], [0.97, 0.15, 0], [0, 0, 1]], dtype=np.float32))
    assert WordVectorAugmenter(0.5, vectors=crafted, min_similarity=0.5).neighbours("pain") == ("ache",)


# --- registry ----------------------------------------------------------------------------------


def test_registry_names_and_errors(vectors):
    assert len(AUGMENTER_NAMES) == len(set(AUGMENTER_NAMES)) == 10
    for name in AUGMENTER_NAMES:
        assert build_augmenter(name, 0.2, vectors=vectors).name == name
    with pytest.raises(ValueError, match="valid names: wordnet_synonym, eda"):
        build_augmenter("back_translation", 0.2)
    for strength in (0.0, 1.5):
        with pytest.raises(ValueError, match="strength"):
            build_augmenter("random_swap", strength)
