"""Fusion models: every head trains, ablations really drop a modality, fusion beats either
modality where the label needs both, and runs land in MLflow like every other task."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf
from transformers import BertConfig, ViTConfig

from dataeff.errors import UserError
from dataeff.models.fusion import FusionConfig, FusionModel, drop_modality
from dataeff.models.fusion_heads import Features
from dataeff.models.vit import vision_config
from tests.conftest import FAST, run_app, runs, store
from tests.imagedata import write_xor_task

HEADS = ["ConcatHead", "GatedHead", "CrossAttentionHead", "EarlyFusionHead"]
TEXT = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                  intermediate_size=64)
VISION = ViTConfig(image_size=16, patch_size=8, hidden_size=24, num_hidden_layers=1,
                   num_attention_heads=2, intermediate_size=48)


def model(head: str = "ConcatHead", modality: str = "both", dropout: float = 0.0) -> FusionModel:
    torch.manual_seed(0)
    config = FusionConfig(text_config=TEXT, vision_config=VISION, modality=modality,
                          fusion={"_target_": f"dataeff.models.fusion_heads.{head}"},
                          modality_dropout=dropout, num_labels=3)
    return FusionModel(config).eval()


def batch(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[0, 4:] = 0
    return {"input_ids": torch.randint(5, 50, (4, 6), generator=generator), "attention_mask": mask,
            "token_type_ids": torch.zeros(4, 6, dtype=torch.long),
            "pixel_values": torch.randn(4, 3, 16, 16, generator=generator),
            "labels": torch.tensor([0, 1, 2, 1])}


@pytest.mark.parametrize("head", HEADS)
def test_each_head_trains_both_encoders(head):
    net = model(head).train()
    out = net(**batch())
    assert out.logits.shape == (4, 3) and torch.isfinite(out.loss)
    out.loss.backward()
    for part in (net.bert, net.vit, net.head, net.classifier):
        grads = [p.grad for p in part.parameters() if p.requires_grad and p.grad is not None]
        assert grads and any(g.abs().sum() > 0 for g in grads), f"{head}: no gradient in {part}"


def test_text_only_model_ignores_the_image_and_image_only_ignores_the_text():
    text_only, image_only = model(modality="text"), model(modality="image")
    assert text_only.vit is None and image_only.bert is None
    a, b = batch(0), batch(1)
    with torch.no_grad():
        same_text = {**a, "pixel_values": b["pixel_values"]}
        assert torch.equal(text_only(**a).logits, text_only(**same_text).logits)
        same_image = {**a, "input_ids": b["input_ids"]}
        assert torch.equal(image_only(**a).logits, image_only(**same_image).logits)
        assert not torch.equal(model()(**a).logits, model()(**same_text).logits)


def test_modality_dropout_zeroes_exactly_one_modality_per_dropped_example():
    ones = Features(torch.ones(1000, 3, 2), torch.ones(1000, 3, dtype=torch.bool), torch.ones(1000, 2))
    text, image = drop_modality(ones, ones, p=1.0)
    kept_text, kept_image = text.pooled[:, 0], image.pooled[:, 0]
    assert torch.equal(kept_text + kept_image, torch.ones(1000))  # one of the two, never both
    assert 400 < int(kept_text.sum()) < 600
    assert torch.equal(text.sequence[:, :, 0], kept_text[:, None].expand(-1, 3))


def test_saved_model_reloads_with_the_same_outputs(tmp_path):
    net = model("CrossAttentionHead")
    net.save_pretrained(tmp_path)
    again = FusionModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        assert torch.allclose(net(**batch()).logits, again(**batch()).logits)


@pytest.mark.parametrize(("size", "patch", "data_size", "message"), [
    (60, 8, 60, "cannot be cut into 8px patches"),
    (64, 8, 32, "set data.image_size=64"),
])
def test_image_sizes_the_vit_cannot_take(size, patch, data_size, message):
    vision = OmegaConf.create({"config": {"_target_": "transformers.ViTConfig", "image_size": size,
                                          "patch_size": patch}})
    with pytest.raises(UserError, match=message):
        vision_config(vision, data_size)


XOR = ["task=fusion", "data=manifest", "data.train.path=xor/train.csv", "data.test.path=xor/test.csv",
       "vision.config.image_size=32", "vision.config.hidden_size=32", "model.config.hidden_size=32",
       "tokenizer.vocab_size=200", "data.batch_size=32", "trainer.max_steps=200",
       "trainer.val_check_interval=50", "trainer.enable_progress_bar=false",
       "trainer.enable_model_summary=false", "study=xor"]


@pytest.mark.slow
def test_fusion_beats_each_modality_when_the_label_needs_both(workdir):
    write_xor_task(workdir / "xor", n_train=512, n_test=128, size=32)
    for modality in ("text", "image", "both"):
        assert run_app(*XOR, f"model.modality={modality}") == 0
    accuracy = {r.data.tags["model.modality"]: r.data.metrics["test/accuracy"] for r in runs(workdir, "xor")}
    assert accuracy["both"] >= 0.9, accuracy
    assert accuracy["text"] <= 0.7 and accuracy["image"] <= 0.7, accuracy


def test_fusion_run_lands_in_mlflow_like_the_other_tasks(workdir):
    write_xor_task(workdir / "xor", n_train=64, n_test=16, size=32)
    assert run_app(*XOR, *FAST, "fusion=gated", "callbacks.throughput.every_n_steps=2") == 0
    [run] = runs(workdir, "xor")
    tags = run.data.tags
    assert run.info.status == "FINISHED"
    assert (tags["task.name"], tags["model.modality"], tags["fusion.name"], tags["vision.name"]) == (
        "fusion", "both", "gated", "vit_tiny")
    assert tags["data.image_size"] == "32" and tags["data.skipped_images"] == "0"
    assert {"test/accuracy", "val/accuracy", "train/loss", "train/examples_per_sec"} <= set(run.data.metrics)
    exported = {a.path for a in store(workdir).list_artifacts(run.info.run_id, "hf_model")}
    assert {"hf_model/config.json", "hf_model/model.safetensors", "hf_model/tokenizer.json"} <= exported
    per_class = pd.read_csv(store(workdir).download_artifacts(run.info.run_id, "test_per_class.csv"))
    assert set(per_class.label) == {"no", "yes"} and per_class.support.sum() == 16
    right = (per_class.recall * per_class.support).sum()
    assert right / 16 == pytest.approx(run.data.metrics["test/accuracy"])


def test_text_encoder_from_an_mlm_run_and_vit_from_a_local_folder(workdir):
    """The BERT of an MLM run (by MLflow run id) and a saved ViT both load into the fusion model."""
    from transformers import ViTModel

    from dataeff.models.vit import pretrained_vit_weights

    assert run_app(*FAST) == 0
    [mlm] = runs(workdir, "mlm")
    vit = ViTModel(ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                             num_attention_heads=2, intermediate_size=64), add_pooling_layer=False)
    vit.save_pretrained(workdir / "vit")
    write_xor_task(workdir / "xor", n_train=64, n_test=16, size=32)
    overrides = [o for o in XOR if not o.startswith(("vision.", "model.config", "tokenizer."))]
    assert run_app(*overrides, *FAST, "init=mlflow_run", f"init.source={mlm.info.run_id}",
                   "vision=pretrained", f"vision.pretrained={workdir / 'vit'}", "data.image_size=32",
                   "trainer.precision=bf16-mixed") == 0
    [run] = runs(workdir, "xor")
    assert run.info.status == "FINISHED" and run.data.tags["init.source_run_id"] == mlm.info.run_id
    assert int(run.data.tags["init.loaded_tensors"]) > 10
    assert run.data.tags["model.name"] == "bert_tiny"  # the MLM run's architecture is the preset's
    vision = OmegaConf.create({"pretrained": str(workdir / "vit")})
    weights, report = pretrained_vit_weights(vision)
    assert weights and all(key.startswith("vit.") for key in weights)
    assert run.data.tags["vision.loaded_tensors"] == str(len(weights)) == str(len(report["loaded"]))
    init_report = json.loads(next((workdir / "outputs").rglob("init_report.json")).read_text())
    assert set(init_report) == {"text", "vision"} and init_report["vision"]["missing"] == []
    assert init_report["text"]["source"].endswith("hf_model")
    assert torch.equal(weights["vit.embeddings.patch_embeddings.projection.weight"],
                       vit.embeddings.patch_embeddings.projection.weight)


def test_a_vit_folder_that_lacks_weights_is_refused(tmp_path):
    # before: transformers filled the missing weights in at random, with a warning only
    from safetensors.torch import load_file, save_file
    from transformers import ViTModel

    from dataeff.models.vit import pretrained_vit_weights

    config = ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=64)
    ViTModel(config, add_pooling_layer=False).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    del weights["encoder.layer.0.attention.attention.query.weight"]
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(UserError, match="lacks 1 ViT encoder weight"):
        pretrained_vit_weights(OmegaConf.create({"pretrained": str(tmp_path)}))
