"""task=mim: self-supervised pretraining of the ViT (masked patches or denoising), exported as a ViT
folder that a fusion run starts from."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from transformers import ViTModel

from dataeff.models.shape import DataShape
from dataeff.models.vit import masked_image_net
from dataeff.tasks.mim import MIMTask
from tests.conftest import FAST, metric_history, run_app, runs, store

VIT = OmegaConf.create({"name": "vit_tiny", "pretrained": None, "config": {
    "_target_": "transformers.ViTConfig", "image_size": 16, "patch_size": 4, "num_channels": 3,
    "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64}})


def tiny_task(**settings) -> MIMTask:
    torch.manual_seed(0)
    net, _ = masked_image_net(None, None, DataShape("pixels", image_size=16), vision=VIT)
    return MIMTask(net, None, optimizer=lambda params: torch.optim.AdamW(params, lr=3e-3), **settings)


def test_masking_hides_the_share_of_patches_asked_for_and_only_they_are_reconstructed():
    task = tiny_task(mask_ratio=0.75)
    pixels = torch.rand(4, 3, 16, 16) * 2 - 1
    patches = task.patch_mask(pixels, torch.Generator().manual_seed(1))
    assert patches.shape == (4, 16) and patches.sum(1).tolist() == [12] * 4  # 16 patches of 4x4 px
    loss, seen, shown = task(pixels, torch.Generator().manual_seed(1))
    hidden = task.pixel_mask(patches).expand_as(pixels)
    assert torch.equal(seen[hidden], torch.zeros(int(hidden.sum())))
    assert torch.equal(seen[~hidden], pixels[~hidden])
    assert torch.equal(shown[~hidden], pixels[~hidden])  # the visible patches, as given
    assert loss.item() > 0 and torch.equal(task(pixels, torch.Generator().manual_seed(1))[0], loss)


def test_denoising_learns_to_remove_the_noise():
    task = tiny_task(method="denoise", noise_std=0.3)
    images = torch.zeros(8, 3, 16, 16)
    images[:, 0, 4:12, 4:12] = 1.0  # a red square on black, the kind of picture easy-VQA draws
    images = images * 2 - 1
    optimizer = torch.optim.AdamW(task.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss, _, _ = task(images)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    noisy_error = torch.nn.functional.mse_loss(images + 0.3 * torch.randn_like(images), images).item()
    assert losses[-1] < losses[0] / 3 and losses[-1] < noisy_error  # better than the noisy input


def test_denoising_gives_every_trained_parameter_a_gradient():
    # DDP (find_unused_parameters=False) fails at the second step on a parameter without one: the
    # mask token, which denoising never uses, is not trained
    task = tiny_task(method="denoise")
    loss, _, _ = task(torch.rand(2, 3, 16, 16))
    loss.backward()
    assert all(p.grad is not None for p in task.parameters() if p.requires_grad)
    assert not task.net.vit.embeddings.mask_token.requires_grad


def test_an_unknown_method_is_refused():
    with pytest.raises(Exception, match="task.method='paint' is not one of masked, denoise"):
        tiny_task(method="paint")


def test_a_mim_run_logs_its_reconstructions_and_exports_the_vit_a_fusion_run_starts_from(workdir):
    assert run_app("task=mim", *FAST, "trainer.limit_test_batches=1") == 0
    [run] = runs(workdir, "mim")
    assert run.info.status == "FINISHED" and run.data.tags["task.method"] == "masked"
    assert [step for step, _ in metric_history(workdir, run.info.run_id, "val/loss")] == [2, 5]  # Lightning's
    assert int(run.data.tags["data.train_size"]) == 3600  # easy-VQA's pictures, once each, not its questions
    client = store(workdir)
    pictures = {Path(a.path).name for a in client.list_artifacts(run.info.run_id, "reconstructions")}
    assert pictures == {"step_000003.png", "step_000006.png"}
    png = Image.open(client.download_artifacts(run.info.run_id, "reconstructions/step_000006.png",
                                               str(workdir)))
    assert png.size == (8 * 66 + 2, 3 * 66 + 2)  # 8 images a row: originals, masked, reconstructed
    folder = client.download_artifacts(run.info.run_id, "hf_model", str(workdir / "exported"))
    assert not (Path(folder) / "tokenizer.json").exists()  # images only: no tokenizer was made
    vit, info = ViTModel.from_pretrained(folder, add_pooling_layer=False, output_loading_info=True)
    assert info["missing_keys"] == set()

    assert run_app("task=fusion", "vision=pretrained", f"vision.pretrained={folder}", *FAST,
                   "trainer.limit_test_batches=1") == 0
    [fusion] = runs(workdir, "fusion")
    report = json.loads(next((workdir / "outputs" / "fusion").rglob("init_report.json")).read_text())
    assert set(report["vision"]["loaded"]) == {f"vit.{key}" for key in vit.state_dict()}
    assert fusion.data.tags["vision.source"] == str(Path(folder)) and fusion.info.status == "FINISHED"


def test_a_folder_of_photos_without_classes_pretrains(workdir):
    # before: one sub-folder is one class, and a classifier's two-class check refused the data
    photos = workdir / "photos" / "holiday"
    photos.mkdir(parents=True)
    for i in range(24):
        Image.new("RGB", (64, 64), (10 * i, 255 - 10 * i, 128)).save(photos / f"{i}.png")
    assert run_app("task=mim", "data=image_folder", f"data.train.path={photos.parent}", *FAST) == 0
    [run] = runs(workdir, "mim")
    assert run.info.status == "FINISHED" and run.data.tags["data.num_classes"] == "0"
    assert int(run.data.tags["data.train_size"]) + int(run.data.tags["data.val_size"]) <= 24


# each condition's pretraining run, a few steps long (its method is the condition's, vision.init.method)
QUICK_PRETRAINING = ("++vision.init.pretrain=['task=mim','task.method=${vision.init.method}',"
                     "'trainer.max_steps=4','trainer.val_check_interval=2','trainer.limit_val_batches=1',"
                     "'trainer.limit_test_batches=1','trainer.enable_progress_bar=false']")


@pytest.mark.slow
def test_vision_init_pretrains_once_on_all_the_images_and_every_later_job_starts_from_it(workdir):
    study = ["experiment=vision_transfer_curve", QUICK_PRETRAINING, *FAST, "trainer.limit_test_batches=1"]
    # trains it, then the job; its data typed here, the study's default below: one pretraining run
    assert run_app(*study, "data=easyvqa_shapes", "vision/init=mim", "data.fraction=0.1") == 0
    # a sweep: the denoising run is trained before the jobs fan out, the masked one is found again
    assert run_app(*study, "vision/init=mim,denoise", "data.fraction=0.1,0.5", "data.data_seed=0",
                   multirun=True) == 0
    runs_ = runs(workdir, "vision_transfer_curve")
    pretraining = [r for r in runs_ if r.data.tags.get("role") == "pretraining"]
    assert [r.data.tags["task.method"] for r in pretraining] == ["masked", "denoise"]
    assert {r.data.tags["data.train_size"] for r in pretraining} == {"2796"}  # every picture, no labels
    jobs = [r for r in runs_ if r.data.tags.get("task.name") == "fusion"]
    source = {r.data.tags["task.method"]: r.info.run_id for r in pretraining}
    assert len(jobs) == 5 and {r.info.status for r in runs_} == {"FINISHED"}
    for job in jobs:
        assert job.data.tags["vision.source_run_id"] == source[
            {"mim": "masked", "denoise": "denoise"}[job.data.tags["vision.init.name"]]]
    assert pretraining[1].info.end_time < min(j.info.start_time for j in jobs[1:])  # before the fan-out
    client = store(workdir)
    exported = client.download_artifacts(source["masked"], "hf_model", str(workdir / "mim"))
    vit = ViTModel.from_pretrained(exported, add_pooling_layer=False)
    first = json.loads(Path(client.download_artifacts(jobs[0].info.run_id, "init_report.json",
                                                      str(workdir))).read_text())["vision"]
    assert first["source_run_id"] == source["masked"]
    assert set(first["loaded"]) == {f"vit.{key}" for key in vit.state_dict()}  # the whole encoder


def test_a_vision_init_that_names_a_run_outside_a_job_is_refused():
    vision = OmegaConf.merge(VIT, {"init": {"name": "mim", "kind": "pretrain"}})
    with pytest.raises(Exception, match="vision/init=mim names a run, which only a dataeff-train job"):
        masked_image_net(None, None, DataShape("pixels", image_size=16), vision=vision)
