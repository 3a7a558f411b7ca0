"""MinHash fingerprints of duplicate keys, and the search for near duplicates of eval rows.

Signatures are computed for a whole batch at once with numpy (one-permutation MinHash over
word n-gram hashes), so no Python object lives per document. LSH bands bucket the signatures;
a pair that shares a bucket is verified by the estimated Jaccard similarity of its signatures.
The cleaning stage (stages/near_duplicates.py groups rows) and the clean contract
(data_contracts/suites.py) both find eval leaks with `eval_duplicate_of`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

_SHINGLE_MULTIPLIERS = np.array(
    [0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD],
    dtype=np.uint64,
)


@dataclass(frozen=True)
class MinHashParams:
    """MinHash/LSH settings: Jaccard `threshold` over word `shingle_words`-grams."""

    threshold: float = 0.7
    num_perm: int = 128
    shingle_words: int = 2
    seed: int = 0

    def __post_init__(self):
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], got {self.threshold}")
        if not 1 <= self.shingle_words <= len(_SHINGLE_MULTIPLIERS):
            raise ValueError(f"shingle_words must be 1..{len(_SHINGLE_MULTIPLIERS)}, got {self.shingle_words}")

    @property
    def bands(self) -> tuple[int, int]:
        return optimal_bands(self.threshold, self.num_perm)


def _collision_probability(similarity: np.ndarray, bands: int, rows: int) -> np.ndarray:
    return 1.0 - (1.0 - similarity**rows) ** bands


# A missed duplicate costs more than an extra candidate pair, which signature agreement then
# verifies, so the banding favours recall.
_FALSE_NEGATIVE_WEIGHT = 0.7


@lru_cache(maxsize=32)
def optimal_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) minimising the weighted false-positive and false-negative probability mass."""
    grid = np.linspace(0.0, 1.0, 1001)
    below, above = grid[grid < threshold], grid[grid >= threshold]
    best, best_error = (1, num_perm), float("inf")
    for bands in range(1, num_perm + 1):
        rows = num_perm // bands
        false_positive = np.trapezoid(_collision_probability(below, bands, rows), below) if len(below) > 1 else 0.0
        false_negative = np.trapezoid(1.0 - _collision_probability(above, bands, rows), above)
        error = (1 - _FALSE_NEGATIVE_WEIGHT) * false_positive + _FALSE_NEGATIVE_WEIGHT * false_negative
        if error < best_error:
            best, best_error = (bands, rows), error
    return best


