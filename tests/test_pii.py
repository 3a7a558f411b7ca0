import polars as pl
import pytest

from schemas.pii import mask_pii, mask_pii_column


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Contact jane.doe@example.org for data.", "Contact <EMAIL> for data."),
        ("See https://example.org/trial?id=4 now.", "See <URL> now."),
        ("See www.example.org.", "See <URL>."),
        ("Server 192.168.10.254 logged it.", "Server <IP> logged it."),
        ("Call (555) 123-4567 today.", "Call <PHONE> today."),
        ("Call +1 555-123-4567 today.", "Call <PHONE> today."),
        ("SSN 123-45-6789 on file.", "<ID> on file."),
        ("Her number is 123-45-6789.", "Her number is <ID>."),
        ("MRN: 00123456 admitted.", "<ID> admitted."),
        ("Record 1234567890 opened.", "Record <ID> opened."),
    ],
)
def test_each_pii_type_gets_its_placeholder(text, masked):
    assert mask_pii(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "Mortality fell (p < 0.001) in 1,479 patients aged 39 +/- 5.3 yr.",
        "The odds ratio was 2.4 (95% CI 1.2-3.4) in 1990-1994.",
        "Doses of 2.5 mg/kg were given on days 1, 7 and 14.",
    ],
)
def test_scientific_numbers_are_not_masked(text):
    assert mask_pii(text) == text


def test_counts_per_type():
    texts = pl.Series(["a@b.com and c@d.org", "10.0.0.1", "no pii here"])
    masked, counts = mask_pii_column(texts)
    assert counts["EMAIL"] == 2 and counts["IP"] == 1 and counts["URL"] == 0
    assert masked.to_list() == ["<EMAIL> and <EMAIL>", "<IP>", "no pii here"]
