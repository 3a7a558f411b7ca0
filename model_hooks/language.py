"""Offline language identification: lingua (models ship in its wheel) plus common-word lists."""

from __future__ import annotations

from functools import lru_cache

import polars as pl

# Only the first characters are looked at: enough to tell a language, and it bounds the cost
# of very long texts.
_PREFIX_CHARS = 1000
_COMMON_WORDS = 100


@lru_cache(maxsize=1)
def _detector():
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect_languages(texts: list[str]) -> list[str | None]:
    """ISO 639-1 code (lower case) per text, or None where the detector cannot decide."""
    detected = _detector().detect_languages_in_parallel_of([text[:_PREFIX_CHARS] for text in texts])
    return [None if language is None else language.iso_code_639_1.name.lower() for language in detected]


@lru_cache(maxsize=8)
def _common_words(languages: tuple[str, ...]) -> pl.Series:
    """The most frequent words of each language (wordfreq's offline lists)."""
    from wordfreq import available_languages, top_n_list

    known = available_languages()
    words: set[str] = set()
    for code in languages:
        if code in known:  # a language without a list sends all its texts to the detector
            words.update(top_n_list(code, _COMMON_WORDS))
    return pl.Series("word", sorted(words), dtype=pl.String)


def common_word_share(texts: pl.Series, languages: tuple[str, ...]) -> pl.Series:
    """Share of each text's words (in its first characters) among the commonest words of `languages`."""
    common = _common_words(languages)
    words = pl.DataFrame({"text": texts.str.slice(0, _PREFIX_CHARS).str.to_lowercase()}).select(
        pl.col("text").str.extract_all(r"\p{L}+").alias("word")
    )
    shares = words.select(pl.col("word").list.eval(pl.element().is_in(common.implode())).list.mean().fill_null(0.0))
    return shares.to_series()