def _mix64(values: np.ndarray, seed: int) -> np.ndarray:
    """splitmix64 finaliser: spreads hash bits uniformly (needed for one-permutation binning)."""
    with np.errstate(over="ignore"):
        x = values ^ np.uint64((seed * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _shingle_hashes(keys: pl.Series, shingle_words: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of every word n-gram of every key, grouped by document, and each document's start."""
    tokens = pl.DataFrame({"key": keys}).with_row_index("doc").select(
        "doc", pl.col("key").str.split(" ").alias("token")
    ).explode("token")
    doc = tokens["doc"].to_numpy()
    token_hash = tokens["token"].hash(seed=seed).to_numpy()
    combined = token_hash * _SHINGLE_MULTIPLIERS[0]
    complete = np.ones(len(doc), dtype=bool)
    for offset in range(1, shingle_words):
        same_doc = np.zeros(len(doc), dtype=bool)
        same_doc[:-offset] = doc[offset:] == doc[:-offset]
        shifted = np.zeros_like(token_hash)
        shifted[:-offset] = token_hash[offset:]
        combined = combined + np.where(same_doc, shifted * _SHINGLE_MULTIPLIERS[offset], np.uint64(0))
        complete &= same_doc
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    # A document shorter than one shingle keeps one partial shingle: its first token's.
    keep = complete.copy()
    keep[starts] |= ~np.logical_or.reduceat(complete, starts)
    kept_doc = doc[keep]
    kept_starts = np.flatnonzero(np.r_[True, kept_doc[1:] != kept_doc[:-1]])
    return combined[keep], kept_starts


def minhash_signatures(keys: pl.Series, params: MinHashParams) -> np.ndarray:
    """One-permutation MinHash signatures (`num_perm` uint16 per key), densified by rotation.

    Each shingle is hashed once; its high bits pick one of `num_perm` bins and its low bits are
    the value, kept if it is the bin's minimum. Cost grows with the number of shingles, not with
    shingles x permutations as in classic MinHash, and equal-bin fractions still estimate the
    Jaccard similarity (Shrivastava and Li, "Densifying one permutation hashing", 2014).
    """
    n_docs, n_bins = len(keys), params.num_perm
    if n_docs == 0:
        return np.empty((0, n_bins), dtype=np.uint16)
    shingles, starts = _shingle_hashes(keys, params.shingle_words, params.seed)
    hashed = _mix64(shingles, params.seed)
    doc = np.repeat(np.arange(n_docs, dtype=np.int64), np.diff(np.r_[starts, len(shingles)]))
    bins = ((hashed >> np.uint64(32)) * np.uint64(n_bins)) >> np.uint64(32)
    empty = np.uint64(1 << 32)
    flat = np.full(n_docs * n_bins, empty, dtype=np.uint64)
    np.minimum.at(flat, doc * n_bins + bins.astype(np.int64), hashed & np.uint64(0xFFFFFFFF))
    signature = flat.reshape(n_docs, n_bins)
    return _densify(signature, empty)


# Probes an empty bin makes for a filled one before it falls back to the nearest filled bin on its right.
_MAX_PROBES = 256


@lru_cache(maxsize=4)
def _probe_bins(n_bins: int) -> np.ndarray:
    """(probe, bin) -> the bin that an empty bin reads at that probe: the same pseudo-random sequence for every text."""
    attempt = np.arange(_MAX_PROBES, dtype=np.uint64)[:, None] * np.uint64(n_bins) + np.arange(n_bins, dtype=np.uint64)
    return (_mix64(attempt, 1) % np.uint64(n_bins)).astype(np.int64)


def _densify(signature: np.ndarray, empty: np.uint64) -> np.ndarray:
    """Fill each empty bin with the value of a filled bin chosen by its own pseudo-random probe sequence.

    Optimal densification (Shrivastava, ICML 2017): two texts' bins agree with probability equal to
    their Jaccard similarity, and, unlike copying from the nearest filled bin, neighbouring empty
    bins read from unrelated filled bins. That matters for short texts (a few shingles in 128 bins):
    copying runs made whole LSH bands of two short texts with a shingle in common equal, and their
    agreement far above their similarity. A bin whose probes all miss (a text of one or two
    shingles) reads the nearest filled bin to its right.
    """
    n_bins = signature.shape[1]
    filled = (signature != empty).ravel()
    source_values = signature.ravel()
    values = source_values.copy()
    # empty bins, as flat indices, of texts with at least one filled bin
    cell = np.flatnonzero(~filled & np.repeat(filled.reshape(-1, n_bins).any(axis=1), n_bins)).astype(np.int32)
    probe_offsets = (_probe_bins(n_bins) - np.arange(n_bins)).astype(np.int32)  # source bin minus empty bin
    for attempt in range(_MAX_PROBES):
        if len(cell) == 0:
            break
        source = cell + probe_offsets[attempt].take(cell % n_bins)
        hit = filled.take(source)
        values[cell[hit]] = source_values.take(source[hit])
        cell = cell[~hit]
    if len(cell):
        row_start, bin_ = cell - cell % n_bins, cell % n_bins
        right = row_start[:, None] + (bin_[:, None] + np.arange(1, n_bins + 1)) % n_bins
        values[cell] = source_values.take(right[np.arange(len(cell)), np.argmax(filled.take(right), axis=1)])
    values = values.reshape(signature.shape)
    # b-bit MinHash (Li and Koenig 2010) with b = 16: unequal minima agree with probability 2^-16,
    # which moves a Jaccard estimate by at most 0.00002 and halves the memory of 32-bit values.
    return (values >> np.uint64(16)).astype(np.uint16)


def estimated_jaccard(first: str, second: str, params: MinHashParams = MinHashParams()) -> float:
    """Estimated Jaccard similarity of two already-normalised keys."""
    signature = minhash_signatures(pl.Series([first, second], dtype=pl.String), params)
    return float((signature[0] == signature[1]).mean())


_SIGNATURE_BATCH = 4096


def signed_keys(keys: pl.Series, params: MinHashParams) -> np.ndarray:
    """MinHash signatures of `keys`, computed in batches to bound memory."""
    if len(keys) == 0:
        return np.empty((0, params.num_perm), dtype=np.uint16)
    return np.concatenate([minhash_signatures(keys.slice(i, _SIGNATURE_BATCH), params) for i in range(0, len(keys), _SIGNATURE_BATCH)])


def bucket_keys(signatures: np.ndarray, members: np.ndarray, band: int, rows: int) -> np.ndarray:
    """One 64-bit key per member from its bins in `band`: members with equal keys share that band's bucket."""
    block = signatures[members, band * rows : (band + 1) * rows].astype(np.uint64)
    bucket = np.zeros(len(members), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for column in range(rows):
            bucket = bucket * np.uint64(0x100000001B3) ^ block[:, column]
    return bucket


_PAIR_BATCH = 65_536


def signatures_agree(signatures: np.ndarray, pairs: np.ndarray, threshold: float) -> np.ndarray:
    """Mask of row pairs whose signatures agree on at least `threshold` of their bins.

    Verified in slices: gathering both signatures of millions of pairs at once costs gigabytes.
    """
    if len(pairs) == 0:
        return np.zeros(0, dtype=bool)
    return np.concatenate([
        (signatures[chunk[:, 0]] == signatures[chunk[:, 1]]).mean(axis=1) >= threshold
        for chunk in np.array_split(pairs, -(-len(pairs) // _PAIR_BATCH))
    ])


def eval_duplicate_of(hashes: np.ndarray, is_eval: np.ndarray, params: MinHashParams | None, signatures: np.ndarray | None) -> np.ndarray:
    """Per row: the position of an eval row it is an exact or near duplicate of, directly; -1 for none (and for eval rows).

    Near means the two rows share an LSH bucket (the eval row among the first MAX_EVAL_PARTNERS
    eval rows of that bucket) and their signatures agree on at least the threshold's share: a
    relation of the two rows alone, whichever other rows are present, so a
    check on any subset of the rows (the clean contract's, on the kept rows) finds nothing that a
    run on all of them missed.
    """
    is_eval = np.asarray(is_eval, dtype=bool)
    frame = pl.DataFrame({"hash": hashes, "is_eval": is_eval}).with_row_index("row")
    first_eval = frame.filter("is_eval").group_by("hash").agg(pl.col("row").min().alias("eval_row"))
    found = frame.join(first_eval, on="hash", how="left", maintain_order="left")["eval_row"].fill_null(-1).to_numpy().astype(np.int64)
    found[is_eval] = -1
    if params is None or not is_eval.any() or is_eval.all():
        return found
    if signatures is None or len(signatures) != len(hashes):
        raise ValueError(f"near-duplicate search needs one signature per row ({len(hashes)} rows)")
    # one row per distinct key and side; a non-eval key equal to an eval key is already found
    distinct = frame.with_columns(found=found).filter(
        pl.col("hash").is_first_distinct().over("is_eval") & (pl.col("is_eval") | (pl.col("found") < 0))
    )
    members = distinct["row"].to_numpy().astype(np.int64)
    pairs = _verified_cross_pairs(signatures, params, members, distinct["is_eval"].to_numpy())
    if len(pairs):
        near = pl.DataFrame({"hash": hashes[pairs[:, 0]], "near_eval": pairs[:, 1]}).group_by("hash").agg(pl.col("near_eval").min())
        by_row = frame.join(near, on="hash", how="left", maintain_order="left")["near_eval"].fill_null(-1).to_numpy().astype(np.int64)
        found = np.where((found < 0) & ~is_eval, by_row, found)
    return found


# An LSH bucket can hold thousands of texts of one template, eval and not; each non-eval text is
# compared with at most this many of its bucket's eval texts (the first, in row order), so the
# pairs grow linearly, not with (eval rows x other rows). Eval rows are the same rows in the
# stage and in the contract, so the choice stays a relation of the pair alone.
MAX_EVAL_PARTNERS = 8


def _verified_cross_pairs(signatures: np.ndarray, params: MinHashParams, members: np.ndarray, member_is_eval: np.ndarray) -> np.ndarray:
    """Verified (non-eval row, eval row) pairs among `members` that share an LSH bucket, band by band.

    A non-eval row is dropped from later bands once a pair of it verifies (one match is enough).
    """
    bands, rows = params.bands
    found, remaining = [], np.ones(len(members), dtype=bool)
    for band in range(bands):
        bucket = bucket_keys(signatures, members, band, rows)
        shared = (
            pl.DataFrame({"bucket": bucket, "row": members, "is_eval": member_is_eval, "remaining": remaining})
            .filter(pl.col("is_eval") | pl.col("remaining"))
            .filter(pl.col("is_eval").any().over("bucket") & (~pl.col("is_eval")).any().over("bucket"))
            .sort("bucket", "is_eval", "row")
        )
        if shared.height == 0:
            continue
        pairs = _cross_pairs(shared["bucket"].to_numpy(), shared["row"].to_numpy(), shared["is_eval"].to_numpy())
        pairs = pairs[signatures_agree(signatures, pairs, params.threshold)]
        if len(pairs):
            found.append(pairs)
            remaining &= ~np.isin(members, pairs[:, 0])
    return np.concatenate(found) if found else np.empty((0, 2), dtype=np.int64)


def _cross_pairs(bucket: np.ndarray, row: np.ndarray, is_eval: np.ndarray) -> np.ndarray:
    """(non-eval row, eval row) pairs within each bucket (sorted by bucket, non-eval rows first, then by row):
    each non-eval row with the first MAX_EVAL_PARTNERS eval rows of its bucket."""
    starts = np.flatnonzero(np.r_[True, bucket[1:] != bucket[:-1]])
    sizes = np.diff(np.r_[starts, len(bucket)])
    evals = np.add.reduceat(is_eval.astype(np.int64), starts)
    first_eval = np.repeat(starts + sizes - evals, sizes)
    per_row = np.where(is_eval, 0, np.repeat(np.minimum(evals, MAX_EVAL_PARTNERS), sizes))
    left = np.repeat(np.arange(len(row)), per_row)
    offset = np.arange(len(left)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
    return np.stack([row[left], row[np.repeat(first_eval, per_row) + offset]], axis=1)
