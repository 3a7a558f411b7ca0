import collections

import pyarrow as pa
import pyarrow.parquet as pq

from stages.cleaning import CleaningConfig, clean

ABSTRACT = (
    "Obstructive sleep apnea was studied in eight snorers after topical oropharyngeal anesthesia. "
    "Overnight sleep studies on three successive nights showed more apneas after anesthesia than after placebo, "
    "which suggests an upper airway reflex helps to keep the airway open during sleep in these patients."
)
OTHER = (
    "Gastric carcinoma patients received adjuvant chemotherapy after resection of the tumour. "
    "Survival at five years was compared with surgery alone in a randomised trial of two hundred patients, "
    "and the treated group lived longer with acceptable toxicity and fewer recurrences in the liver."
)
THIRD = (
    "Coronary angioplasty was compared with bypass grafting for patients with multivessel disease. "
    "Angina relief at one year was similar, but repeat procedures were more frequent after angioplasty, "
    "while the costs of the initial treatment were lower for the catheter based strategy in our hospital."
)


def reasons_of(result) -> dict[str, str]:
    return dict(zip(result.rejected.column("text").to_pylist(), result.rejected.column("reason").to_pylist()))


def assert_accounted(table, result):
    assert result.stats["rows_in"] == table.num_rows == result.kept.num_rows + result.rejected.num_rows
    counted = collections.Counter(result.rejected.column("reason").to_pylist())
    for key, value in result.stats.items():
        if key.startswith("dropped_"):
            assert counted.get(key.removeprefix("dropped_"), 0) == value, key


def test_filters_record_their_reasons(rows):
    table = rows(
        (ABSTRACT, "a", "labeled"),
        ("<br/> &nbsp; ", "a", "labeled"),
        ("Hello", "a", "labeled"),
        ("word " * 30_000, "b", "labeled"),
        ("Le patient a été traité avec un nouveau médicament et la douleur a diminué rapidement.", "b", "labeled"),
    )
    result = clean(table, CleaningConfig(max_chars=100_000))
    reasons = collections.Counter(result.rejected.column("reason").to_pylist())
    assert reasons == {"empty_text": 1, "too_short": 1, "too_long": 1, "wrong_language": 1}
    assert result.kept.column("text").to_pylist() == [ABSTRACT]
    details = dict(zip(result.rejected.column("reason").to_pylist(), result.rejected.column("detail").to_pylist()))
    assert details["too_short"] == "1 words" and details["too_long"] == "149999 characters"
    assert_accounted(table, result)


def test_text_is_repaired_and_pii_masked_but_eval_is_untouched(rows):
    messy = "<p>CafÃ©   patients</p> wrote to jane@example.org about   the trial results."
    messy_eval = "<p>Eval   text</p> with   &amp; entities stays exactly as it came in, mail x@y.org."
    table = rows((messy, "a", "labeled"), (messy_eval, "a", "eval"))
    result = clean(table)
    texts = result.kept.column("text").to_pylist()
    assert texts == ["Café patients wrote to <EMAIL> about the trial results.", messy_eval]
    assert result.stats["fixed_unicode"] == 1 and result.stats["stripped_markup"] == 1
    assert result.stats["masked_EMAIL"] == 1


def test_exact_duplicates_keep_one_and_prefer_labeled(rows):
    table = rows(
        (ABSTRACT.upper(), None, "unlabeled"),
        (ABSTRACT, "a", "labeled"),
        (ABSTRACT + "  ", "a", "labeled"),
        (OTHER, "b", "labeled"),
    )
    result = clean(table)
    assert result.kept.column("split").to_pylist() == ["labeled", "labeled"]
    assert collections.Counter(result.rejected.column("reason").to_pylist()) == {"exact_duplicate": 2}
    kept_id = table.column("id")[1].as_py()
    assert set(result.rejected.column("detail").to_pylist()) == {f"duplicate of {kept_id}"}
    assert_accounted(table, result)


def test_near_duplicates_are_removed_at_the_threshold(rows):
    edited = ABSTRACT.replace("eight snorers", "nine snorers").replace("placebo", "saline")
    table = rows((ABSTRACT, "a", "labeled"), (edited, "a", "labeled"), (OTHER, "a", "labeled"))
    assert reasons_of(clean(table)) == {edited: "near_duplicate"}
    assert reasons_of(clean(table, CleaningConfig(near_duplicates=False))) == {}


def test_label_conflicts_reject_every_labeled_member(rows):
    table = rows(
        (ABSTRACT, "a", "labeled"),
        (ABSTRACT, "b", "labeled"),
        (ABSTRACT.replace("eight", "8"), "a", "labeled"),
        (ABSTRACT, None, "unlabeled"),
        (OTHER, "a", "labeled"),
    )
    result = clean(table)
    reasons = result.rejected.column("reason").to_pylist()
    assert reasons == ["label_conflict"] * 3
    # the unlabeled copy carries no conflicting label, so one copy of the text survives unlabeled
    assert result.kept.column("split").to_pylist() == ["unlabeled", "labeled"]
    assert result.rejected.column("detail")[0].as_py() == "labels in group: a, b"


