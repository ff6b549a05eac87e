"""Tests for the labelled-text DataModule: labels, budgets, validation, errors, batches."""

import csv
import json
from collections import Counter

import pytest
import torch

from dataeff.data.labelled import LabelledTextDataModule
from dataeff.data.sampling import subset_hash
from dataeff.data.sources import EasyVQAQuestions, TextFile
from dataeff.errors import UserError
from dataeff.tokenizer import train_wordpiece

COLOURS = ["red", "green", "blue"]


def examples(per_class, start=0):
    """(text, pair, label) rows: `per_class` of each colour class, texts unique."""
    return [(f"item {i} is a {colour} thing", f"is it {colour}", str(k))
            for i in range(start, start + per_class) for k, colour in enumerate(COLOURS)]


def write_csv(path, rows, header=("text", "pair", "label"), delimiter=","):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return TextFile(str(path))


def write_jsonl(path, rows, int_labels=True):
    lines = [json.dumps({"text": t, "pair": p, "label": int(y) if int_labels else y}) for t, p, y in rows]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return TextFile(str(path))


@pytest.fixture
def train_file(tmp_path):
    return write_csv(tmp_path / "train.csv", examples(40))


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([" ".join(row[:2]) for row in examples(40)], vocab_size=200)


def module(train, **kwargs):
    return LabelledTextDataModule("toy", train, **kwargs)


def indices(dm, split="train"):
    return set(dm.tables()[split].index)


# --- labels ------------------------------------------------------------------------


def test_label_set_is_the_same_for_tsv_strings_and_jsonl_ints(tmp_path):
    tsv = write_csv(tmp_path / "train.tsv", examples(10), delimiter="\t")
    jsonl = write_jsonl(tmp_path / "train.jsonl", examples(10))
    assert module(tsv).label_names == module(jsonl).label_names == ["0", "1", "2"]
    assert module(tsv).budget() == module(jsonl).budget()


def test_whole_numbers_written_as_floats_are_the_same_class(tmp_path):
    """An export that wrote some labels as 1.0 must not make a class of its own beside 1."""
    rows = [(f"text {i}", "", label) for i, label in enumerate(["1", "1.0", "0", "0.0", "2", "2.00"] * 4)]
    dm = module(write_csv(tmp_path / "mixed.csv", rows))
    assert dm.label_names == ["0", "1", "2"] and dm.budget()["data.num_classes"] == 3


def test_integer_labels_sort_numerically(tmp_path):
    rows = [(f"text {i}", "p", label) for i in range(6) for label in ("10", "2", "1")]
    assert module(write_csv(tmp_path / "t.csv", rows)).label_names == ["1", "2", "10"]


def test_label_mapping_reaches_the_batches(train_file, tokenizer):
    dm = module(train_file, batch_size=500)
    dm.set_tokenizer(tokenizer)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    expected = [dm.label_names.index(label) for label in dm.tables()["val"]["label"]]
    assert batch["labels"].tolist() == expected


def test_rows_with_empty_text_or_label_stop_the_run_at_the_first(tmp_path):
    rows = examples(5) + [("", "p", "0"), ("  ", "p", "1"), ("no label", "p", "")]
    dm = module(write_csv(tmp_path / "t.csv", rows), val_fraction=0.2)
    with pytest.raises(UserError, match=r"Line 17 of .*t.csv \(row 16 after the header\) has no 'text'.*"
                                        r"data.on_bad_row=skip \(3 of 18 rows"):
        dm.tables()


def test_rows_with_empty_text_or_label_are_dropped_and_counted_on_request(tmp_path):
    rows = examples(5) + [("", "p", "0"), ("  ", "p", "1"), ("no label", "p", "")]
    dm = module(write_csv(tmp_path / "t.csv", rows), val_fraction=0.2, on_bad_row="skip")
    assert len(dm.train_texts()) == 15
    assert dm.budget()["data.train_size"] + dm.budget()["data.val_size"] == 15
    assert dm.budget()["data.skipped_rows"] == 3


def test_nothing_is_read_until_asked(tmp_path):
    dm = module(TextFile(str(tmp_path / "missing.csv")))  # no error yet
    with pytest.raises(UserError, match="does not exist"):
        dm.tables()


# --- label budget ------------------------------------------------------------------


def test_fraction_budget_sizes_and_hash(train_file):
    dm = module(train_file, fraction=0.25)
    budget = dm.budget()
    # 40 per class, 4 to validation, a quarter of the other 36 kept
    assert budget == {"data.train_size": 27, "data.val_size": 12, "data.labels": 39, "data.test_size": 0,
                      "data.num_classes": 3, "data.skipped_rows": 0,
                      "data.subset_hash": subset_hash(sorted(indices(dm)))}
    assert Counter(dm.tables()["train"]["label"]) == {"0": 9, "1": 9, "2": 9}


