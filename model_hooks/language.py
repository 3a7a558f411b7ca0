"""Offline language identification: lingua (models ship in its wheel) plus stopword lists."""

from __future__ import annotations

from functools import lru_cache

import polars as pl

# Only the first characters are looked at: enough to tell a language, and it bounds the cost
# of very long texts.
_PREFIX_CHARS = 400


@lru_cache(maxsize=1)
def _detector():
    from lingua import LanguageDetectorBuilder

    return LanguageDetectorBuilder.from_all_languages().with_low_accuracy_mode().build()


def detect_languages(texts: list[str]) -> list[str | None]:
    """ISO 639-1 code (lower case) per text, or None where the detector cannot decide."""
    detected = _detector().detect_languages_in_parallel_of([text[:_PREFIX_CHARS] for text in texts])
    return [None if language is None else language.iso_code_639_1.name.lower() for language in detected]


@lru_cache(maxsize=8)
def _stopwords(languages: tuple[str, ...]) -> pl.Series:
    from stop_words import StopWordError, get_stop_words

    words: set[str] = set()
    for code in languages:
        try:
            words.update(get_stop_words(code))
        except StopWordError:
            continue  # no list for this language: its texts go to the detector
    return pl.Series("stopword", sorted(words), dtype=pl.String)


def stopword_share(texts: pl.Series, languages: tuple[str, ...]) -> pl.Series:
    """Share of each text's words (in its first characters) that are stopwords of `languages`."""
    stopwords = _stopwords(languages)
    words = (
        pl.DataFrame({"text": texts.str.slice(0, _PREFIX_CHARS).str.to_lowercase()})
        .with_row_index("doc")
        .select("doc", pl.col("text").str.extract_all(r"\p{L}+").alias("word"))
    )
    shares = words.select(
        pl.col("word").list.eval(pl.element().is_in(stopwords.implode())).list.mean().fill_null(0.0)
    )
    return shares.to_series()
