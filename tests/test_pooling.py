"""model.pooling: task=classify and the fusion text arm read the same vector, so that the two
text-only baselines of a study are one model."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from transformers import AutoModelForSequenceClassification, BertConfig

from dataeff.models.bert import classifier_net
from dataeff.models.fusion import FusionConfig, FusionModel
from dataeff.models.pooled import BertForMeanPooledClassification
from dataeff.models.shape import DataShape
from tests.conftest import FAST, run_app, runs


class Vocab:
    pad_token_id = 0

    def __len__(self):
        return 40


def model_cfg(pooling: str):
    return OmegaConf.create({"pooling": pooling, "config": {
        "_target_": "transformers.BertConfig", "hidden_size": 32, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 64}})


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_classify_and_the_fusion_text_arm_are_the_same_model(pooling):
    torch.manual_seed(0)
    classify, _ = classifier_net(model_cfg(pooling), Vocab(), DataShape("t", ("a", "b", "c")))
    text_config = BertConfig(**{k: v for k, v in classify.config.to_dict().items() if k != "model_type"})
    fusion = FusionModel(FusionConfig(text_config=text_config, modality="text", pooling=pooling,
                                      num_labels=3))
    assert set(fusion.state_dict()) == set(classify.state_dict())  # same parameters, pooler or none
    fusion.load_state_dict(classify.state_dict())
    ids = torch.randint(1, 40, (4, 9))
    mask = torch.ones_like(ids)
    mask[:2, 5:] = 0  # padding must not move the mean
    classify.eval(), fusion.eval()
    with torch.no_grad():
        ours = classify(input_ids=ids, attention_mask=mask).logits
        theirs = fusion(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
    torch.testing.assert_close(ours, theirs)
    has_pooler = any(k.startswith("bert.pooler.") for k in classify.state_dict())
    assert has_pooler == (pooling == "cls")


def test_a_mean_pooled_classifier_exports_as_itself(workdir):
    # a CLS-pooled class loading these weights would predict from the wrong vector: its own model
    # type makes a library that does not know it refuse instead
    assert run_app(*FAST, "task=classify", "model.pooling=mean", "data.fraction=0.05") == 0
    [run] = runs(workdir, "classify")
    assert run.data.params["model.pooling"] == "mean"
    folder = next((workdir / "outputs").rglob("hf_model"))
    assert '"model_type": "dataeff_bert_mean"' in (folder / "config.json").read_text()
    model = AutoModelForSequenceClassification.from_pretrained(folder)
    assert isinstance(model, BertForMeanPooledClassification)


def test_an_unknown_pooling_is_refused_before_a_run_starts(workdir, capsys):
    assert run_app(*FAST, "task=classify", "model.pooling=max") == 1
    assert "model.pooling='max' is not one of cls | mean" in capsys.readouterr().err
    assert runs(workdir, "classify") == []
