"""Tests for WordPiece training and caching, tokenizer identity, flat token storage and padding."""

import random

import pytest
import torch
from transformers import PreTrainedTokenizerFast

import dataeff.tokenizer as tokenizer_module
from dataeff.data.text import PadCollator, TokenizedTexts
from dataeff.errors import UserError
from dataeff.tokenizer import (
    SPECIAL_TOKENS,
    cached_wordpiece,
    corpus_hash,
    load_tokenizer,
    tokenizer_hash,
    train_wordpiece,
)

WORDS = ["the", "a", "cat", "dog", "bird", "fish", "sat", "ran", "jumped", "swam", "over", "under",
         "near", "quickly", "slowly", "red", "blue", "green", "big", "small", "old", "house",
         "tree", "river", "garden"]
VOCAB_SIZE = 200


def make_corpus(n=300, seed=0):
    """`n` generated sentences, capitalised so that lowercasing has something to do."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14))).capitalize() + "."
        for _ in range(n)
    ]


CORPUS = make_corpus()


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece(CORPUS, VOCAB_SIZE)


def tokens(tok, *texts):
    return tok.convert_ids_to_tokens(tok(*texts)["input_ids"])


# --- train_wordpiece -----------------------------------------------------------------


def test_has_the_bert_special_tokens(tokenizer):
    assert SPECIAL_TOKENS == {"pad_token": "[PAD]", "unk_token": "[UNK]", "cls_token": "[CLS]",
                              "sep_token": "[SEP]", "mask_token": "[MASK]"}
    ids = set()
    for attribute, token in SPECIAL_TOKENS.items():
        assert getattr(tokenizer, attribute) == token
        assert getattr(tokenizer, f"{attribute}_id") == tokenizer.get_vocab()[token]
        ids.add(getattr(tokenizer, f"{attribute}_id"))
    assert len(ids) == 5
    assert ids == set(tokenizer.all_special_ids)


def test_learns_the_corpus_words(tokenizer):
    assert VOCAB_SIZE // 4 < len(tokenizer) <= VOCAB_SIZE
    encoded = tokenizer(CORPUS[:50])["input_ids"]
    assert all(tokenizer.unk_token_id not in ids for ids in encoded)


def test_wraps_a_sentence_in_cls_and_sep(tokenizer):
    assert tokens(tokenizer, "The cat sat.") == ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]


def test_wraps_a_pair_as_cls_a_sep_b_sep(tokenizer):
    assert tokens(tokenizer, "The cat sat.", "A dog ran") == [
        "[CLS]", "the", "cat", "sat", ".", "[SEP]", "a", "dog", "ran", "[SEP]"]


def test_unknown_characters_become_unk(tokenizer):
    assert tokens(tokenizer, "cat \u4e2d") == ["[CLS]", "cat", "[UNK]", "[SEP]"]


def test_decode_round_trips_the_lowercased_text(tokenizer):
    ids = tokenizer("The big red dog swam.")["input_ids"]
    assert tokenizer.decode(ids, skip_special_tokens=True) == "the big red dog swam."


@pytest.mark.parametrize(("lowercase", "expected"), [
    (True, ["[CLS]", "the", "cat", "sat", ".", "[SEP]"]),
    (False, ["[CLS]", "The", "cat", "sat", ".", "[SEP]"]),
])
def test_lowercase_option(lowercase, expected):
    tok = train_wordpiece(CORPUS, VOCAB_SIZE, lowercase=lowercase)
    assert tokens(tok, "The cat sat.") == expected
    # with lowercasing the case of the input does not matter
    assert (tok("THE CAT")["input_ids"] == tok("the cat")["input_ids"]) is lowercase


# --- cached_wordpiece ----------------------------------------------------------------


def test_cached_wordpiece_trains_once_then_loads(tmp_path, monkeypatch):
    first = cached_wordpiece(CORPUS, tmp_path, VOCAB_SIZE)
    folders = list((tmp_path / "tokenizers").iterdir())
    assert len(folders) == 1  # the final folder only: no temporary folder left behind
    assert (folders[0] / "tokenizer.json").is_file()
    assert folders[0].name.startswith(corpus_hash(CORPUS))

    def no_training(*args, **kwargs):
        raise AssertionError("train_wordpiece was called although the tokenizer is cached")

    monkeypatch.setattr(tokenizer_module, "train_wordpiece", no_training)
    second = cached_wordpiece(CORPUS, tmp_path, VOCAB_SIZE)

    assert first.get_vocab() == second.get_vocab()
    assert first(CORPUS)["input_ids"] == second(CORPUS)["input_ids"]
    assert first("A cat", "a dog")["input_ids"] == second("A cat", "a dog")["input_ids"]
    assert first.all_special_ids == second.all_special_ids
    assert second.mask_token == "[MASK]" and second.pad_token == "[PAD]"
    assert tokenizer_hash(first) == tokenizer_hash(second)


def test_cached_wordpiece_uses_the_tokenizer_another_run_cached_first(tmp_path, monkeypatch):
    # the cache folder name for CORPUS, found with a throwaway cache
    cached_wordpiece(CORPUS, tmp_path / "probe", VOCAB_SIZE)
    (name,) = [f.name for f in (tmp_path / "probe" / "tokenizers").iterdir()]
    folder = tmp_path / "cache" / "tokenizers" / name
    real_train = tokenizer_module.train_wordpiece

    def train_while_another_run_finishes_first(texts, *args, **kwargs):
        mine = real_train(texts, *args, **kwargs)
        # the other run trained on the same corpus but, training being non-deterministic, got
        # other ids; a tokenizer of a different corpus stands in for it so that it surely differs
        real_train(make_corpus(seed=5), *args, **kwargs).save_pretrained(str(folder))
        return mine

    monkeypatch.setattr(tokenizer_module, "train_wordpiece", train_while_another_run_finishes_first)
    returned = cached_wordpiece(CORPUS, tmp_path / "cache", VOCAB_SIZE)
    assert tokenizer_hash(returned) == tokenizer_hash(load_tokenizer(folder))


@pytest.mark.parametrize("change", [
    {"texts": make_corpus(seed=1)},
    {"texts": CORPUS[:-1]},
    {"texts": CORPUS[::-1]},
    {"vocab_size": VOCAB_SIZE + 1},
    {"lowercase": False},
    {"min_frequency": 1},
])
def test_different_corpus_or_settings_give_a_different_cache_entry(tmp_path, change):
    settings = {"texts": CORPUS, "vocab_size": VOCAB_SIZE, "lowercase": True, "min_frequency": 2}
    cached_wordpiece(cache_dir=tmp_path, **settings)
    cached_wordpiece(cache_dir=tmp_path, **{**settings, **change})
    assert len(list((tmp_path / "tokenizers").iterdir())) == 2


@pytest.mark.parametrize(("one", "other"), [
    (["a", "b"], ["b", "a"]),
    (["ab", "c"], ["a", "bc"]),
    (["a", "b"], ["a", "b", ""]),
    (["a"], ["a "]),
    (["a", "b"], ["a\nb"]),  # a newline inside a text is not a text boundary
])
def test_corpus_hash_distinguishes_corpora(one, other):
    assert corpus_hash(one) != corpus_hash(other)


def test_corpus_hash_is_stable():
    assert corpus_hash(CORPUS) == corpus_hash(list(CORPUS))
    assert len(corpus_hash(CORPUS)) == 16


# --- tokenizer_hash ------------------------------------------------------------------


@pytest.mark.parametrize("call", [
    {"truncation": True, "max_length": 8},
    {"padding": "max_length", "max_length": 32},
    {"padding": True, "truncation": True, "max_length": 8},
])
def test_tokenizer_hash_ignores_per_call_truncation_and_padding(call):
    tok = train_wordpiece(CORPUS, VOCAB_SIZE)
    before = tokenizer_hash(tok)
    tok(CORPUS[:4], **call)
    assert tok.backend_tokenizer.truncation is not None or tok.backend_tokenizer.padding
    assert tokenizer_hash(tok) == before


def test_tokenizer_hash_tells_tokenizers_apart(tokenizer):
    assert tokenizer_hash(tokenizer) != tokenizer_hash(train_wordpiece(CORPUS, VOCAB_SIZE,
                                                                       lowercase=False))
    assert tokenizer_hash(tokenizer) != tokenizer_hash(train_wordpiece(make_corpus(seed=2),
                                                                       VOCAB_SIZE))


# --- TokenizedTexts ------------------------------------------------------------------


@pytest.mark.parametrize("max_length", [8, 16, 512])
def test_tokenized_texts_keep_every_token_of_every_text(tokenizer, max_length):
    """A text longer than max_length becomes consecutive rows (each with [CLS] and [SEP]) whose
    inner tokens, joined, are the whole text's: nothing is cut."""
    texts = CORPUS[:40] + ["Cat."]
    data, split = TokenizedTexts.encode(texts, tokenizer, max_length)
    whole = tokenizer(texts)["input_ids"]
    assert split == sum(len(ids) > max_length for ids in whole)
    assert len(data) >= len(texts)
    rows = [data[i].tolist() for i in range(len(data))]
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    assert all(len(row) <= max_length and row[0] == cls and row[-1] == sep for row in rows)
    assert [t for row in rows for t in row[1:-1]] == [t for ids in whole for t in ids[1:-1]]
    assert all(data[i].dtype == torch.long for i in range(len(data)))


