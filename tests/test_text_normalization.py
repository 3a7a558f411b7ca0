import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from schemas.text_normalization import (
    dedup_key_column,
    fix_unicode,
    normalize_column,
    normalize_text,
    normalize_whitespace,
    strip_markup,
)

# Text built from arbitrary characters and the fragments that trip normalisers up.
messy_text = st.lists(
    st.one_of(
        st.text(st.characters(codec="utf-8"), max_size=4),
        st.sampled_from(["<p>", "</p>", "<br/>", "&amp;", "&lt;", "&#233;", "Ã©", "â€™", "\u00a0", "\t", "\n", "\u200b", " "]),
    ),
    max_size=15,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(messy_text)
def test_normalize_text_is_idempotent(text):
    once = normalize_text(text)
    assert normalize_text(once) == once


@settings(max_examples=200, deadline=None)
@given(messy_text)
def test_normalize_whitespace_is_idempotent_and_trimmed(text):
    once = normalize_whitespace(text)
    assert normalize_whitespace(once) == once
    assert once == once.strip()
    assert "  " not in once


@settings(max_examples=100, deadline=None)
@given(st.lists(messy_text, min_size=1, max_size=8))
@example(["0\x1f0", "tab\tand\x0bvertical", "plain ascii"])  # ASCII control characters: ftfy drops most of them
def test_column_normalisation_matches_the_scalar_definition(texts):
    normalized, _ = normalize_column(pl.Series(texts, dtype=pl.String))
    assert normalized.to_list() == [normalize_text(text) for text in texts]


def test_fix_unicode_repairs_mojibake():
    assert fix_unicode("cafÃ© â€œquotedâ€\x9d") == 'café "quoted"'


def test_strip_markup_removes_tags_scripts_and_entities():
    html = "<p>Aspirin <b>reduces</b> pain &amp; fever.</p><script>alert(1)</script>"
    assert normalize_whitespace(strip_markup(html)) == "Aspirin reduces pain & fever."


def test_strip_markup_keeps_comparisons_in_prose():
    assert strip_markup("p < 0.05 and n > 30") == "p < 0.05 and n > 30"


def test_normalize_column_reports_which_operation_changed_each_row():
    texts = pl.Series(["plain text", "cafÃ©", "<i>x</i> y", "a   b "])
    normalized, changed = normalize_column(texts)
    assert normalized.to_list() == ["plain text", "café", "x y", "a b"]
    assert changed["fixed_unicode"].to_list() == [False, True, False, False]
    assert changed["stripped_markup"].to_list() == [False, False, True, False]
    assert changed["normalized_whitespace"].to_list() == [False, False, True, True]


def test_dedup_key_ignores_case_punctuation_and_spacing():
    keys = dedup_key_column(pl.Series(["Heart  failure, acute!", "heart failure acute"]))
    assert keys[0] == keys[1] == "heart failure acute"


def test_an_empty_column_normalises_to_an_empty_column():
    texts, changed = normalize_column(pl.Series([], dtype=pl.String))
    assert texts.len() == 0 and texts.dtype == pl.String
    assert all(mask.len() == 0 for mask in changed.values())
