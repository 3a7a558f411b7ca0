"""Domain lexicon mining (weighted log-odds against wordfreq) and in-domain word vectors."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from schemas.words import STOPWORDS, is_term_like, tokenize
from stages.domain_lexicon import mine_domain_terms

ROOT = Path(__file__).resolve().parents[1]
DEMO_CSV = ROOT / "data" / "medical_abstracts" / "medical_tc_test.csv"

EVERYDAY = [
    "The people next door walked their dog in the park on a sunny day.",
    "We had coffee with friends and talked about the weekend.",
    "My brother drove to work early because the traffic was bad.",
    "The children played football after school until it got dark.",
    "She bought bread, milk and apples at the shop on the corner.",
    "It rained all day, so we stayed home and watched a film.",
    "Many people like to read the news before breakfast.",
    "Our neighbours are painting the fence this summer.",
    "He forgot his keys and had to wait outside for an hour.",
    "The train was late again, and everyone on the platform was annoyed.",
    "They planned a small party for their mother's birthday.",
    "I cleaned the kitchen and then took out the rubbish.",
    "The weather was cold, but people still went to the beach.",
    "After dinner we played cards and listened to music.",
    "A lot of people visited the market on a busy day in town.",
]
PLANTED = {
    "cardiomyopathy": "Her aunt was told that the cardiomyopathy had not changed.",
    "stent": "His uncle said the stent felt fine after the walk.",
    "troponin": "The troponin result came back from the clinic on Monday.",
}
RARE_TERM = "echocardiogram"  # planted exactly twice


def toy_corpus() -> list[str]:
    """200 short documents of everyday English; each planted sentence is in about half of them."""
    rng = random.Random(0)
    documents = []
    for index in range(200):
        sentences = rng.sample(EVERYDAY, 3)
        for sentence in PLANTED.values():
            if rng.random() < 0.5:
                sentences.insert(rng.randrange(len(sentences) + 1), sentence)
        if index in (7, 120):
            sentences.append(f"Nobody mentioned the {RARE_TERM} at lunch.")
        documents.append(" ".join(sentences))
    return documents


def test_tokenize_keeps_internal_hyphens_and_apostrophes():
    assert tokenize("Non-small cell CARCINOMA, Crohn’s disease; COVID-19 -- 'quoted' x_y") == [
        "non-small", "cell", "carcinoma", "crohn's", "disease", "covid-19", "quoted", "x", "y",
    ]


def test_planted_domain_words_top_the_toy_lexicon():
    documents = toy_corpus()
    terms = mine_domain_terms(documents)
    words = [word for word, _ in terms]
    assert set(words[: len(PLANTED)]) == set(PLANTED)
    # Everyday words are frequent in the toy corpus but ordinary in English: below every planted word.
    lowest_planted = min(z for word, z in terms if word in PLANTED)
    for common in ("people", "day", "played"):
        assert common in tokenize(" ".join(documents))
        assert all(z < lowest_planted for word, z in terms if word == common)
    assert "the" not in words and "and" not in words
    assert all(z >= 3.0 for _, z in terms)
    assert [z for _, z in terms] == sorted((z for _, z in terms), reverse=True)


def test_mining_is_deterministic_and_order_free():
    documents = toy_corpus()
    first = mine_domain_terms(documents, top_n=50)
    assert mine_domain_terms(documents, top_n=50) == first
    assert mine_domain_terms(list(reversed(documents)), top_n=50) == first
    assert len(first) == 50


def test_min_count_is_respected():
    documents = toy_corpus()
    assert RARE_TERM not in dict(mine_domain_terms(documents, min_count=3))
    assert RARE_TERM in dict(mine_domain_terms(documents, min_count=2))
    counts = {}
    for token in tokenize(" ".join(documents)):
        counts[token] = counts.get(token, 0) + 1
    assert all(counts[word] >= 30 for word, _ in mine_domain_terms(documents, min_count=30))


def test_top_terms_on_demo_abstracts_are_medical():
    if not DEMO_CSV.is_file():
        pytest.skip("demo data not present")
    import polars as pl
    from wordfreq import top_n_list

    texts = pl.read_csv(DEMO_CSV)["medical_abstract"].head(1000).to_list()
    top = [word for word, _ in mine_domain_terms(texts, top_n=30)]
    assert len(top) == 30
    assert "patients" in top[:3]
    medical = {"carcinoma", "tumor", "myocardial", "infarction", "therapy", "coronary", "artery",
               "cardiac", "pulmonary", "renal", "ischemia", "disease", "lesions", "ventricular"}
    assert len(medical & set(top)) >= 8, top
    # No function words: checked against wordfreq's most common English words, not only our own list.
    common_english = set(top_n_list("en", 100))
    assert not set(top) & (common_english | STOPWORDS), top
    assert all(is_term_like(word) for word in top)


# ---- word vectors --------------------------------------------------------------------------

DRUG_TEMPLATES = [
    "the patient took {} for the headache",
    "she swallowed two {} tablets with water",
    "a daily dose of {} eased his back pain",
    "the nurse gave {} to reduce the fever",
    "he keeps {} in the kitchen drawer for cramps",
]
DEVICE_TEMPLATES = [
    "the surgeon placed a {} in the blocked artery",
    "a {} was threaded through the vein",
    "the cardiologist removed the old {} last spring",
    "imaging showed the {} inside the vessel wall",
]


def drug_corpus(size: int = 400) -> list[str]:
    """Sentences where aspirin, ibuprofen, 'aspirins' and 'ibu-400' share every context."""
    rng = random.Random(0)
    sentences = []
    for _ in range(size):
        if rng.random() < 0.5:
            drug = rng.choice(["aspirin", "ibuprofen", "aspirins", "ibu-400"])
            sentences.append(rng.choice(DRUG_TEMPLATES).format(drug))
        else:
            sentences.append(rng.choice(DEVICE_TEMPLATES).format(rng.choice(["stent", "catheter"])))
    return sentences


TOY_VECTOR_ARGS = dict(vector_size=20, min_count=2, epochs=30, window=3)
# More than gensim's 10,000-word job per epoch, so several jobs exist and a second worker thread
# would race the first (the nondeterminism workers=1 avoids).
FINGERPRINT_SENTENCES = 4000
FINGERPRINT_ARGS = dict(vector_size=20, min_count=2, epochs=3, window=3)


def fingerprint(vectors) -> str:
    """SHA-256 of the vocabulary and every vector's bytes."""
    return hashlib.sha256("|".join(vectors.index_to_key).encode() + vectors.vectors.tobytes()).hexdigest()