def test_eval_leaks_are_rejected_and_eval_rows_never_change(rows):
    near_copy = ABSTRACT.replace("eight", "ten")
    table = rows(
        (ABSTRACT, "a", "eval"),
        (ABSTRACT, "a", "eval"),
        (near_copy, "b", "labeled"),
        (ABSTRACT.lower(), None, "unlabeled"),
        (OTHER, "a", "labeled"),
        (THIRD, "b", "eval"),
    )
    result = clean(table)
    assert reasons_of(result) == {near_copy: "eval_leak", ABSTRACT.lower(): "eval_leak"}
    kept_eval = result.kept.filter(pa.compute.equal(result.kept.column("split"), "eval"))
    original_eval = table.filter(pa.compute.equal(table.column("split"), "eval"))
    assert kept_eval.equals(original_eval)
    assert_accounted(table, result)


def test_switching_off_leak_and_conflict_checks(rows):
    table = rows((ABSTRACT, "a", "eval"), (ABSTRACT, "b", "labeled"), (OTHER, "a", "labeled"), (OTHER, "b", "labeled"))
    result = clean(table, CleaningConfig(reject_eval_leaks=False, reject_label_conflicts=False, drop_duplicates=False))
    assert result.rejected.num_rows == 0


def test_language_filter_can_be_disabled_and_short_texts_are_not_judged(rows):
    french = "Le patient a été traité avec un nouveau médicament et la douleur a diminué rapidement."
    table = rows((french, "a", "labeled"), ("Bonjour mes amis", "a", "labeled"))
    assert reasons_of(clean(table)) == {french: "wrong_language"}
    assert reasons_of(clean(table, CleaningConfig(languages=None))) == {}
    assert reasons_of(clean(table, CleaningConfig(languages=["fr", "en"]))) == {}


def test_same_input_same_output_bytes(rows, tmp_path):
    table = rows((ABSTRACT, "a", "labeled"), (ABSTRACT, "b", "labeled"), (OTHER, "a", "labeled"), (THIRD, None, "unlabeled"))
    outputs = []
    for attempt in range(2):
        result = clean(table, CleaningConfig(batch_rows=2))
        path = tmp_path / f"out{attempt}.parquet"
        pq.write_table(result.kept, path)
        pq.write_table(result.rejected, tmp_path / f"rej{attempt}.parquet")
        outputs.append((path.read_bytes(), (tmp_path / f"rej{attempt}.parquet").read_bytes()))
    assert outputs[0] == outputs[1]


def test_duplicates_are_found_across_batches(rows):
    table = rows((ABSTRACT, "a", "labeled"), (OTHER, "a", "labeled"), (THIRD, "a", "labeled"), (ABSTRACT, "a", "labeled"))
    result = clean(table, CleaningConfig(batch_rows=1))
    assert result.rejected.column("reason").to_pylist() == ["exact_duplicate"]


def test_empty_table(rows):
    result = clean(rows())
    assert result.kept.num_rows == 0 and result.stats["rows_in"] == 0


def test_no_kept_row_is_a_near_duplicate_of_an_eval_row_on_templated_short_texts(rows):
    """Short texts from a few templates link in chains; every row the clean contract would flag is rejected."""
    from data_contracts.suites import with_clean_checks

    templates = ("type genus of the family {}", "a native or inhabitant of {}", "a genus of {} and related plants", "a person who studies {}")
    texts = [template.format(f"name{index}") for template in templates for index in range(150)]
    table = rows(*((text, "a", "eval" if index % 3 == 0 else "labeled") for index, text in enumerate(texts)))
    config = CleaningConfig(languages=None)
    result = clean(table, config)
    flagged = with_clean_checks(result.kept, table, config).column("duplicates_eval_row").to_pylist()
    assert not any(flagged)
    assert "eval_leak" in set(result.rejected.column("reason").to_pylist())
    assert_accounted(table, result)


def test_a_pii_masked_row_is_judged_on_its_masked_text(rows):
    """Masking leaves a placeholder that looks like markup; the contract must not repair the kept text twice."""
    from data_contracts.suites import with_clean_checks

    table = rows(("Write to for details about the results", "a", "eval"),
                 ("Write to trial@example.com for details about the results", "a", "labeled"))
    config = CleaningConfig(languages=None)
    result = clean(table, config)
    assert result.kept.num_rows == 2  # "write to email for ..." is not "write to for ..."
    assert with_clean_checks(result.kept, table, config).column("duplicates_eval_row").to_pylist() == [False, False]
