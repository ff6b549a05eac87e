"""Tests for the text readers and sources: every file format, Hugging Face folders, errors."""

import csv
import json
import os

import pandas as pd
import pytest

from dataeff.data.readers import infer_format, read_table
from dataeff.data.sources import EasyVQAQuestions, TextFile
from dataeff.errors import UserError

# Texts that trip naive parsers: a comma, a double quote, both, and non-ASCII.
TRICKY = ['plain text', 'a comma, inside', 'a "quoted" word', 'both, "here", too', 'naïve café']


def read_column(path, column, format=None, split="train"):
    return TextFile(str(path), column, format, split).texts()


def write_csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def save_dataset(path, texts):
    from datasets import Dataset

    Dataset.from_dict({"text": texts, "label": list(range(len(texts)))}).save_to_disk(str(path))


def save_dataset_dict(path, splits):
    from datasets import Dataset, DatasetDict

    DatasetDict(
        {name: Dataset.from_dict({"sentence": texts}) for name, texts in splits.items()}
    ).save_to_disk(str(path))


# --- formats -------------------------------------------------------------------------


def test_txt_one_example_per_line_blank_lines_skipped(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("first line\n\nsecond, with a comma\n   \n\t\nthird \"quoted\"\n", "utf-8")
    table = read_table(path)
    assert list(table.columns) == ["text"]
    assert read_column(path, "text") == ["first line", "second, with a comma", 'third "quoted"']


def test_txt_keeps_file_order_and_strips_surrounding_space(tmp_path):
    path = tmp_path / "corpus.text"
    path.write_text("  b  \na\n c\n", "utf-8")
    assert TextFile(str(path)).texts() == ["b", "a", "c"]


def test_csv_quoted_field_with_comma_and_quote(tmp_path):
    path = tmp_path / "train.csv"
    write_csv(path, [(text, i) for i, text in enumerate(TRICKY)])
    assert 'both, ""here"", too' in path.read_text("utf-8")  # csv really quoted it
    table = read_table(path)
    assert list(table.columns) == ["text", "label"]
    assert len(table) == len(TRICKY)
    assert read_column(path, "text") == TRICKY
    assert read_column(path, "label") == [str(i) for i in range(len(TRICKY))]


def test_csv_empty_and_na_like_cells(tmp_path):
    path = tmp_path / "train.csv"
    write_csv(path, [("NA", 0), ("", 1), ("null", 2), ("  ", 3), ("kept", 4)])
    # empty cells are dropped; strings pandas would read as NaN by default are kept as text
    assert read_column(path, "text") == ["NA", "null", "kept"]


def test_tsv_sst2_style_with_bare_quote(tmp_path):
    path = tmp_path / "train.tsv"
    sentences = [
        'it \'s a charming and often affecting journey . ',
        'the movie is " pretty good " , more or less',
        '" a bare opening quote and nothing after',
        "unflinchingly bleak and desperate ",
    ]
    labels = ["1", "1", "0", "0"]
    lines = ["sentence\tlabel"] + [f"{s}\t{label}" for s, label in zip(sentences, labels)]
    path.write_text("\n".join(lines) + "\n", "utf-8")

    table = read_table(path)
    assert list(table.columns) == ["sentence", "label"]
    assert len(table) == len(sentences)
    assert read_column(path, "sentence") == [s.strip() for s in sentences]
    assert read_column(path, "label") == labels


def test_jsonl(tmp_path):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [{"text": t, "label": i} for i, t in enumerate(TRICKY)]
                + [{"text": None, "label": 9}, {"text": "", "label": 10}])
    table = read_table(path)
    assert set(table.columns) == {"text", "label"}
    assert read_column(path, "text") == TRICKY


def test_jsonl_digit_strings_stay_text(tmp_path):
    path = tmp_path / "train.jsonl"
    write_jsonl(path, [{"text": "007"}, {"text": "1e3"}, {"text": "true"}])
    assert read_column(path, "text") == ["007", "1e3", "true"]


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_parquet(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    pd.DataFrame({"text": TRICKY + [None], "label": range(len(TRICKY) + 1)}).to_parquet(path)
    assert read_table(path).shape == (len(TRICKY) + 1, 2)
    assert read_column(path, "text") == TRICKY


def test_hf_dataset_saved_to_disk(tmp_path):
    folder = tmp_path / "ds"
    save_dataset(folder, TRICKY)
    assert infer_format(folder) == "hf"
    table = read_table(folder)
    assert set(table.columns) == {"text", "label"}
    assert read_column(folder, "text") == TRICKY


@pytest.mark.parametrize("split", ["train", "validation"])
def test_hf_dataset_dict_split(tmp_path, split):
    folder = tmp_path / "dd"
    splits = {"train": ["train one", "train two", "train three"], "validation": ["val one"]}
    save_dataset_dict(folder, splits)
    assert read_column(folder, "sentence", split=split) == splits[split]
    assert TextFile(str(folder), column="sentence", split=split).texts() == splits[split]


def test_explicit_format_overrides_suffix(tmp_path):
    path = tmp_path / "train.data"
    write_csv(path, [("x, y", 0)])
    assert read_column(path, "text", format="csv") == ["x, y"]


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.txt", "txt"), ("a.TXT", "txt"), ("a.text", "txt"), ("a.csv", "csv"), ("a.tsv", "tsv"),
     ("a.jsonl", "jsonl"), ("a.json", "jsonl"), ("a.parquet", "parquet"), ("a.pq", "parquet")],
)
def test_infer_format_from_suffix(tmp_path, name, expected):
    assert infer_format(tmp_path / name) == expected


