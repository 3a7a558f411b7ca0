import pyarrow as pa
import pytest

from data_contracts.suites import clean_suite, raw_suite, rejects_rules, with_clean_checks
from data_contracts.validate import ContractValidator, ContractViolation
from schemas.rows import make_rejects
from stages.cleaning import CleaningConfig, clean
from row_fixtures import make_rows

LABELS = ["a", "b"]
TEXT_A = "Patients with chronic heart failure were randomised to exercise training or usual care for twelve weeks."
TEXT_B = "Endoscopic findings in ulcerative colitis were compared with biopsy results from the same colon segments."
TEXT_C = "Migraine frequency fell after prophylactic treatment with a beta blocker in a crossover trial of adults."


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    return ContractValidator(tmp_path_factory.mktemp("run") / "data_docs")


def good_raw():
    return make_rows((TEXT_A, "a", "labeled"), (TEXT_B, "b", "eval"), (TEXT_C, None, "unlabeled"))


def violation(validator, name, table, rules) -> ContractViolation:
    report = validator.validate(name, table, rules)
    assert not report.success
    with pytest.raises(ContractViolation) as caught:
        report.raise_for_failures()
    return caught.value


def test_good_raw_rows_pass_and_data_docs_are_written(validator):
    report = validator.validate("00_raw", good_raw(), raw_suite(LABELS, rows_in=4, rows_rejected=1))
    assert report.success
    assert {rule["rule"] for rule in report.rules} >= {"IdsAreUnique", "LabelIsInLabelSet", "RowsAreAccountedFor"}
    assert (validator.data_docs_dir / "index.html").is_file()


def test_duplicate_ids_name_the_rule_and_the_rows(validator):
    table = good_raw()
    ids = table.column("id").to_pylist()
    table = table.set_column(0, table.schema.field("id"), pa.array([ids[0], ids[0], ids[2]]))
    error = violation(validator, "00_raw", table, raw_suite(LABELS, 3, 0))
    message = str(error)
    assert message.startswith("data contract failed at boundary 00_raw: rule IdsAreUnique")
    assert ids[0] in message


def test_label_outside_the_label_set(validator):
    table = make_rows((TEXT_A, "zebra", "labeled"), (TEXT_B, "b", "eval"))
    error = violation(validator, "00_raw", table, raw_suite(LABELS, 2, 0))
    assert [f["rule"] for f in error.failures] == ["LabelIsInLabelSet"]
    assert "zebra" in str(error)


def test_labeled_row_without_label(validator):
    table = make_rows((TEXT_A, None, "labeled"), (TEXT_B, "b", "eval"))
    error = violation(validator, "00_raw", table, raw_suite(LABELS, 2, 0))
    assert [f["rule"] for f in error.failures] == ["LabeledRowsHaveALabel"]


def test_rows_not_accounted_for(validator):
    error = violation(validator, "00_raw", good_raw(), raw_suite(LABELS, rows_in=10, rows_rejected=2))
    assert error.failures[0]["rule"] == "RowsAreAccountedFor"
    assert "observed 3, expected 8" in str(error)


def test_blank_text_and_unknown_split(validator):
    table = make_rows(("", "a", "labeled"), (TEXT_B, "b", "holdout"))
    error = violation(validator, "00_raw", table, raw_suite(LABELS, 2, 0))
    assert {f["rule"] for f in error.failures} == {"TextIsNotBlank", "SplitIsKnown"}


def test_extra_column_breaks_the_row_schema(validator):
    table = good_raw().append_column("surprise", pa.array([1, 2, 3]))
    error = violation(validator, "00_raw", table, raw_suite(LABELS, 3, 0))
    assert [f["rule"] for f in error.failures] == ["RowsHaveTheRowSchema"]


def test_clean_boundary_passes_on_real_cleaning_output(validator):
    raw = make_rows((TEXT_A, "a", "labeled"), (TEXT_A, "a", "eval"), (TEXT_B, "b", "labeled"), (TEXT_C, "b", "eval"))
    config = CleaningConfig()
    result = clean(raw, config)
    report = validator.validate(
        "10_clean", with_clean_checks(result.kept, raw, config), clean_suite(LABELS, config, raw.num_rows, result.rejected.num_rows)
    )
    assert report.success, report.rules


def test_clean_boundary_catches_a_planted_eval_leak(validator):
    long_text = f"{TEXT_A} {TEXT_C}"
    raw = make_rows((long_text, "a", "eval"), (long_text.replace("twelve", "ten"), "a", "labeled"), (TEXT_B, "b", "labeled"))
    config = CleaningConfig()
    leaked = with_clean_checks(raw, raw, config)  # as if cleaning had let the near copy through
    error = violation(validator, "10_clean", leaked, clean_suite(LABELS, config, 3, 0))
    assert [f["rule"] for f in error.failures] == ["NoRowDuplicatesAnEvalRow"]
    assert raw.column("id")[1].as_py() in str(error)