def test_shots_keep_exactly_k_per_class(train_file):
    dm = module(train_file, shots=5)
    assert Counter(dm.tables()["train"]["label"]) == {"0": 5, "1": 5, "2": 5}
    assert dm.budget()["data.train_size"] == 15


def test_budgets_nest_across_fractions_and_move_with_data_seed(train_file):
    subsets = [indices(module(train_file, fraction=f)) for f in (0.1, 0.25, 0.5, 1.0)]
    assert all(small < big for small, big in zip(subsets, subsets[1:]))
    other = indices(module(train_file, fraction=0.25, data_seed=1))
    assert other != subsets[1] and len(other) == len(subsets[1])
    hashes = {module(train_file, fraction=0.25, data_seed=s).budget()["data.subset_hash"] for s in (0, 1)}
    assert len(hashes) == 2


# --- validation --------------------------------------------------------------------


def test_val_split_is_stratified_disjoint_and_fixed_by_split_seed(train_file):
    val = indices(module(train_file), "val")
    assert Counter(module(train_file).tables()["val"]["label"]) == {"0": 4, "1": 4, "2": 4}
    for fraction in (0.1, 0.5, 1.0):
        for data_seed in (0, 1, 2):
            dm = module(train_file, fraction=fraction, data_seed=data_seed, val_size="full")
            assert indices(dm, "val") == val
            assert not indices(dm) & val
    assert indices(module(train_file, split_seed=1), "val") != val


def test_val_file_is_used_whole_and_never_budgeted(tmp_path, train_file):
    val_file = write_csv(tmp_path / "dev.csv", examples(20, start=100))
    dm = module(train_file, val=val_file, fraction=0.1, val_size="full")
    assert dm.budget()["data.val_size"] == 60
    assert dm.budget()["data.train_size"] == 12  # 10% of 40 per class: no split taken from train


def test_matched_val_is_about_as_large_as_train_and_stratified(tmp_path, train_file):
    val_file = write_csv(tmp_path / "dev.csv", examples(20, start=100))
    dm = module(train_file, val=val_file, shots=4, val_size="matched")
    assert dm.budget()["data.train_size"] == dm.budget()["data.val_size"] == 12
    assert Counter(dm.tables()["val"]["label"]) == {"0": 4, "1": 4, "2": 4}


def test_small_budgets_validate_on_as_few_labels_by_default_and_count_them(tmp_path, train_file):
    val_file = write_csv(tmp_path / "dev.csv", examples(20, start=100))
    budget = module(train_file, val=val_file, fraction=0.1).budget()  # true few-shot (Perez et al. 2021)
    assert budget["data.train_size"] == budget["data.val_size"] == 12
    assert budget["data.labels"] == 24


def test_bad_val_size_and_val_fraction(train_file):
    with pytest.raises(UserError, match="data.val_size=matched"):
        module(train_file, val_size="half")
    with pytest.raises(UserError, match="data.val_fraction"):
        module(train_file, val_fraction=0).tables()


# --- errors ------------------------------------------------------------------------


@pytest.mark.parametrize("split", ["val", "test"])
def test_unknown_label_in_val_or_test(tmp_path, train_file, split):
    path = tmp_path / f"{split}.csv"
    other = write_csv(path, examples(3, start=100) + [("a purple thing", "p", "purple")])
    with pytest.raises(UserError) as err:
        module(train_file, **{split: other}).tables()
    message = str(err.value)
    assert "'purple'" in message and str(path) in message and split in message
    assert "['0', '1', '2']" in message and "add examples of it to the training data" in message


@pytest.mark.parametrize("role", ["text", "pair", "label"])
def test_missing_column_names_the_columns_and_the_override(train_file, role):
    with pytest.raises(UserError) as err:
        module(train_file, **{f"{role}_column": "nope"}).tables()
    assert "'nope'" in str(err.value) and "['text', 'pair', 'label']" in str(err.value)
    assert f"data.{role}_column=" in str(err.value)


def test_no_test_source(train_file):
    dm = module(train_file)
    assert not dm.has_test
    with pytest.raises(UserError, match="data.test.path"):
        dm.test_dataloader()


# --- tokenized batches -------------------------------------------------------------


def test_single_sentence_batches(train_file, tokenizer):
    dm = module(train_file, batch_size=8, max_length=6)
    dm.set_tokenizer(tokenizer)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert sum(len(b["labels"]) for b in batches) == dm.budget()["data.train_size"]
    batch = batches[0]
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert batch["input_ids"].shape == batch["attention_mask"].shape == batch["token_type_ids"].shape
    assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] <= 6
    assert batch["token_type_ids"].sum() == 0 and batch["labels"].dtype == torch.long
    assert sorted(int(y) for b in batches for y in b["labels"]) == sorted(
        dm.label_names.index(y) for y in dm.tables()["train"]["label"])


