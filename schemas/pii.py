"""PII/PHI masking with typed placeholders, vectorised with polars regexes.

Patterns are deliberately conservative for scientific text: numbers such as "p < 0.001",
"1,479 patients" or "95% CI 1.2-3.4" are not masked; only shapes that identify a person or a
record are.
"""

from __future__ import annotations

import polars as pl

# Order matters: URLs before e-mails (a URL may hold an @), IPs before phone numbers and IDs.
PII_PATTERNS: tuple[tuple[str, str], ...] = (
    ("URL", r"(?i)\b(?:https?://|ftp://|www\.)[^\s<>\"']+[^\s<>\"'.,;:!?)\]]"),
    ("EMAIL", r"(?i)\b[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}\b"),
    ("IP", r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b"),
    (
        "PHONE",
        r"(?:\+[0-9]{1,3}[\s.-]?)?(?:\([0-9]{3}\)\s?|\b[0-9]{3}[\s.-])[0-9]{3}[\s.-][0-9]{4}\b",
    ),
    (
        "ID",
        r"(?i)\b(?:[0-9]{3}-[0-9]{2}-[0-9]{4}|(?:MRN|SSN|patient\s+(?:id|no\.?|number)|record\s+(?:no\.?|number))[\s:#.]*[A-Z0-9-]{4,}|[0-9]{8,})\b",
    ),
)
PII_TYPES = tuple(name for name, _ in PII_PATTERNS)


def placeholder(pii_type: str) -> str:
    return f"<{pii_type}>"


def mask_pii_column(texts: pl.Series) -> tuple[pl.Series, dict[str, int]]:
    """Replace each PII match with its typed placeholder; return the texts and counts per type."""
    counts: dict[str, int] = {}
    for pii_type, pattern in PII_PATTERNS:
        matches = texts.str.count_matches(pattern)
        counts[pii_type] = int(matches.sum() or 0)
        if counts[pii_type]:
            texts = texts.str.replace_all(pattern, placeholder(pii_type))
    return texts, counts


def mask_pii(text: str) -> str:
    """Scalar convenience wrapper around `mask_pii_column`."""
    masked, _ = mask_pii_column(pl.Series([text], dtype=pl.String))
    return masked[0]