def test_tokenized_texts_split_a_long_text_into_pieces_in_order(tokenizer):
    long_text = " ".join(["the big red dog"] * 20)
    data, split = TokenizedTexts.encode([long_text, "Cat."], tokenizer, max_length=8)
    assert split == 1 and len(data) == 80 // 6 + 1 + 1  # 80 words, 6 a row, then "Cat."
    first = data[0].tolist()
    assert len(first) == 8
    assert first[0] == tokenizer.cls_token_id and first[-1] == tokenizer.sep_token_id
    assert tokenizer.convert_ids_to_tokens(first[1:-1]) == ["the", "big", "red", "dog", "the",
                                                            "big"]
    assert tokenizer.convert_ids_to_tokens(data[1].tolist()[1:3]) == ["red", "dog"]
    assert tokenizer.convert_ids_to_tokens(data[len(data) - 1].tolist()) == ["[CLS]", "cat", ".", "[SEP]"]


def test_tokenized_texts_do_not_leak_truncation_into_later_calls(tokenizer):
    long_text = " ".join(["the big red dog"] * 20)
    TokenizedTexts.encode([long_text], tokenizer, max_length=8)
    assert len(tokenizer(long_text)["input_ids"]) == 2 + 4 * 20


# --- PadCollator ---------------------------------------------------------------------


