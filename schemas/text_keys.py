"""Duplicate keys of texts: the one definition of "the same text" that cleaning and contracts share.

A text's key is its repaired, PII-masked form, case-, punctuation- and spacing-insensitive
(schemas/text_normalization.py); keys are hashed to 64 bits for exact duplicates and signed with
MinHash (schemas/minhash.py) for near duplicates.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl

from schemas.minhash import MinHashParams
from schemas.pii import mask_pii_column
from schemas.text_normalization import dedup_key_column, normalize_column


class KeySettings(Protocol):
    """The settings that decide a text's keys (stages.cleaning.CleaningConfig carries them)."""

    normalize_text: bool
    mask_pii: bool
    near_duplicates: bool

    @property
    def minhash(self) -> MinHashParams: ...


def duplicate_keys(texts: pl.Series) -> pl.Series:
    """Duplicate-detection key of already repaired texts (a text with no letters or digits keys on itself)."""
    keys = dedup_key_column(texts)
    return pl.select(pl.when(keys.str.len_chars() > 0).then(keys).otherwise(texts.str.to_lowercase())).to_series().alias("key")


def repaired_keys(texts: pl.Series, settings: KeySettings) -> pl.Series:
    """Duplicate keys of raw texts, repaired and masked exactly as the cleaning stage repairs them."""
    if settings.normalize_text:
        texts, _ = normalize_column(texts)
    if settings.mask_pii:
        texts, _ = mask_pii_column(texts)
    return duplicate_keys(texts)


def key_hashes(keys: pl.Series, seed: int = 0) -> np.ndarray:
    """64-bit hash per key: exact-duplicate grouping on 8 bytes a row instead of the text (collisions ~ n^2 / 2^65)."""
    return keys.hash(seed=seed).to_numpy()