@pytest.mark.parametrize("cache", [True, False])
def test_texts_cut_to_max_length_are_counted_per_split(tmp_path, tokenizer, cache):
    """A classifier reads one window of max_length tokens: what is cut is counted, not silent."""
    rows = [(f"item {i} is a {colour} thing" + " very" * (i % 4 == 0) * 6, "", str(k))
            for i in range(40) for k, colour in enumerate(COLOURS)]
    cache_dir = str(tmp_path) if cache else None
    dm = module(write_csv(tmp_path / "long.csv", rows), max_length=10, cache_dir=cache_dir)
    dm.set_tokenizer(tokenizer)
    whole = {split: [len(tokenizer(text)["input_ids"]) > 10 for text in table["text"]]
             for split, table in dm.tables().items()}
    tags = dm.run_tags()
    assert {key: tags[key] for key in tags if key.startswith("data.truncated.")} == {
        f"data.truncated.{split}": sum(cut) for split, cut in whole.items()}
    assert tags["data.truncated.train"] > 0


def test_sentence_pairs_mark_the_second_segment(tmp_path, train_file, tokenizer):
    test_file = write_jsonl(tmp_path / "test.jsonl", examples(2, start=100))
    dm = module(train_file, test=test_file, pair_column="pair", batch_size=4)
    dm.set_tokenizer(tokenizer)
    dm.setup("test")
    batch = next(iter(dm.test_dataloader()))
    types, mask = batch["token_type_ids"], batch["attention_mask"]
    assert (types.sum(dim=1) > 0).all()  # every example has a second segment
    assert (types[mask == 0] == 0).all()  # padding is segment 0
    first = batch["input_ids"][0, : int(mask[0].sum())]
    sep = tokenizer.sep_token_id
    assert first.tolist().count(sep) == 2 and types[0, int((first == sep).nonzero()[0]) + 1] == 1
    assert dm.budget()["data.test_size"] == 6
    assert len(dm.train_texts()) == 2 * 120  # texts and pairs both feed the tokenizer


def test_padding_uses_pad_id_and_mask(tmp_path, tokenizer):
    rows = [("a thing " * (1 + i % 4), "p", label) for i in range(12) for label in "01"]
    dm = module(write_csv(tmp_path / "t.csv", rows), val_fraction=0.5, batch_size=64)
    dm.set_tokenizer(tokenizer)
    dm.setup("fit")
    batch = next(iter(dm.val_dataloader()))
    lengths = batch["attention_mask"].sum(dim=1)
    assert lengths.min() < lengths.max()  # texts differ in length, so some rows are padded
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()


# --- easy-vqa ----------------------------------------------------------------------


def test_easy_vqa_questions_as_a_labelled_source():
    dm = module(EasyVQAQuestions("train"), test=EasyVQAQuestions("test"), text_column="question",
                label_column="answer", fraction=0.01, val_size="matched", batch_size=16)
    assert len(dm.label_names) == 13 and {"yes", "no", "circle", "blue"} <= set(dm.label_names)
    budget = dm.budget()
    assert 300 < budget["data.train_size"] < 400 and budget["data.test_size"] > 9000
    assert abs(budget["data.val_size"] - budget["data.train_size"]) <= 13
    dm.set_tokenizer(train_wordpiece(dm.train_texts(), vocab_size=200))
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert batch["labels"].max() < 13 and batch["input_ids"].shape[0] == 16


# --- token cache -----------------------------------------------------------------------


def test_each_table_is_tokenized_once_for_every_budget_and_seed(tmp_path, train_file, tokenizer, monkeypatch):
    import dataeff.data.labelled as labelled  # encode_table, as the DataModule calls it

    test_file = write_csv(tmp_path / "test.csv", examples(5, start=100))
    calls, encode = [], labelled.encode_table
    monkeypatch.setattr(labelled, "encode_table",
                        lambda table, *args: calls.append(len(table)) or encode(table, *args))
    built = []
    for fraction, seed in ((0.1, 0), (0.5, 1), (1.0, 2)):
        dm = module(train_file, test=test_file, pair_column="pair", fraction=fraction, data_seed=seed,
                    max_length=16, cache_dir=str(tmp_path / "cache"))
        dm.set_tokenizer(tokenizer)
        dm.prepare_data()
        dm.setup()
        built.append(dm)
    assert calls == [120, 15]  # the whole training file (train and val rows) and the test file, once
    assert len(list((tmp_path / "cache" / "tokenized").glob("labelled-*.pt"))) == 2
    for dm in built:  # the cut-out rows are exactly what tokenizing each split alone gives
        fresh = module(train_file, test=test_file, pair_column="pair", fraction=dm.labelled.fraction,
                       data_seed=dm.labelled.data_seed, max_length=16)
        fresh.set_tokenizer(tokenizer)
        fresh.setup()
        for split in ("train", "val", "test"):
            cached, direct = dm.datasets[split], fresh.datasets[split]
            assert len(cached) == len(direct) > 0
            for i in range(len(direct)):
                assert all(torch.equal(a, b) for a, b in zip(cached[i][:2], direct[i][:2]))
                assert cached[i][2] == direct[i][2]
