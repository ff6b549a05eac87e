"""Length-grouped batches: every example once, little padding, a random batch order that changes
every epoch, and evaluation longest first; under DDP each process's batches stay grouped."""

import csv
import random

import pytest
import torch
from omegaconf import OmegaConf

from dataeff.data.labelled import LabelledTextDataModule
from dataeff.data.order import EpochSampler, group_by_length
from dataeff.data.sources import TextFile
from dataeff.tokenizer import train_wordpiece

WORDS = ["the", "a", "film", "was", "good", "bad", "very", "long", "short", "and", "but", "not", "quite"]


def sentences(count: int, seed: int = 0) -> list[tuple[str, str]]:
    """Sentences of 2 to 40 words, labelled by their first word: lengths as varied as real reviews."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        words = [rng.choice(WORDS) for _ in range(rng.randint(2, 40))]
        rows.append((f"{'good' if i % 2 else 'bad'} {' '.join(words)}", str(i % 2)))
    return rows


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("order")
    for name, count in (("train", 600), ("test", 101)):
        with open(folder / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence", "label"])
            writer.writerows(sentences(count, seed=len(name)))
    return folder


@pytest.fixture(scope="module")
def tokenizer():
    return train_wordpiece([text for text, _ in sentences(200)], vocab_size=120)


def datamodule(folder, tokenizer, **kwargs) -> LabelledTextDataModule:
    data = LabelledTextDataModule("order", TextFile(str(folder / "train.csv")),
                                  test=TextFile(str(folder / "test.csv")), text_column="sentence",
                                  batch_size=16, **kwargs)
    data.set_tokenizer(tokenizer)
    data.setup()
    return data


def real_share(loader) -> float:
    """Real tokens / padded positions over the loader's batches: what the model computes on."""
    real = positions = 0
    for batch in loader:
        real += int(batch["attention_mask"].sum())
        positions += batch["attention_mask"].numel()
    return real / positions


def test_grouped_batches_pad_little_and_still_see_every_example_once(data_files, tokenizer):
    grouped, random_order = (datamodule(data_files, tokenizer, group_by_length=flag)
                             for flag in (True, False))
    shares = {name: real_share(data.train_dataloader()) for name, data in
              (("grouped", grouped), ("random", random_order))}
    assert shares["random"] < 0.7 and shares["grouped"] > 0.9, shares  # measured 0.58 and 0.95
    seen = [index for _, index in grouped.train_dataloader().sampler]
    assert sorted(seen) == list(range(len(grouped.datasets["train"])))
    # evaluation: longest first
    assert real_share(grouped.test_dataloader()) > real_share(random_order.test_dataloader()) + 0.2
    lengths = grouped.datasets["test"].lengths()
    assert list(grouped.test_dataloader().sampler) == lengths.argsort(descending=True, stable=True).tolist()


def test_batches_change_every_epoch_and_repeat_for_the_same_seed_and_epoch():
    lengths = torch.randint(3, 60, (500,))

    def batches(seed, epoch):
        sampler = EpochSampler(500, seed, lengths, unit=16)
        sampler.set_epoch(epoch)
        order = [index for _, index in sampler]
        return [frozenset(order[i:i + 16]) for i in range(0, 500, 16)]

    assert batches(0, 0) == batches(0, 0)
    assert len(set(batches(0, 0)) & set(batches(0, 1))) < 5  # new batches, not just a new batch order
    assert batches(0, 0) != batches(1, 0)


@pytest.mark.parametrize("size", [1, 15, 16, 17, 801])
def test_only_the_last_unit_is_short_and_each_unit_has_similar_lengths(size):
    lengths = torch.randint(3, 60, (size,))
    generator = torch.Generator().manual_seed(0)
    order = group_by_length(torch.randperm(size, generator=generator), lengths, 16, generator)
    assert sorted(order.tolist()) == list(range(size))
    units = order.split(16)
    assert all(len(unit) == 16 for unit in units[:-1])
    if size > 16 * 50:  # a window of 50 units spans the whole range: each unit is narrow
        spread = torch.tensor([(lengths[unit].max() / lengths[unit].min()).item() for unit in units[:-1]])
        assert spread.median() < 1.25


def test_under_ddp_each_process_gets_grouped_batches():
    """A DDP wrapper deals a sampler's indices out in turn (rank r: r, r + world, ...), so the sampler
    groups batch size x world: each process's batch comes from one group."""
    world, batch = 2, 8
    lengths = torch.randint(3, 60, (1000,))
    order = [index for _, index in EpochSampler(1000, 0, lengths, unit=batch * world)]
    for rank in range(world):
        mine = torch.tensor(order[rank::world])
        spread = [(lengths[b].max() / lengths[b].min()).item() for b in mine.split(batch)[:-1]]
        assert torch.tensor(spread).median() < 1.3


def test_unlabelled_batches_of_semi_supervised_training_are_grouped_too(data_files, tokenizer):
    """The unlabelled batch is `ssl.ratio` times the labelled one: most of what a step computes."""
    ssl = OmegaConf.create({"objective": "pseudo_label", "ratio": 3, "augment": None})
    pool = TextFile(str(data_files / "train.csv"), column="sentence")
    shares = {}
    for flag in (True, False):
        data = datamodule(data_files, tokenizer, ssl=ssl, unlabelled=pool, group_by_length=flag)
        masks = [batch["teacher"]["attention_mask"] for batch in data.train_dataloader()["unlabelled"]]
        shares[flag] = sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)
    assert shares[False] < 0.7 and shares[True] > 0.85, shares  # measured 0.56 and 0.88 (by characters)
