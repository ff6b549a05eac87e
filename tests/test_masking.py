"""Tests for dynamic MLM masking: rates, the 80/10/10 split, special tokens, determinism, errors."""

import math

import pytest
import torch

from dataeff.errors import UserError
from dataeff.tasks.masking import IGNORE, Masker

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
SPECIAL = [PAD, UNK, CLS, SEP, MASK]
VOCAB = 1000
SIGMAS = 4  # tolerance of every rate check, in binomial standard deviations


def make_batch(rows=64, width=128, seed=0):
    """BERT-style ids: [CLS] tokens [SEP] then [PAD]; lengths vary, a few [UNK] inside."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((rows, width), PAD, dtype=torch.long)
    lengths = torch.randint(8, width + 1, (rows,), generator=gen)
    lengths[0] = width  # one row fills the whole width (no padding at all)
    for row, length in enumerate(lengths.tolist()):
        ids[row, 0] = CLS
        ids[row, 1:length - 1] = torch.randint(len(SPECIAL), VOCAB, (length - 2,), generator=gen)
        ids[row, length - 1] = SEP
    ids[ids.ne(PAD) & (torch.rand(ids.shape, generator=gen) < 0.01) & ids.ge(len(SPECIAL))] = UNK
    return ids


def is_special(ids):
    return torch.isin(ids, torch.tensor(SPECIAL))


def within(observed, expected, n):
    """`observed` rate is within SIGMAS binomial standard deviations of `expected` over n draws."""
    return abs(observed - expected) <= SIGMAS * math.sqrt(expected * (1 - expected) / n)


def mask(ids, prob=0.15, seed=0):
    masker = Masker(MASK, SPECIAL, VOCAB, prob=prob)
    return masker(ids, torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def batch():
    ids = make_batch()
    assert ids.shape == (64, 128)
    assert (ids[:, 0] == CLS).all()
    assert (ids == SEP).sum(1).eq(1).all()
    assert (ids == PAD).any() and (ids == UNK).any()
    return ids


# --- statistics ----------------------------------------------------------------------


@pytest.mark.parametrize("prob", [0.15, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_share_of_maskable_tokens_chosen(batch, prob, seed):
    _, labels = mask(batch, prob, seed)
    maskable = ~is_special(batch)
    chosen = labels != IGNORE
    n = int(maskable.sum())
    assert n > 3000
    share = int(chosen.sum()) / n
    assert within(share, prob, n), f"chose {share:.4f} of maskable tokens, expected {prob}"


@pytest.mark.parametrize("prob", [0.15, 0.3])
@pytest.mark.parametrize("seed", [0, 1])
def test_80_10_10_split_of_chosen_tokens(batch, prob, seed):
    masked, labels = mask(batch, prob, seed)
    chosen = labels != IGNORE
    n = int(chosen.sum())
    before, after = batch[chosen], masked[chosen]
    to_mask = after == MASK
    unchanged = after == before
    randomized = ~to_mask & ~unchanged
    # a random replacement equals the original token with probability 1/995
    p_same = 1 / (VOCAB - len(SPECIAL))
    for name, rate, expected in [
        ("[MASK]", to_mask, 0.8),
        ("random", randomized, 0.1 * (1 - p_same)),
        ("unchanged", unchanged, 0.1 + 0.1 * p_same),
    ]:
        share = rate.float().mean().item()
        assert within(share, expected, n), f"{name}: {share:.4f} of {n} chosen, expected {expected}"


def test_random_replacements_are_ordinary_tokens_spread_over_the_vocabulary():
    ids = make_batch(seed=3)
    masked, labels = mask(ids, prob=0.3, seed=3)
    chosen = labels != IGNORE
    replaced = masked[chosen & (masked != MASK) & (masked != ids)]
    assert len(replaced) > 100
    assert not is_special(replaced).any()
    assert replaced.min() >= len(SPECIAL) and replaced.max() < VOCAB
    assert len(replaced.unique()) > len(replaced) // 2  # not one id over and over


# --- invariants ----------------------------------------------------------------------


@pytest.mark.parametrize("prob", [0.15, 0.3, 0.9])
def test_special_tokens_and_padding_never_chosen(batch, prob):
    masked, labels = mask(batch, prob)
    special = is_special(batch)
    assert (labels[special] == IGNORE).all()
    assert torch.equal(masked[special], batch[special])
    assert (masked[batch == PAD] == PAD).all()


@pytest.mark.parametrize("prob", [0.15, 0.3])
def test_labels_are_original_ids_at_chosen_positions_and_ignore_elsewhere(batch, prob):
    masked, labels = mask(batch, prob)
    chosen = labels != IGNORE
    assert torch.equal(labels[chosen], batch[chosen])
    assert (labels[~chosen] == IGNORE).all()
    # every position whose id changed carries a label
    assert chosen[masked != batch].all()
    assert labels.shape == batch.shape and labels.dtype == batch.dtype
    assert masked.shape == batch.shape and masked.dtype == batch.dtype


def test_input_is_not_modified_in_place(batch):
    copy = batch.clone()
    masked, labels = mask(batch, prob=0.3)
    assert torch.equal(batch, copy)
    assert masked.data_ptr() != batch.data_ptr()
    assert labels.data_ptr() != batch.data_ptr()
    assert not torch.equal(masked, batch)


# --- determinism ---------------------------------------------------------------------


def test_same_seed_same_masks(batch):
    first, second = mask(batch, seed=42), mask(batch, seed=42)
    assert torch.equal(first[0], second[0])
    assert torch.equal(first[1], second[1])


def test_different_seeds_different_masks(batch):
    labels = [mask(batch, seed=seed)[1] for seed in range(4)]
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            assert not torch.equal(labels[i] != IGNORE, labels[j] != IGNORE)


def test_one_generator_draws_fresh_masks_each_batch(batch):
    masker = Masker(MASK, SPECIAL, VOCAB)
    gen = torch.Generator().manual_seed(0)
    _, first = masker(batch, gen)
    _, second = masker(batch, gen)
    assert not torch.equal(first, second)


def test_works_without_a_generator(batch):
    masked, labels = Masker(MASK, SPECIAL, VOCAB)(batch)
    assert (labels != IGNORE).any()
    assert (labels[is_special(batch)] == IGNORE).all()


# --- edge cases ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_at_least_one_target_when_chance_picks_none(seed):
    ids = torch.tensor([[CLS, 10, 11, 12, SEP, PAD], [CLS, 13, SEP, PAD, PAD, PAD]])
    masked, labels = mask(ids, prob=1e-6, seed=seed)
    chosen = labels != IGNORE
    assert int(chosen.sum()) == 1
    assert not is_special(ids[chosen]).any()
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_batch_of_only_special_tokens_has_no_targets():
    ids = torch.tensor([[CLS, SEP, PAD, PAD], [CLS, UNK, SEP, PAD]])
    masked, labels = mask(ids, prob=0.5)
    assert (labels == IGNORE).all()
    assert torch.equal(masked, ids)


@pytest.mark.parametrize("prob", [0, 1, -0.1, 1.5, float("nan")])
def test_mask_prob_outside_open_unit_interval_is_rejected(prob):
    with pytest.raises(UserError, match=r"task\.mask_prob"):
        Masker(MASK, SPECIAL, VOCAB, prob=prob)