# --- TextFile on each format ---------------------------------------------------------


def make_file(tmp_path, fmt):
    """Write TRICKY in `fmt`; return (path, column)."""
    if fmt == "txt":
        path = tmp_path / "f.txt"
        path.write_text("\n".join(TRICKY) + "\n", "utf-8")
        return path, "text"
    if fmt == "csv":
        path = tmp_path / "f.csv"
        write_csv(path, [(t, 0) for t in TRICKY])
        return path, "text"
    if fmt == "tsv":
        path = tmp_path / "f.tsv"
        path.write_text("sentence\tlabel\n" + "".join(f"{t}\t0\n" for t in TRICKY), "utf-8")
        return path, "sentence"
    if fmt == "jsonl":
        path = tmp_path / "f.jsonl"
        write_jsonl(path, [{"body": t} for t in TRICKY])
        return path, "body"
    if fmt == "parquet":
        path = tmp_path / "f.parquet"
        pd.DataFrame({"text": TRICKY}).to_parquet(path)
        return path, "text"
    path = tmp_path / "f_hf"
    save_dataset(path, TRICKY)
    return path, "text"


@pytest.mark.parametrize("fmt", ["txt", "csv", "tsv", "jsonl", "parquet", "hf"])
def test_textfile_reads_every_format(tmp_path, fmt):
    path, column = make_file(tmp_path, fmt)
    source = TextFile(str(path), column=column)
    assert source.texts() == TRICKY
    assert str(source) == f"{path.name}:{column}"


# --- errors --------------------------------------------------------------------------


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(UserError) as err:
        read_table(path)
    message = str(err.value)
    assert str(path) in message
    assert "does not exist" in message
    assert "data.train.path=" in message


def test_missing_file_through_textfile(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        TextFile(str(tmp_path / "gone.txt")).texts()


def test_missing_column_lists_the_columns_and_the_override(tmp_path):
    path = tmp_path / "train.tsv"
    path.write_text("sentence\tlabel\nhello\t1\n", "utf-8")
    with pytest.raises(UserError) as err:
        read_column(path, "text")
    message = str(err.value)
    assert "'text'" in message
    assert str(path) in message
    assert "['sentence', 'label']" in message
    assert "data.train.column=" in message


def test_unknown_suffix(tmp_path):
    path = tmp_path / "train.xlsx"
    path.write_bytes(b"not really excel")
    with pytest.raises(UserError) as err:
        read_table(path)
    message = str(err.value)
    assert str(path) in message
    assert "format=" in message
    for fmt in ("txt", "csv", "tsv", "jsonl", "parquet", "hf"):
        assert fmt in message


def test_unknown_explicit_format(tmp_path):
    path = tmp_path / "train.csv"
    write_csv(path, [("a", 0)])
    with pytest.raises(UserError, match=r"Unknown data format 'xml'.*use one of txt, csv"):
        read_table(path, format="xml")


def test_unknown_split_in_dataset_dict(tmp_path):
    folder = tmp_path / "dd"
    save_dataset_dict(folder, {"train": ["a"], "validation": ["b"]})
    with pytest.raises(UserError) as err:
        read_column(folder, "sentence", split="test")
    message = str(err.value)
    assert "'test'" in message
    assert str(folder) in message
    assert "['train', 'validation']" in message
    assert "data.train.split=train" in message


def test_malformed_parquet(tmp_path):
    path = tmp_path / "broken.parquet"
    path.write_bytes(os.urandom(512))
    with pytest.raises(UserError) as err:
        read_table(path)
    message = str(err.value)
    assert f"Could not read {path} as parquet" in message
    assert "set format=" in message
    assert err.value.__cause__ is not None  # the parser's own error is chained


def test_malformed_jsonl_names_the_line(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"text": "ok"}\n\n{"text": unterminated\n', "utf-8")
    with pytest.raises(UserError, match=r"Line 3 of .*broken\.jsonl is not JSON \(Expecting value at "
                       r"column 10\)"):
        read_table(path)


# --- easy-vqa ------------------------------------------------------------------------


@pytest.mark.parametrize(("split", "count"), [("train", 38_575), ("test", 9_673)])
def test_easy_vqa_questions(split, count):
    texts = EasyVQAQuestions(split=split).texts()
    assert len(texts) == count
    assert all(isinstance(t, str) and t for t in texts)
    assert str(EasyVQAQuestions(split=split)) == f"easy-vqa:{split}"
