"""Sequence packing for MLM: whole texts in rows, and attention that stays within each text."""

from __future__ import annotations

import numpy as np
import torch
from transformers import BertConfig, BertModel

from dataeff.data.packing import PackedCollator, PackedRows, PackedTexts, pack
from dataeff.data.text import TokenizedTexts
from dataeff.models.bert import packed_attention_mask
from tests.conftest import FAST, run_app, runs


def texts_of(lengths: list[int]) -> TokenizedTexts:
    sequences = [torch.arange(1, n + 1, dtype=torch.int32) + 100 * i for i, n in enumerate(lengths)]
    offsets = torch.cumsum(torch.tensor([0, *lengths]), 0)
    return TokenizedTexts(torch.cat(sequences), offsets)


def test_rows_hold_every_text_once_whole_and_within_max_length():
    lengths = np.random.default_rng(1).integers(3, 40, size=500)
    rows = pack(lengths, max_length=64, seed=0)
    assert sorted(np.concatenate(rows).tolist()) == list(range(500))  # each text once
    assert all(lengths[row].sum() <= 64 for row in rows)
    assert lengths.sum() / (len(rows) * 64) > 0.8  # most of each row is text, not padding
    assert [r.tolist() for r in pack(lengths, 64, seed=0)] == [r.tolist() for r in rows]
    assert [r.tolist() for r in pack(lengths, 64, seed=1)] != [r.tolist() for r in rows]


def test_the_collator_numbers_texts_and_restarts_positions():
    dataset = PackedTexts(texts_of([3, 2, 4]), max_length=5, seed=0)
    batch = PackedCollator(pad_id=0)(dataset.__getitems__(list(range(len(dataset)))))
    for row, segments, positions in zip(batch["input_ids"], batch["segment_ids"], batch["position_ids"]):
        real = segments > 0
        for text in segments[real].unique():
            where = segments == text
            assert positions[where].tolist() == list(range(int(where.sum())))
            assert len(set((row[where] // 100).tolist())) == 1  # one source text per segment
        assert (row[~real] == 0).all()
    assert batch["attention_mask"].sum() == 9


def test_a_batch_fetched_at_once_is_the_batch_built_text_by_text():
    """__getitems__ + the collator's scatters give what concatenating each row's texts gives."""
    lengths = np.random.default_rng(2).integers(2, 30, size=300).tolist()
    dataset = PackedTexts(texts_of(lengths), max_length=64, seed=3)
    texts = dataset.texts
    for indices, length in (([5, 0, 17, 3], None), (list(range(len(dataset))), 64), ([9], None)):
        rows = [[texts[int(t)] for t in dataset.row_texts[dataset.row_offsets[i]:dataset.row_offsets[i + 1]]]
                for i in indices]
        width = length or max(sum(len(t) for t in row) for row in rows)
        expected = {name: torch.zeros(len(rows), width, dtype=torch.long)
                    for name in ("input_ids", "segment_ids", "position_ids")}
        for r, row in enumerate(rows):
            column = 0
            for number, text in enumerate(row, start=1):
                span = slice(column, column + len(text))
                expected["input_ids"][r, span] = text
                expected["segment_ids"][r, span] = number
                expected["position_ids"][r, span] = torch.arange(len(text))
                column += len(text)
        batch = PackedCollator(pad_id=0, length=length)(dataset.__getitems__(indices))
        for name, tensor in expected.items():
            assert torch.equal(batch[name], tensor), name
        assert torch.equal(batch["attention_mask"], (expected["segment_ids"] > 0).long())
        assert torch.equal(dataset[indices[0]].ids, torch.cat(rows[0]))


def test_a_packed_text_reads_only_itself():
    torch.manual_seed(0)
    config = BertConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, attn_implementation="sdpa")
    model = BertModel(config, add_pooling_layer=False).eval()
    first, second = torch.randint(5, 500, (7,)), torch.randint(5, 500, (5,))
    batch = PackedCollator(pad_id=0)(PackedRows(torch.cat([first, second]), torch.tensor([7, 5]),
                                                torch.tensor([2])))
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                       attention_mask=packed_attention_mask(batch["segment_ids"])).last_hidden_state[0]
        alone = [model(input_ids=t[None]).last_hidden_state[0] for t in (first, second)]
        plain = torch.ones_like(batch["input_ids"])  # given, so no library infers the texts' bounds
        leaky = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                      attention_mask=plain).last_hidden_state[0]
    torch.testing.assert_close(packed[:7], alone[0], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(packed[7:], alone[1], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(leaky[:7], alone[0], atol=1e-3)  # a plain mask would let them mix


def test_mlm_trains_on_packed_rows(workdir):
    assert run_app(*FAST, "data.packing=true") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED" and run.data.params["data.packing"] == "True"
    assert {"val/loss", "train/loss"} <= set(run.data.metrics)


def test_a_one_megabyte_line_is_split_into_rows_and_trained_on_whole(workdir):
    """Packing cuts no text, and neither does tokenization: a text longer than data.max_length
    becomes rows of consecutive pieces (before, it was silently cut to its first 128 tokens)."""
    words = [f"word{i % 5000}" for i in range(120_000)]  # ~1 MB on one line
    short = [f"a short line number {i}" for i in range(40)]
    (workdir / "corpus.txt").write_text("\n".join([" ".join(words), *short]) + "\n")
    (workdir / "val.txt").write_text("\n".join(short[:5]) + "\n")
    assert run_app(*FAST, "data=text", "data.train.path=corpus.txt",
                   "+data.val._target_=dataeff.data.sources.TextFile", "+data.val.path=val.txt") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert (run.data.tags["data.split_texts.train"], run.data.tags["data.split_texts.val"]) == ("1", "0")
