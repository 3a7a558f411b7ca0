import numpy as np
import polars as pl
import pytest

from schemas import minhash
from schemas.minhash import MinHashParams, estimated_jaccard, eval_duplicate_of, minhash_signatures, optimal_bands, signed_keys
from schemas.text_keys import key_hashes
from stages.near_duplicates import groups_from_hashes, sorted_unique

WORDS = "the patient was treated with a new drug and the pain decreased over two weeks of follow up".split()


def _true_jaccard(a: str, b: str, k: int = 2) -> float:
    def shingles(text):
        words = text.split()
        return {tuple(words[i : i + k]) for i in range(len(words) - k + 1)}

    return len(shingles(a) & shingles(b)) / len(shingles(a) | shingles(b))


def _document(rng, n=150):
    vocabulary = [f"w{i}" for i in range(5000)]
    return " ".join(rng.choice(vocabulary, size=n))


def test_signature_agreement_estimates_jaccard():
    rng = np.random.default_rng(1)
    errors = []
    for _ in range(40):
        original = _document(rng).split()
        edited = list(original)
        for position in rng.choice(len(edited), size=int(rng.integers(2, 30)), replace=False):
            edited[position] = "edit"
        a, b = " ".join(original), " ".join(edited)
        errors.append(estimated_jaccard(a, b) - _true_jaccard(a, b))
    assert abs(np.mean(errors)) < 0.03
    assert np.std(errors) < 0.08


def test_signatures_are_deterministic_and_shaped():
    keys = pl.Series(["a b c d", "x y", "single"])
    first = minhash_signatures(keys, MinHashParams())
    assert first.shape == (3, 128) and first.dtype == np.uint16
    assert np.array_equal(first, minhash_signatures(keys, MinHashParams()))


def test_identical_texts_agree_fully_and_unrelated_ones_do_not():
    rng = np.random.default_rng(2)
    a, b = _document(rng), _document(rng)
    assert estimated_jaccard(a, a) == 1.0
    assert estimated_jaccard(a, b) < 0.1


def test_optimal_bands_use_all_permutations_sensibly():
    bands, rows = optimal_bands(0.7, 128)
    assert bands * rows <= 128
    # probability that a pair at the threshold collides should be high, far below it low
    assert 1 - (1 - 0.85**rows) ** bands > 0.95
    assert 1 - (1 - 0.3**rows) ** bands < 0.05


def test_duplicate_groups_link_near_copies_only():
    rng = np.random.default_rng(3)
    base = _document(rng).split()
    near = list(base)
    near[10] = "changed"
    other = _document(rng)
    keys = pl.Series([" ".join(base), " ".join(near), other, " ".join(base)])
    exact, groups = groups_from_hashes(key_hashes(keys), MinHashParams(), signed_keys(keys, MinHashParams()))
    assert exact[0] == exact[3] != exact[1]
    assert groups[0] == groups[1] == groups[3] != groups[2]
    exact_only, same = groups_from_hashes(key_hashes(keys), None, None)
    assert np.array_equal(exact_only, same)


def test_threshold_is_validated():
    with pytest.raises(ValueError, match="threshold"):
        MinHashParams(threshold=1.5)


@pytest.mark.parametrize("size", [0, 1, 1000])
def test_sorted_unique_equals_numpy_unique(size):
    values = np.random.default_rng(size).integers(-50, 50, size=size).astype(np.int64)
    assert np.array_equal(sorted_unique(values), np.unique(values))


def test_short_texts_agree_about_as_much_as_they_overlap():
    """A few shingles in 128 bins: agreement still estimates Jaccard (copying runs of bins inflated it)."""
    rng = np.random.default_rng(4)
    errors = []
    for _ in range(200):
        stem = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 5))))
        a, b = f"{stem} {rng.choice(WORDS)}x", f"{stem} {rng.choice(WORDS)}y"  # same stem, different last word
        errors.append(estimated_jaccard(a, b) - _true_jaccard(a, b))
    assert abs(np.mean(errors)) < 0.03
    # about 1 pair in 64 loses its shared shingle to a bin collision; the rest lie close (copying runs: std 0.22)
    assert np.std(errors) < 0.1 and np.percentile(np.abs(errors), 95) < 0.15


def test_eval_duplicates_are_found_directly_and_do_not_depend_on_other_rows():
    rng = np.random.default_rng(5)
    documents = [_document(rng, 80) for _ in range(4)]
    edited = documents[0].split()
    edited[5] = "changed"
    keys = pl.Series([documents[0], " ".join(edited), documents[1], documents[2], documents[2], documents[3], documents[0]])
    is_eval = np.array([True, False, False, True, False, False, False])
    found = eval_duplicate_of(key_hashes(keys), is_eval, MinHashParams(), signed_keys(keys, MinHashParams()))
    assert found.tolist() == [-1, 0, -1, -1, 3, -1, 0]  # near copy, exact copy, exact copy of the first eval row
    assert eval_duplicate_of(key_hashes(keys), is_eval, None, None).tolist() == [-1, -1, -1, -1, 3, -1, 0]
    subset = [0, 1, 3]  # the same answer for a row whatever other non-eval rows are present
    alone = eval_duplicate_of(key_hashes(keys.gather(subset)), is_eval[subset], MinHashParams(), signed_keys(keys.gather(subset), MinHashParams()))
    assert alone.tolist() == [-1, 0, -1]


def test_eval_partners_per_bucket_are_bounded():
    """A template shared by many eval and non-eval rows compares each row with few eval rows, not all of them."""
    stem = " ".join(WORDS * 2)  # 30 shared words: nearly every row of the template lands in one bucket
    keys = pl.Series([f"{stem} name{index}" for index in range(400)])
    is_eval = np.arange(400) % 2 == 0
    signatures = signed_keys(keys, MinHashParams())
    members = np.arange(400)
    bands, rows = MinHashParams().bands
    bucket = minhash.bucket_keys(signatures, members, 0, rows)
    order = np.lexsort((members, is_eval, bucket))
    pairs = minhash._cross_pairs(bucket[order], members[order], is_eval[order])
    per_row = np.bincount(pairs[:, 0], minlength=400)
    _, sizes = np.unique(bucket, return_counts=True)
    assert sizes.max() > 200  # over 100 eval rows share one bucket
    assert 0 < per_row.max() <= 16
    assert (per_row[is_eval] == 0).all() and is_eval[pairs[:, 1]].all()
