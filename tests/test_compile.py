"""The masked-LM heads. Eager: the masked positions, their count rounded up to a bucket.
`task.compile`: a fixed number of slots per row, so one compiled graph serves every batch. Both
give the loss over exactly the masked positions; a compiled run against an eager one."""

from __future__ import annotations

import math

import torch
from torch._dynamo.utils import counters
from transformers import BertConfig, BertForMaskedLM

import dataeff.tasks.masking as masking
from dataeff.tasks.masking import IGNORE, Masker, slots_per_row
from dataeff.tasks.mlm import TARGETS_BUCKET, MLMTask
from dataeff.tokenizer import train_wordpiece
from tests.conftest import FAST, run_app, runs

TEXTS = [f"the {w} film was {v} and {u}" for w in ("long", "short", "odd") for v in ("good", "bad")
         for u in ("fun", "dull", "slow", "quick")]


def task() -> MLMTask:
    tokenizer = train_wordpiece(TEXTS, vocab_size=100)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, attn_implementation="sdpa")
    return MLMTask(BertForMaskedLM(config).eval(), tokenizer, optimizer=None)


def batch(mlm: MLMTask, width: int = 24):
    encoded = mlm.tokenizer(TEXTS, padding="max_length", max_length=width, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def test_the_eager_head_gives_the_loss_and_gradients_of_the_masked_positions_on_bucketed_shapes():
    """The masked count, which changes every batch, is rounded up to a multiple of TARGETS_BUCKET
    positions to project onto the vocabulary, so that batches reuse the allocator's blocks; the
    extra positions change no number, forward or backward."""
    mlm = task()
    ids, attention = (torch.cat([tensor] * 4) for tensor in batch(mlm, width=24))  # 96 rows
    masker = Masker(mlm.tokenizer.mask_token_id, mlm.tokenizer.all_special_ids, len(mlm.tokenizer), 0.3)
    projected, counts = [], []
    for seed in range(6):
        masked, labels = masker(ids, torch.Generator().manual_seed(seed))
        mlm.net.zero_grad()
        reference = mlm.net(input_ids=masked, attention_mask=attention, labels=labels)  # HF's own loss
        reference.loss.backward()
        expected = [p.grad.clone() for p in mlm.net.parameters()]
        mlm.net.zero_grad()
        hook = mlm.net.cls.register_forward_hook(lambda module, args, out: projected.append(len(args[0])))
        loss, correct, count = mlm.bucketed_loss(masked, attention, labels, None)
        hook.remove()
        loss.backward()
        targets = labels != IGNORE
        torch.testing.assert_close(loss, reference.loss)
        for grad, want in zip((p.grad for p in mlm.net.parameters()), expected):
            torch.testing.assert_close(grad, want)
        assert count == targets.sum()
        assert correct == (reference.logits[targets].argmax(-1) == labels[targets]).sum()
        counts.append(int(count))
    assert projected == [math.ceil(count / TARGETS_BUCKET) * TARGETS_BUCKET for count in counts]
    assert len(set(projected)) < len(set(counts)) and max(counts) > TARGETS_BUCKET  # several per bucket


def test_the_slotted_head_gives_the_eager_heads_loss_and_counts():
    mlm = task()
    ids, attention = batch(mlm)
    masked, labels = Masker(mlm.tokenizer.mask_token_id, mlm.tokenizer.all_special_ids, len(mlm.tokenizer),
                            0.15, static=True)(ids, torch.Generator().manual_seed(0))
    with torch.no_grad():
        eager = mlm.bucketed_loss(masked, attention, labels, None)
        slotted = mlm.slotted_loss(masked, attention, labels, None)
    torch.testing.assert_close(slotted[0], eager[0])
    assert slotted[1] == eager[1] and slotted[2] == eager[2] == int((labels != IGNORE).sum())


def test_the_static_masker_keeps_at_most_the_slots_of_a_row_and_masks_only_targets(monkeypatch):
    mlm = task()
    ids, _ = batch(mlm)
    monkeypatch.setattr(masking, "slots_per_row", lambda length, prob: 2)
    masked, labels = Masker(mlm.tokenizer.mask_token_id, mlm.tokenizer.all_special_ids, len(mlm.tokenizer),
                            0.5, static=True)(ids, torch.Generator().manual_seed(0))
    targets = labels != IGNORE
    assert targets.sum(1).max() == 2 and targets.sum() > len(ids)  # the cap bites, rows keep two
    assert ((masked != ids) <= targets).all()  # a token changed without a label would teach nothing
    assert slots_per_row(128, 0.15) == 36 == math.ceil(0.15 * 128 + 4 * math.sqrt(0.15 * 128 * 0.85))


def test_a_compiled_run_trains_on_one_shape_and_learns_what_the_eager_run_learns(workdir):
    """Same seed, same masks (both padded to data.max_length): the compiled run's losses are the
    eager run's, up to the compiler's rounding. Without dropout, whose compiled random numbers are
    not eager's (measured with it: 0.4% apart from the second step on)."""
    settings = [*FAST, "data.max_length=32", "trainer.limit_val_batches=2", "trainer.num_sanity_val_steps=0",
                "model.config.hidden_dropout_prob=0", "model.config.attention_probs_dropout_prob=0"]
    torch._dynamo.reset()
    assert run_app("task.compile=true", *settings) == 0
    # one graph for training and one for validation (no gradients): nothing else compiled
    assert counters["stats"]["unique_graphs"] == 2, dict(counters["stats"])
    assert run_app("data.pad_to_max_length=true", *settings) == 0
    eager_run, compiled_run = sorted(runs(workdir), key=lambda run: run.data.params["task.compile"])
    assert compiled_run.info.status == eager_run.info.status == "FINISHED"
    assert compiled_run.data.params["task.compile"] == "True"
    for key in ("train/loss", "val/loss"):
        torch.testing.assert_close(compiled_run.data.metrics[key], eager_run.data.metrics[key],
                                   rtol=1e-4, atol=0)