def test_clean_boundary_catches_a_changed_eval_row_and_overlong_text(validator):
    raw = make_rows((TEXT_A, "a", "eval"), (TEXT_B, "b", "labeled"))
    config = CleaningConfig(max_chars=50)
    changed = raw.set_column(1, raw.schema.field("text"), pa.array([TEXT_A.upper(), TEXT_B]))
    error = violation(validator, "10_clean", with_clean_checks(changed, raw, config), clean_suite(LABELS, config, 2, 0))
    assert {f["rule"] for f in error.failures} == {"EvalRowsAreUnchanged", "TextLengthWithinBounds"}


def test_rejects_rules(validator):
    rows = make_rows((TEXT_A, "a", "eval"), (TEXT_B, "b", "labeled"))
    rejects = make_rejects(rows, "clean", ["eval_leak", None])
    error = violation(validator, "10_clean.rejects", rejects, rejects_rules(eval_may_be_rejected=False))
    assert {f["rule"] for f in error.failures} == {"NoEvalRowIsRejected", "RejectsHaveAReason"}
    assert validator.validate("00_raw.rejects", make_rejects(rows, "ingest", ["a", "b"]), rejects_rules(True)).success


def synthetic_rows(child_text: str, child_label: str = "a", parent_id: str | None = None, op: str = "random_swap"):
    rows = make_rows((TEXT_A, "a", "labeled"), (TEXT_B, "b", "eval"))
    child = make_rows((child_text, child_label, "labeled")).to_pylist()[0]
    child.update(origin="augmented", op=op, parent_id=parent_id or rows.column("id")[0].as_py(), similarity=0.9)
    return pa.Table.from_pylist(rows.to_pylist() + [child], schema=rows.schema), rows


def synthetic_check(validator, table, raw, protected=frozenset({"heart"})):
    from data_contracts.suites import synthetic_suite, with_synthetic_checks

    checked = with_synthetic_checks(table, raw, protected, CleaningConfig())
    return validator.validate("20_augmented", checked, synthetic_suite(LABELS, ["random_swap"], table.num_rows, scored=False))


def test_augmented_boundary_passes_a_good_child(validator):
    child = TEXT_A.replace("randomised", "allocated")
    table, raw = synthetic_rows(child)
    assert synthetic_check(validator, table, raw).success


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"child_label": "b"}, "AugmentedRowsKeepTheirParentsLabel"),
        ({"child_text": TEXT_A.replace("heart", "hart")}, "AugmentedRowsKeepProtectedTerms"),
        ({"parent_id": "no-such-parent"}, "AugmentedRowsHaveALabeledParent"),
        ({"op": "mystery"}, "OpIsKnown"),
    ],
)
def test_augmented_boundary_catches_planted_violations(validator, change, rule):
    arguments = {"child_text": TEXT_A.replace("randomised", "allocated"), **change}
    table, raw = synthetic_rows(**arguments)
    report = synthetic_check(validator, table, raw)
    failed = {r["rule"] for r in report.rules if not r["success"]}
    assert rule in failed


def validated_check(validator, table, raw, scores):
    from data_contracts.suites import validated_suite, with_check_scores, with_synthetic_checks

    checked = with_check_scores(with_synthetic_checks(table, raw, frozenset(), CleaningConfig()), scores)
    columns = [name for name in scores.column_names if name != "id"]
    table_with_domain = checked.set_column(checked.schema.get_field_index("domain_score"), "domain_score",
                                           pa.array([0.5, None, 0.5], pa.float64()))
    return validator.validate("40_validated", table_with_domain, validated_suite(LABELS, ["random_swap"], table.num_rows, columns))


def test_validated_boundary_needs_a_score_from_every_enabled_check_for_every_synthetic_row(validator):
    table, raw = synthetic_rows(TEXT_A.replace("randomised", "allocated"))
    ids = table.column("id").to_pylist()
    full = pa.table({"id": ids, "score_discriminator": [0.2, None, 0.4], "score_label_consistency": [0.9, None, 0.8]})
    assert validated_check(validator, table, raw, full).success
    missing = full.set_column(2, "score_label_consistency", pa.array([0.9, None, None], pa.float64()))
    report = validated_check(validator, table, raw, missing)
    failed = [r for r in report.rules if not r["success"]]
    assert [r["rule"] for r in failed] == ["SyntheticRowsHaveEveryCheckScore"]
    assert "score_label_consistency" in str(failed[0])


def test_clean_boundary_without_eval_rows():
    raw = make_rows((TEXT_A, "a", "labeled"), (TEXT_B, "b", "labeled"))
    config = CleaningConfig()
    result = clean(raw, config)
    assert with_clean_checks(result.kept, raw, config).column("duplicates_eval_row").to_pylist() == [False, False]
