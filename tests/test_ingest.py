"""Tests of the ingest stage: every input format, column mapping, splits, ids, and bad input.

Fixtures are a handful of rows written to pytest's tmp_path; every test that reads rows also
checks that each record read is accounted for (kept + rejected == rows_in, per-reason counts).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flows.config import ConfigError, RunConfig
from schemas.rows import ROW_SCHEMA, content_id
from stages.cleaning import CleaningConfig, clean
from stages.export import to_hf_dataset
from stages.ingest import REASONS, ColumnMapping, IngestConfig, InputError, SourceConfig, eval_part, ingest, is_eval_text

# ---------------------------------------------------------------- helpers


def run(path: Path, datasets_by_source=None, **config):
    """Ingest one source at `path` and check the row accounting before returning the result."""
    source = config.pop("source", {})
    result = ingest(IngestConfig(sources=[SourceConfig(path=path, **source)], **config), datasets_by_source)
    check_accounting(result)
    return result


def check_accounting(result) -> None:
    stats = result.stats
    assert result.kept.schema == ROW_SCHEMA
    assert stats["rows_in"] == result.kept.num_rows + result.rejected.num_rows
    assert stats["rows_out"] == result.kept.num_rows
    reasons = Counter(result.rejected.column("reason").to_pylist())
    assert set(reasons) <= set(REASONS), reasons
    for reason in REASONS:
        assert stats[f"dropped_{reason}"] == reasons.get(reason, 0), reason
    assert set(result.rejected.column("stage").to_pylist()) <= {"ingest"}


def kept(result, *fields: str) -> list[tuple]:
    return [tuple(row[f] for f in fields) for row in result.kept.to_pylist()]


def rejects(result) -> list[tuple]:
    return [(row["reason"], row["detail"]) for row in result.rejected.to_pylist()]


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def sha256_is_even(text: str) -> bool:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest(), "big") % 2 == 0


ROWS = [("the first text", "pos"), ("a second text", "neg"), ("third one here", "pos")]

# ---------------------------------------------------------------- formats


def test_csv(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text,label,other\nthe first text,pos,x\n"a second, quoted\ntext",neg,y\nthird one here,pos,z\n')
    result = run(path)
    assert kept(result, "text", "label", "split") == [
        ("the first text", "pos", "labeled"),
        ("a second, quoted\ntext", "neg", "labeled"),
        ("third one here", "pos", "labeled"),
    ]
    assert result.rejected.num_rows == 0
    assert set(kept(result, "origin")) == {("original",)}


def test_tsv(tmp_path):
    path = tmp_path / "in.tsv"
    path.write_text("text\tlabel\n" + "".join(f"{t}\t{l}\n" for t, l in ROWS) + "comma, inside\tneg\n")
    result = run(path)
    assert kept(result, "text", "label") == [*ROWS, ("comma, inside", "neg")]


def test_jsonl(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "label": l, "extra": 1} for t, l in ROWS])
    result = run(path)
    assert kept(result, "text", "label", "split") == [(t, l, "labeled") for t, l in ROWS]


def test_parquet(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [t for t, _ in ROWS], "label": [l for _, l in ROWS], "n": [1, 2, 3]}), path)
    result = run(path)
    assert kept(result, "text", "label", "split") == [(t, l, "labeled") for t, l in ROWS]


def test_explicit_format_overrides_suffix(tmp_path):
    path = write_jsonl(tmp_path / "in.data", [{"text": t, "label": l} for t, l in ROWS])
    with pytest.raises(InputError, match="cannot tell the format"):
        run(path)
    assert kept(run(path, source={"format": "jsonl"}), "text") == [(t,) for t, _ in ROWS]


def _class_label_features():
    return datasets.Features({"text": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])})


def test_hf_dataset_dict_saved_to_disk(tmp_path):
    features = _class_label_features()
    dataset = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["train one", "train two"], "label": [1, 0]}, features=features),
            "test": datasets.Dataset.from_dict({"text": ["test one"], "label": [0]}, features=features),
        }
    )
    folder = tmp_path / "hf"
    dataset.save_to_disk(str(folder))
    result = run(folder)
    assert sorted(kept(result, "text", "label", "split")) == [
        ("test one", "neg", "eval"),
        ("train one", "pos", "labeled"),
        ("train two", "neg", "labeled"),
    ]


def test_hf_unsupervised_split_with_minus_one_labels(tmp_path):
    # IMDB-style: the "unsupervised" split holds ClassLabel -1 (no label).
    features = _class_label_features()
    dataset = datasets.DatasetDict(
        {
            "train": datasets.Dataset.from_dict({"text": ["train one"], "label": [1]}, features=features),
            "unsupervised": datasets.Dataset.from_dict({"text": ["no label here", "nor here"], "label": [-1, -1]}, features=features),
        }
    )
    folder = tmp_path / "imdb_like"
    dataset.save_to_disk(str(folder))
    result = run(folder)
    assert sorted(kept(result, "text", "label", "split")) == [
        ("no label here", None, "unlabeled"),
        ("nor here", None, "unlabeled"),
        ("train one", "pos", "labeled"),
    ]


def test_hf_split_without_mapping_is_an_input_error(tmp_path):
    dataset = datasets.DatasetDict({"weird": datasets.Dataset.from_dict({"text": ["a b"], "label": ["x"]})})
    with pytest.raises(InputError, match="'weird'"):
        ingest(IngestConfig(sources=[SourceConfig(path=Path("memory"))]), {0: dataset})


def test_in_memory_dataset(tmp_path):
    dataset = datasets.Dataset.from_dict(
        {"body": ["mem one", "mem two", "mem three"], "y": [0, 1, 0]}, features=datasets.Features(
            {"body": datasets.Value("string"), "y": datasets.ClassLabel(names=["neg", "pos"])}
        )
    )
    result = run(Path("not-on-disk"), {0: dataset}, columns=ColumnMapping(text="body", label="y"))
    assert kept(result, "text", "label", "split") == [
        ("mem one", "neg", "labeled"),
        ("mem two", "pos", "labeled"),
        ("mem three", "neg", "labeled"),
    ]


def test_in_memory_dataset_with_indices_mapping(tmp_path):
    # select/filter/shuffle leave the full table underneath and an indices mapping on top.
    dataset = datasets.Dataset.from_dict({"text": ["r0", "r1", "r2", "r3"], "label": ["a", "b", "c", "d"]})
    chosen = dataset.select([3, 1])
    result = run(Path("memory"), {0: chosen})
    assert kept(result, "text", "label") == [("r3", "d"), ("r1", "b")]


def test_second_source_reads_from_memory(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [{"text": "from file", "label": "x"}])
    dataset = datasets.Dataset.from_dict({"text": ["from memory"], "label": ["y"]})
    config = IngestConfig(sources=[SourceConfig(path=path), SourceConfig(path=Path("memory"))])
    result = ingest(config, {1: dataset})
    check_accounting(result)
    assert kept(result, "text", "label") == [("from file", "x"), ("from memory", "y")]


def test_column_mapping(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("abstract,condition,noise\nfirst abstract,A,1\nsecond abstract,B,2\n")
    result = run(path, columns=ColumnMapping(text="abstract", label="condition"))
    assert kept(result, "text", "label") == [("first abstract", "A"), ("second abstract", "B")]


def test_label_names_map_raw_values(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nabout tumours,1\nabout the gut,2\nabout tumours again,1\n")
    result = run(path, label_names={"1": "neoplasms", "2": "digestive"})
    assert kept(result, "text", "label") == [
        ("about tumours", "neoplasms"),
        ("about the gut", "digestive"),
        ("about tumours again", "neoplasms"),
    ]


def test_label_names_from_integer_labels_in_jsonl_and_parquet(tmp_path):
    jsonl = write_jsonl(tmp_path / "in.jsonl", [{"text": "one", "label": 1}, {"text": "two", "label": 2}])
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["one", "two"], "label": pa.array([1, 2], pa.int64())}), parquet)
    for path in (jsonl, parquet):
        result = run(path, label_names={"1": "neoplasms", "2": "digestive"})
        assert kept(result, "text", "label") == [("one", "neoplasms"), ("two", "digestive")], path


def test_label_names_unmapped_value_is_unknown_label(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nabout tumours,1\nsomething else,7\n")
    result = run(path, label_names={"1": "neoplasms"})
    assert kept(result, "text", "label") == [("about tumours", "neoplasms")]
    assert rejects(result) == [("unknown_label", "label '7'")]


def test_eval_rule_sha256_even(tmp_path):
    texts = [f"abstract number {i} about something" for i in range(24)]
    expected_eval = {t for t in texts if sha256_is_even(t)}
    assert 0 < len(expected_eval) < len(texts)  # the fixture exercises both sides
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "label": "x"} for t in texts])
    result = run(path, eval_rule="sha256_even")
    assert result.rejected.num_rows == 0
    splits = dict(kept(result, "text", "split"))
    assert {t for t, s in splits.items() if s == "eval"} == expected_eval
    assert {t for t, s in splits.items() if s == "labeled"} == set(texts) - expected_eval
    # without the rule, nothing is eval
    assert {s for _, s in kept(run(path), "text", "split")} == {"labeled"}


def test_rows_without_label_become_unlabeled(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nhas a label,pos\nno label,\nblank label,   \n")
    result = run(path)
    assert kept(result, "text", "label", "split") == [
        ("has a label", "pos", "labeled"),
        ("no label", None, "unlabeled"),
        ("blank label", None, "unlabeled"),
    ]
    jsonl = write_jsonl(tmp_path / "in.jsonl", [{"text": "labelled", "label": "pos"}, {"text": "null label", "label": None}, {"text": "no key"}])
    assert kept(run(jsonl), "text", "label", "split") == [
        ("labelled", "pos", "labeled"),
        ("null label", None, "unlabeled"),
        ("no key", None, "unlabeled"),
    ]


def test_unlabeled_input_with_label_column_null(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "just text"}, {"text": "more text"}])
    result = run(path, columns=ColumnMapping(label=None))
    assert kept(result, "text", "label", "split") == [("just text", None, "unlabeled"), ("more text", None, "unlabeled")]


def test_source_split_unlabeled_forces_the_split(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nlabelled but pool,pos\nunlabelled pool,\n")
    result = run(path, source={"split": "unlabeled"}, eval_rule="sha256_even")
    assert kept(result, "text", "label", "split") == [
        ("labelled but pool", None, "unlabeled"),
        ("unlabelled pool", None, "unlabeled"),
    ]


def test_split_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label,part\ntrain row,pos,labeled\nheld out,neg,eval\nmystery,pos,validation\nno label eval,,eval\n")
    result = run(path, columns=ColumnMapping(split="part"))
    assert kept(result, "text", "split") == [("train row", "labeled"), ("held out", "eval")]
    assert sorted(rejects(result)) == [("missing_label", None), ("unknown_split", "split 'validation'")]


# ---------------------------------------------------------------- export


def test_to_hf_dataset_class_label_round_trip(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": f"text {i}", "label": l} for i, l in enumerate(["b", "a", "c", "a"])])
    result = run(path)
    labels = ["a", "b", "c"]
    dataset = to_hf_dataset(result.kept, labels)
    assert isinstance(dataset, datasets.Dataset)
    feature = dataset.features["label"]
    assert isinstance(feature, datasets.ClassLabel)
    assert feature.names == labels
    assert dataset["label"] == [1, 0, 2, 0]
    assert [feature.int2str(v) for v in dataset["label"]] == result.kept.column("label").to_pylist()
    assert dataset["text"] == result.kept.column("text").to_pylist()
    assert dataset["id"] == result.kept.column("id").to_pylist()
    assert dataset["sample_weight"] == [1.0] * 4
    parent = result.kept.slice(0, 1).to_pylist()[0]
    child = {**parent, "id": "child", "text": "text zero", "origin": "augmented", "parent_id": parent["id"]}
    with_child = pa.concat_tables([result.kept, pa.Table.from_pylist([child], schema=result.kept.schema)])
    assert to_hf_dataset(with_child, labels)["sample_weight"] == [0.5, 1.0, 1.0, 1.0, 0.5]
    with pytest.raises(ValueError, match="not in the label set"):
        to_hf_dataset(result.kept, ["a", "b"])


# ---------------------------------------------------------------- bad input: whole file


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_missing_text_column(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    if fmt == "csv":
        path.write_text("body,label\nsome text,pos\n")
    elif fmt == "jsonl":
        write_jsonl(path, [{"body": "some text", "label": "pos"}])
    else:
        pq.write_table(pa.table({"body": ["some text"], "label": ["pos"]}), path)
    with pytest.raises(InputError) as caught:
        run(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "'text'" in message
    assert "columns present" in message and "body" in message and "label" in message


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet", "hf"])
def test_missing_label_column(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    memory = None
    if fmt == "csv":
        path.write_text("text,category\nsome text,pos\n")
    elif fmt == "jsonl":
        write_jsonl(path, [{"text": "some text", "category": "pos"}])
    elif fmt == "parquet":
        pq.write_table(pa.table({"text": ["some text"], "category": ["pos"]}), path)
    else:
        memory = {0: datasets.Dataset.from_dict({"text": ["some text"], "category": ["pos"]})}
    with pytest.raises(InputError) as caught:
        run(path, memory)
    message = str(caught.value)
    assert "\n" not in message
    assert "'label'" in message and "category" in message


def test_empty_csv(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="empty") as caught:
        run(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_jsonl(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match="empty") as caught:
        run(path)
    assert str(path) in str(caught.value)


def test_header_only_csv_has_no_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("text,label\n")
    with pytest.raises(InputError, match="no rows"):
        run(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        run(tmp_path / "absent.csv")


@pytest.mark.parametrize(
    "content",
    [
        'text,label\nfine row,pos\n"broken quote,neg\nlast row,pos\n',
        'text,label\nfine row,pos\nlast row,pos\n"broken quote at the end,neg\n',
    ],
)
def test_csv_unbalanced_quote(tmp_path, content):
    path = tmp_path / "broken.csv"
    path.write_text(content)
    with pytest.raises(InputError) as caught:
        run(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message
    assert "malformed CSV" in message


# ---------------------------------------------------------------- bad input: single rows


def test_csv_invalid_utf8_row(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"text,label\ngood row one,pos\nbad \xff\xfe bytes,neg\ngood row two,pos\n")
    result = run(path)
    assert kept(result, "text") == [("good row one",), ("good row two",)]
    [(reason, detail)] = rejects(result)
    assert reason == "invalid_utf8"
    assert "byte 4" in detail
    assert result.stats["rows_in"] == 3


def test_jsonl_invalid_utf8_line(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"text": "good one", "label": "a"}\n{"text": "bad \xff", "label": "b"}\n{"text": "good two", "label": "a"}\n')
    result = run(path)
    assert kept(result, "text") == [("good one",), ("good two",)]
    [(reason, detail)] = rejects(result)
    assert reason == "invalid_utf8"
    assert detail.startswith("line 2:")


def test_parquet_invalid_utf8_binary_text(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": pa.array([b"fine", b"bad \xff", b"also fine"], pa.binary()), "label": ["a", "b", "a"]}), path)
    result = run(path)
    assert kept(result, "text") == [("fine",), ("also fine",)]
    assert [r for r, _ in rejects(result)] == ["invalid_utf8"]


def test_missing_text(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text('text,label\nreal text,a\n,b\n"   ",c\n"\t\n",d\n')
    result = run(csv)
    assert kept(result, "text") == [("real text",)]
    assert [r for r, _ in rejects(result)] == ["missing_text"] * 3

    jsonl = write_jsonl(tmp_path / "in.jsonl", [{"text": "real", "label": "a"}, {"text": None, "label": "a"}, {"label": "a"}, {"text": "  ", "label": "a"}])
    result = run(jsonl)
    assert kept(result, "text") == [("real",)]
    assert [r for r, _ in rejects(result)] == ["missing_text"] * 3

    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["real", None, ""], "label": ["a", "a", "a"]}), parquet)
    result = run(parquet)
    assert kept(result, "text") == [("real",)]
    assert [r for r, _ in rejects(result)] == ["missing_text"] * 2


def test_unknown_label(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nfirst,pos\nsecond,maybe\nthird,neg\n")
    result = run(path, labels=["pos", "neg"])
    assert kept(result, "text", "label") == [("first", "pos"), ("third", "neg")]
    [(reason, detail)] = rejects(result)
    assert reason == "unknown_label"
    assert "maybe" in detail


def test_five_megabyte_text_passes_ingest_then_clean_rejects_it_as_too_long(tmp_path):
    big = ("The patient presented with chest pain and shortness of breath. " * 80_000)[:5_000_000]
    assert len(big) == 5_000_000 > CleaningConfig().max_chars
    small = "A short second abstract about the liver and its digestion."
    csv = tmp_path / "big.csv"
    csv.write_text(f'text,label\n"{big}",cardio\n{small},digest\n')
    jsonl = write_jsonl(tmp_path / "big.jsonl", [{"text": big, "label": "cardio"}, {"text": small, "label": "digest"}])
    for path in (csv, jsonl):
        result = run(path)
        assert result.rejected.num_rows == 0, path
        assert [len(t) for (t,) in kept(result, "text")] == [5_000_000, len(small)]
        cleaned = clean(result.kept)
        assert cleaned.stats["rows_in"] == 2
        assert cleaned.stats["dropped_too_long"] == 1
        [row] = cleaned.rejected.to_pylist()
        assert row["reason"] == "too_long" and row["detail"] == "5000000 characters"
        assert row["id"] == result.kept.column("id")[0].as_py()
        assert cleaned.kept.column("id").to_pylist() == [result.kept.column("id")[1].as_py()]


def test_duplicate_user_ids(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("doc,text,label\nd1,first text,a\nd2,second text,b\nd1,third text,a\nd3,fourth text,b\n")
    result = run(path, columns=ColumnMapping(id="doc"))
    assert kept(result, "id", "text") == [("d1", "first text"), ("d2", "second text"), ("d3", "fourth text")]
    [row] = result.rejected.to_pylist()
    assert (row["reason"], row["id"], row["text"]) == ("duplicate_id", "d1", "third text")
    assert "d1" in row["detail"]


def test_duplicate_user_id_of_a_rejected_row_is_not_a_duplicate(tmp_path):
    # The first d1 is rejected for its text, so the second d1 is the one kept.
    path = tmp_path / "in.csv"
    path.write_text("doc,text,label\nd1,,a\nd1,real text,a\n")
    result = run(path, columns=ColumnMapping(id="doc"))
    assert kept(result, "id", "text") == [("d1", "real text")]
    assert [r for r, _ in rejects(result)] == ["missing_text"]


def test_malformed_jsonl_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "good one", "label": "a"}\n{"text": "unterminated\n[1, 2]\n{"text": "good two", "label": "b"}\n')
    result = run(path)
    assert kept(result, "text") == [("good one",), ("good two",)]
    found = rejects(result)
    assert [r for r, _ in found] == ["malformed_record", "malformed_record"]
    assert found[0][1].startswith("line 2:") and found[1][1].startswith("line 3:")
    assert result.stats["rows_in"] == 4


# ---------------------------------------------------------------- config files


def _write_config(tmp_path: Path, body: str) -> Path:
    data = tmp_path / "in.csv"
    data.write_text("text,label\nsome text,a\n")
    path = tmp_path / "run.yaml"
    path.write_text("ingest:\n  sources:\n    - path: in.csv\n" + body)
    return path


def test_config_loads_and_resolves_paths(tmp_path):
    config = RunConfig.load(_write_config(tmp_path, "cleaning:\n  min_words: 3\n"))
    assert config.cleaning.min_words == 3
    assert config.ingest.sources[0].path == (tmp_path / "in.csv").resolve()
    assert kept(ingest(config.ingest), "text") == [("some text",)]


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ("colour: red\n", "colour"),
        ("  columns:\n    txt: body\n", "ingest.columns.txt"),
        ("cleaning:\n  max_char: 10\n", "cleaning.max_char"),
    ],
)
def test_config_unknown_key(tmp_path, body, key):
    with pytest.raises(ConfigError) as caught:
        RunConfig.load(_write_config(tmp_path, body))
    message = str(caught.value)
    assert f"unknown key '{key}'" in message
    assert "run.yaml" in message and "\n" not in message


def test_config_wrong_type(tmp_path):
    with pytest.raises(ConfigError) as caught:
        RunConfig.load(_write_config(tmp_path, 'cleaning:\n  min_words: "abc"\n'))
    message = str(caught.value)
    assert "cleaning.min_words" in message and "'abc'" in message
    assert "\n" not in message


# ---------------------------------------------------------------- ids


def test_identical_rows_get_distinct_stable_ids(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nsame text,a\nsame text,a\nsame text,b\nsame text,a\n")
    first = run(path)
    second = run(path)
    ids = first.kept.column("id").to_pylist()
    assert len(ids) == 4 and len(set(ids)) == 4
    assert ids == second.kept.column("id").to_pylist()
    assert ids == [
        content_id("same text", "labeled"),
        content_id("same text", "labeled", "1"),
        content_id("same text", "labeled", "2"),
        content_id("same text", "labeled", "3"),
    ]
    # the same rows read from another format get the same ids
    jsonl = write_jsonl(tmp_path / "in.jsonl", [{"text": "same text", "label": l} for l in "aaba"])
    assert run(jsonl).kept.column("id").to_pylist() == ids


def test_ids_do_not_encode_the_label(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nfirst text,a\n")
    relabeled = tmp_path / "relabeled.csv"
    relabeled.write_text("text,label\nfirst text,b\n")
    assert run(path).kept.column("id").to_pylist() == run(relabeled).kept.column("id").to_pylist()


def test_dev_and_test_halves_split_the_eval_rows_by_bit_one_of_the_hash():
    import hashlib

    texts = [f"abstract number {i}" for i in range(400)]
    eval_texts = [t for t in texts if is_eval_text(t)]
    parts = {t: eval_part(t) for t in eval_texts}
    assert set(parts.values()) == {"dev", "test"}
    for text, part in parts.items():
        bit_one = (int.from_bytes(hashlib.sha256(text.encode()).digest(), "big") >> 1) & 1
        assert part == ("dev" if bit_one else "test")
    # independent of the eval parity: both halves are about a quarter of all texts
    assert 0.35 < sum(p == "test" for p in parts.values()) / len(parts) < 0.65
    assert {eval_part(t) for t in texts if not is_eval_text(t)} == {"dev", "test"}


def test_eval_rule_leaves_unlabeled_rows_unlabeled(tmp_path):
    texts = [f"unlabeled abstract number {i}" for i in range(12)]
    assert any(sha256_is_even(t) for t in texts)
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": t, "label": None} for t in texts])
    result = run(path, eval_rule="sha256_even")
    assert {split for (split,) in kept(result, "split")} == {"unlabeled"}


def test_forced_unlabeled_source_does_not_check_discarded_labels(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("text,label\nsome pool text,not-a-class\n")
    result = run(path, source={"split": "unlabeled"}, labels=["pos", "neg"])
    assert kept(result, "text", "label", "split") == [("some pool text", None, "unlabeled")]


def test_float_labels_match_integer_label_names(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": ["one", "two"], "label": pa.array([1.0, 2.0])}), path)
    result = run(path, label_names={"1": "pos", "2": "neg"})
    assert kept(result, "label") == [("pos",), ("neg",)]
