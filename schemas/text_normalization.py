"""Text repair: unicode (ftfy), markup stripping and whitespace normalisation.

Each operation exists as a scalar function (the definition, used by property tests) and is
applied in bulk by `normalize_column`, which runs the costly Python operations only on the
rows that need them (non-ASCII rows for ftfy, rows with tags or entities for markup).
"""

from __future__ import annotations

import html
import re

import ftfy
import polars as pl

# Every character Python's str.isspace() accepts, spelled out so Python and polars (Rust regex)
# agree on what whitespace is.
_WHITESPACE = r"[\t\n\x0b\x0c\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"
# Control and invisible characters with no meaning in classified text.
_INVISIBLE = r"[\x00-\x08\x0e-\x1b\x7f\u200b-\u200d\u2060\ufeff]"
_TAG = r"<(?:script|style)\b[^>]*>.*?</(?:script|style)\s*>|<!--.*?-->|</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>"
_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
_MARKUP_HINT = f"(?s:{_TAG})|{_ENTITY}"
# ftfy changes non-ASCII text and ASCII control characters (it drops most of them); plain printable ASCII it leaves alone.
_NEEDS_UNICODE_FIX = r"[^\t\n\r\x20-\x7e]"

_WHITESPACE_RE = re.compile(_WHITESPACE)
_INVISIBLE_RE = re.compile(_INVISIBLE)
_TAG_RE = re.compile(_TAG, re.IGNORECASE | re.DOTALL)
_ENTITY_RE = re.compile(_ENTITY)
_MAX_ROUNDS = 8


def fix_unicode(text: str) -> str:
    """Repair mojibake and odd unicode with ftfy (HTML entities are left to strip_markup)."""
    return ftfy.fix_text(text, unescape_html=False, normalization="NFC")


def strip_markup(text: str) -> str:
    """Remove HTML/XML tags, comments, script/style blocks, and decode entities."""
    for _ in range(_MAX_ROUNDS):
        stripped = _TAG_RE.sub(" ", text)
        if _ENTITY_RE.search(stripped):
            stripped = html.unescape(stripped)
        if stripped == text:
            break
        text = stripped
    return text


def normalize_whitespace(text: str) -> str:
    """Drop invisible characters, collapse whitespace runs to one space, trim the ends."""
    return _WHITESPACE_RE.sub(" ", _INVISIBLE_RE.sub("", text)).strip(" ")


def normalize_text(text: str) -> str:
    """Apply all repairs until the text stops changing (the result is a fixed point)."""
    for _ in range(_MAX_ROUNDS):
        fixed = normalize_whitespace(strip_markup(fix_unicode(text)))
        if fixed == text:
            break
        text = fixed
    return text


def _apply_where(texts: pl.Series, needs: pl.Series, function) -> pl.Series:
    """Apply a Python string function to the rows flagged by `needs`, leave the rest as they are."""
    if not needs.any():
        return texts
    values = texts.to_list()
    for index in needs.arg_true().to_list():
        values[index] = function(values[index])
    return pl.Series(texts.name, values, dtype=pl.String)


def _fix_unicode_column(texts: pl.Series) -> pl.Series:
    return _apply_where(texts, texts.str.contains(_NEEDS_UNICODE_FIX), fix_unicode)


def _strip_markup_column(texts: pl.Series) -> pl.Series:
    return _apply_where(texts, texts.str.contains(_MARKUP_HINT), strip_markup)


def _normalize_whitespace_column(texts: pl.Series) -> pl.Series:
    return (
        texts.str.replace_all(_INVISIBLE, "")
        .str.replace_all(_WHITESPACE, " ")
        .str.strip_chars(" ")
    )


NORMALIZATION_OPS = (
    ("fixed_unicode", _fix_unicode_column),
    ("stripped_markup", _strip_markup_column),
    ("normalized_whitespace", _normalize_whitespace_column),
)


def normalize_column(texts: pl.Series) -> tuple[pl.Series, dict[str, pl.Series]]:
    """Normalise a column of non-null texts; return it with a changed-row mask per operation.

    Equivalent to `normalize_text` on every row.
    """
    texts = texts.cast(pl.String)
    changed = {name: pl.Series(name, [False] * len(texts), dtype=pl.Boolean) for name, _ in NORMALIZATION_OPS}
    pending = pl.Series("pending", [True] * len(texts), dtype=pl.Boolean)
    for _ in range(_MAX_ROUNDS):
        indices = pending.arg_true()
        if len(indices) == 0:
            break
        subset = texts.gather(indices)
        before_round = subset
        for name, op in NORMALIZATION_OPS:
            after = op(subset)
            hit = after != subset
            if hit.any():
                changed[name] = changed[name].scatter(indices.filter(hit), True)
            subset = after
        round_changed = subset != before_round
        texts = texts.scatter(indices, subset)
        pending = pl.Series("pending", [False] * len(texts), dtype=pl.Boolean).scatter(indices.filter(round_changed), True)
    return texts, changed


def dedup_key_column(texts: pl.Series) -> pl.Series:
    """Case-, punctuation- and spacing-insensitive form of each text, for duplicate detection."""
    return (
        texts.str.normalize("NFKC")
        .str.to_lowercase()
        .str.replace_all(r"[^\p{L}\p{N}]+", " ")
        .str.strip_chars(" ")
    )