def test_pad_collator_pads_to_the_longest_sequence(tokenizer):
    data, _ = TokenizedTexts.encode(["Cat.", "The big red dog swam.", "A"], tokenizer, 64)
    sequences = [data[i] for i in range(len(data))]
    lengths = [len(s) for s in sequences]
    pad = tokenizer.pad_token_id
    batch = PadCollator(pad)(sequences)

    assert set(batch) == {"input_ids", "attention_mask"}
    assert batch["input_ids"].shape == (3, max(lengths))
    assert batch["attention_mask"].shape == (3, max(lengths))
    assert batch["input_ids"].dtype == torch.long and batch["attention_mask"].dtype == torch.long
    for row, (sequence, length) in enumerate(zip(sequences, lengths)):
        assert torch.equal(batch["input_ids"][row, :length], sequence)
        assert (batch["input_ids"][row, length:] == pad).all()
        assert batch["attention_mask"][row].tolist() == [1] * length + [0] * (max(lengths) - length)


def test_pad_collator_equal_lengths_need_no_padding():
    sequences = [torch.tensor([2, 7, 3]), torch.tensor([2, 8, 3])]
    batch = PadCollator(pad_id=0)(sequences)
    assert torch.equal(batch["input_ids"], torch.stack(sequences))
    assert (batch["attention_mask"] == 1).all()


def test_pad_collator_with_a_dataloader(tokenizer):
    data, _ = TokenizedTexts.encode(CORPUS[:10], tokenizer, 32)
    loader = torch.utils.data.DataLoader(data, batch_size=4,
                                         collate_fn=PadCollator(tokenizer.pad_token_id))
    batches = list(loader)
    assert [len(b["input_ids"]) for b in batches] == [4, 4, 2]
    assert sum(int(b["attention_mask"].sum()) for b in batches) == data.num_tokens()


# --- load_tokenizer ------------------------------------------------------------------


def test_load_tokenizer_missing_folder(tmp_path):
    missing = tmp_path / "no-such-tokenizer"
    with pytest.raises(UserError) as err:
        load_tokenizer(missing)
    assert str(missing) in str(err.value)
    assert "tokenizer.path" in str(err.value)


def test_load_tokenizer_round_trip(tmp_path, tokenizer):
    tokenizer.save_pretrained(str(tmp_path))
    loaded = load_tokenizer(tmp_path)
    assert loaded(CORPUS[:20])["input_ids"] == tokenizer(CORPUS[:20])["input_ids"]
    assert loaded.mask_token_id == tokenizer.mask_token_id


def test_load_tokenizer_without_mask_token(tmp_path, tokenizer):
    no_mask = PreTrainedTokenizerFast(tokenizer_object=tokenizer.backend_tokenizer,
                                      pad_token="[PAD]")
    no_mask.save_pretrained(str(tmp_path))
    with pytest.raises(UserError, match=r"no \[MASK\] or \[PAD\] token"):
        load_tokenizer(tmp_path)