_FINGERPRINT_SCRIPT = """
import sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_domain_lexicon import FINGERPRINT_ARGS, FINGERPRINT_SENTENCES, drug_corpus, fingerprint
from model_hooks.word_vectors import train_word_vectors
kv = train_word_vectors(drug_corpus(FINGERPRINT_SENTENCES), seed=3, **FINGERPRINT_ARGS)
print(fingerprint(kv))
"""


def _fingerprint_in_subprocess(hash_seed: str) -> str:
    script = _FINGERPRINT_SCRIPT.format(root=str(ROOT), tests=str(ROOT / "tests"))
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_word_vectors_are_identical_across_processes():
    from model_hooks.word_vectors import train_word_vectors

    first = _fingerprint_in_subprocess("1")
    second = _fingerprint_in_subprocess("2")
    assert len(first) == 64
    assert first == second
    kv = train_word_vectors(drug_corpus(FINGERPRINT_SENTENCES), seed=3, **FINGERPRINT_ARGS)
    assert fingerprint(kv) == first
    other_seed = train_word_vectors(drug_corpus(FINGERPRINT_SENTENCES), seed=4, **FINGERPRINT_ARGS)
    assert other_seed["aspirin"].tobytes() != kv["aspirin"].tobytes()


def test_domain_synonyms_finds_shared_context_word_and_skips_inflections():
    from model_hooks.word_vectors import domain_synonyms, train_word_vectors

    kv = train_word_vectors(drug_corpus(), **TOY_VECTOR_ARGS)
    raw = [word for word, _ in kv.most_similar("aspirin", topn=5)]
    # The inflection and the non-alphabetic token are among the raw nearest neighbours ...
    assert {"aspirins", "ibu-400", "ibuprofen"} <= set(raw)
    synonyms = domain_synonyms(kv, "aspirin", topn=5, min_similarity=0.6)
    # ... but only the other drug comes back, first.
    assert synonyms[0] == "ibuprofen"
    assert not {"aspirin", "aspirins", "ibu-400"} & set(synonyms)
    assert not set(synonyms) & STOPWORDS
    assert all(kv.similarity("aspirin", word) >= 0.6 for word in synonyms)
    assert "catheter" in domain_synonyms(kv, "Stent", topn=3)
    assert domain_synonyms(kv, "aspirin", topn=2) == synonyms[:2]
    assert domain_synonyms(kv, "aspirin", min_similarity=0.999) == []
    assert domain_synonyms(kv, "not-a-word") == []


def test_domain_inputs_are_trained_once_per_in_domain_text_whatever_the_run_seed():
    """Experiment cells with different seeds share the pool: one lexicon and one word-vector model."""
    from row_fixtures import make_rows
    from stages.domain_adaptation import DomainConfig, build_domain_inputs

    rows = make_rows(*((text, "drugs", "unlabeled") for text in drug_corpus(200)))
    config = DomainConfig(lexicon_size=20)
    first = build_domain_inputs(rows, config)
    assert first.vectors is not None and "aspirin" in first.vectors
    assert build_domain_inputs(rows, config) is first
    reseeded = build_domain_inputs(rows, config.model_copy(update={"word_vector_seed": 1}))
    assert reseeded.protected_terms == first.protected_terms
    assert reseeded.vectors["aspirin"].tobytes() != first.vectors["aspirin"].tobytes()
