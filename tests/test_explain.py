"""Explanations: Integrated Gradients over tokens, the page and tables a run logs, and the check
that the attributions are faithful; on a planted shortcut the token that decides the label wins."""

from __future__ import annotations

import base64
import io
import random
import re
from pathlib import Path

import pandas as pd
import torch
from PIL import Image
from torchvision.io import write_png
from transformers import BertConfig, ViTConfig

from dataeff.explain.attributions import Attributor, token_arm
from dataeff.explain.cli import main as explain_cli
from dataeff.explain.explainer import Explainer
from dataeff.explain.faithfulness import comprehensiveness, verdict
from dataeff.models.fusion import FusionConfig, FusionModel
from dataeff.models.pooled import BertForMeanPooledClassification, MeanPooledBertConfig
from dataeff.runs.footprint import local_path
from tests.conftest import run_app, runs

SHORTCUT = {"yes": "zorbly", "no": "quaxen"}
FILLER = ["the", "a", "film", "plot", "cast", "was", "very", "quite", "rather", "story", "scene", "actor",
          "music", "long", "short"]
PLANTED = ["task=classify", "data=labelled", "data.train.path=train.tsv", "data.test.path=test.tsv",
           "data.text_column=sentence", "data.max_length=16", "trainer.max_steps=60",
           "trainer.val_check_interval=20", "trainer.enable_progress_bar=false",
           "trainer.enable_model_summary=false"]


def write_planted(path: Path, rows: int, seed: int) -> None:
    """Six filler words shared by both classes, and the one word that decides the label."""
    rng = random.Random(seed)
    lines = ["sentence\tlabel"]
    for index in range(rows):
        label = ("yes", "no")[index % 2]
        words = rng.sample(FILLER, 6)
        words.insert(rng.randrange(7), SHORTCUT[label])
        lines.append(f"{' '.join(words)}\t{label}")
    path.write_text("\n".join(lines) + "\n")


class Tokens:
    pad_token_id, mask_token_id, cls_token_id, sep_token_id = 0, 3, 1, 2


def test_attributions_add_up_to_the_probabilitys_change_from_the_baseline():
    """Integrated Gradients' completeness: per text, the token scores sum to p(x) - p(baseline)."""
    torch.manual_seed(0)
    config = MeanPooledBertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                  intermediate_size=32, num_labels=2, max_position_embeddings=16)
    net = BertForMeanPooledClassification(config).eval()
    arm = token_arm(net, Tokens())
    attributor = Attributor(net, [arm], steps=64)
    ids = torch.tensor([[1, 7, 9, 12, 2], [1, 5, 2, 0, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    targets = torch.tensor([1, 0])
    scores, delta = attributor(batch, targets)
    scores = scores["text"]
    baseline = arm.baseline(ids)
    assert baseline.tolist() == [[1, 0, 0, 0, 2], [1, 0, 2, 0, 0]]  # [CLS] and [SEP] stay
    with torch.no_grad():
        change = (attributor.probabilities(ids, batch["attention_mask"], batch["token_type_ids"])
                  - attributor.probabilities(baseline, batch["attention_mask"], batch["token_type_ids"]))
    torch.testing.assert_close(scores.sum(-1), change[[0, 1], targets], atol=2e-3, rtol=0)
    assert scores[1, 3:].abs().sum() == 0 and delta.abs().max() < 2e-3  # padding attributes nothing


def test_faithfulness_prefers_the_tokens_the_model_reads():
    """A model that reads token 9 alone: deleting the top-attributed token (9) drops its
    probability, deleting a random one mostly does not."""
    def predict(texts):
        return torch.tensor([[0.1, 0.9] if 9 in ids.tolist() else [0.9, 0.1] for ids, _ in texts])

    texts = [(torch.tensor([1, 4, 9, 5, 6, 7, 2]), torch.zeros(7, dtype=torch.long)) for _ in range(12)]
    scores = [torch.tensor([0, 0.01, 0.8, 0.02, 0, 0, 0]) for _ in texts]
    deletable = [torch.arange(1, 6) for _ in texts]
    table = comprehensiveness(predict, texts, scores, deletable, torch.ones(12, dtype=torch.long), repeats=4)
    assert (table["without_top"] == 0.1).all() and table["without_random"].mean() > 0.5
    metrics, faithful = verdict(table)
    assert faithful and metrics["explain/faithfulness_p"] < 0.01
    _, backwards = verdict(table.rename(columns={"without_top": "without_random",
                                                 "without_random": "without_top"}))
    assert not backwards


def test_a_planted_shortcut_is_the_most_attributed_token_of_its_class(workdir):
    write_planted(workdir / "train.tsv", 400, 0)
    write_planted(workdir / "test.tsv", 100, 1)
    assert run_app(*PLANTED, "explain=integrated_gradients", "explain.max_examples=60") == 0
    [run] = runs(workdir, "classify")
    assert run.info.status == "FINISHED" and run.data.metrics["test/accuracy"] == 1.0
    folder = local_path(run.info.artifact_uri) / "explanations"
    tokens = pd.read_csv(folder / "class_tokens.csv")
    top = tokens.sort_values("mean_attribution", ascending=False).groupby("predicted").head(1)
    assert dict(zip(top["predicted"], top["token"])) == SHORTCUT
    metrics, tags = run.data.metrics, run.data.tags
    assert metrics["explain/examples"] == 60 and metrics["explain/convergence_delta"] < 0.01
    assert metrics["explain/comprehensiveness"] > metrics["explain/comprehensiveness_random"]
    assert tags["explain.faithful"] == "true"
    assert "pass the faithfulness check" in (folder / "explanations.md").read_text()
    # the page: each shown example's tokens with their scores, as the CSV has them
    table = pd.read_csv(folder / "explanations.csv")
    page = (folder / "explanations.html").read_text()
    example = table[table["group"] == "random"].iloc[:9]
    spans = re.findall(r"title='([-+0-9.]+)'>([^<]+)</span>", page)
    for row in example.itertuples():
        assert (f"{row.attribution:+.4f}", row.token) in spans
    assert "label <b>" in page and "predicted <b" in page and "(p=" in page
    # on demand: texts of your own, explained by the finished run's exported model
    (workdir / "mine.txt").write_text("the film was quaxen\nzorbly music\n")
    assert explain_cli(["--run", run.info.run_id, "--input", "mine.txt", "max_examples=2"]) == 0
    mine = local_path(run.info.artifact_uri) / "explanations" / "mine.txt"
    rows = pd.read_csv(mine / "explanations.csv")
    assert set(rows["label"]) == {"?"} and set(rows["predicted"]) == {"no", "yes"}
    assert rows.loc[rows["attribution"].idxmax(), "token"] in SHORTCUT.values()
    assert "quaxen</span>" in (mine / "explanations.html").read_text()
    assert explain_cli(["--run", run.info.run_id, "--input", "test.tsv", "--label-column", "answer"]) == 1
    assert explain_cli(["--run", run.info.run_id, "--input", "mine.txt", "stesp=3"]) == 1  # a typo: said
    # the audit's likely label errors, each linked to its explanation by this classifier
    assert run_app("task=audit", *PLANTED[1:5], "data.label_noise=0.05",
                   f"audit.labels.explain_run={run.info.run_id}") == 0
    [audit] = runs(workdir, "audit")
    audited = local_path(audit.info.artifact_uri) / "audit"
    issues = pd.read_csv(audited / "label_issues.csv")
    assert len(issues) >= 5 and list(issues["explanation"]) == [
        f"explanations/explanations.html#example-{row}" for row in issues["row"]]
    page = (audited / "explanations" / "explanations.html").read_text()
    assert all(f"id='example-{row}'" in page for row in issues["row"])


def test_explain_on_a_task_without_tokens_or_with_a_bad_baseline_is_refused_before_any_run(workdir, capsys):
    assert run_app("task=mlm", "explain=integrated_gradients") == 1
    assert "explain=integrated_gradients attributes a classifier's" in capsys.readouterr().err
    assert runs(workdir, "mlm") == []
    write_planted(workdir / "train.tsv", 40, 0)
    write_planted(workdir / "test.tsv", 10, 1)
    assert run_app(*PLANTED, "explain=integrated_gradients", "explain.baseline=zero") == 1
    assert "explain.baseline='zero' is not one of pad | mask" in capsys.readouterr().err
    assert runs(workdir, "classify") == []  # refused before training, not after


def write_corner_task(folder: Path, per_class: int, seed: int) -> None:
    """Grey noise everywhere, and a top-left 8x8 patch that is red or blue: the label."""
    generator = torch.Generator().manual_seed(seed)
    for label, colour in (("red", (220, 30, 30)), ("blue", (30, 30, 220))):
        (folder / label).mkdir(parents=True)
        for i in range(per_class):
            image = torch.randint(96, 160, (3, 32, 32), generator=generator, dtype=torch.uint8)
            image[:, :8, :8] = torch.tensor(colour, dtype=torch.uint8)[:, None, None]
            write_png(image, str(folder / label / f"{i}.png"))


def test_a_planted_corner_is_the_most_attributed_patch_of_its_class_and_the_page_shows_it(workdir):
    write_corner_task(workdir / "train", 128, 0)
    write_corner_task(workdir / "test", 16, 1)
    assert run_app("task=fusion", "model.modality=image", "data=image_folder", "data.train.path=train",
                   "data.test.path=test", "vision.config.image_size=32", "data.batch_size=16",
                   "trainer.max_steps=100", "trainer.val_check_interval=25", "init.lr=5e-4",
                   "task.objective=val/loss", "task.objective_mode=min", "explain=integrated_gradients",
                   "explain.steps=128",
                   "trainer.enable_progress_bar=false", "trainer.enable_model_summary=false") == 0
    [run] = runs(workdir, "fusion")
    assert run.info.status == "FINISHED" and run.data.metrics["test/accuracy"] >= 0.9
    folder = local_path(run.info.artifact_uri) / "explanations"
    patches = pd.read_csv(folder / "class_patches.csv")
    top = patches.sort_values("mean_attribution", ascending=False).groupby("predicted").head(1)
    assert set(top["patch"]) == {"patch 0,0"} and set(top["predicted"]) == {"red", "blue"}
    metrics = run.data.metrics
    assert metrics["explain/examples"] == 32 and metrics["explain/convergence_delta"] < 0.02
    assert metrics["explain/comprehensiveness"] > metrics["explain/comprehensiveness_random"]
    assert run.data.tags["explain.faithful"] == "true"
    summary = (folder / "explanations.md").read_text()
    assert "pass the faithfulness check: deleting each example's top 20% attributed patches" in summary
    page = (folder / "explanations.html").read_text()
    shown = pd.read_csv(folder / "explanations.csv").query("group != 'attributed'")["example"].nunique()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == shown + 2  # each shown example, and each class's mean map
    assert all(Image.open(io.BytesIO(base64.b64decode(png))).size == (192, 192) for png in images)


class WordTokens(Tokens):
    all_special_ids = [0, 1, 2, 3]

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [f"w{i}" for i in ids]


def tiny_image_text_net() -> FusionModel:
    torch.manual_seed(0)
    text = BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32, max_position_embeddings=16)
    vision = ViTConfig(image_size=16, patch_size=8, hidden_size=16, num_hidden_layers=1,
                       num_attention_heads=2, intermediate_size=32)
    config = FusionConfig(text_config=text, vision_config=vision, modality="both", num_labels=2)
    return FusionModel(config).eval()


def test_an_image_text_models_tokens_and_patches_share_one_path_and_are_checked_each(tmp_path):
    """Text and image attributed together: their scores add up to the probability's change from
    the baseline (noise image, [PAD] text); each modality gets its own faithfulness check."""
    net, tokens = tiny_image_text_net(), WordTokens()
    generator = torch.Generator().manual_seed(0)
    examples = [(torch.tensor([1, 5 + i % 7, 9, 2]), torch.zeros(4, dtype=torch.long),
                 torch.randint(0, 256, (3, 16, 16), generator=generator, dtype=torch.uint8), i % 2)
                for i in range(12)]
    explainer = Explainer(steps=256, max_examples=12, random=2, deletion_repeats=2)
    reader = explainer.reader(net, tokens, ([0.5] * 3, [0.5] * 3))
    items, _ = reader.read(examples)
    targets = reader.probabilities(items).argmax(-1)
    scores, delta = reader.attribute(items, targets)
    assert [len(s) for s in scores["text"]] == [4] * 12 and [len(s) for s in scores["image"]] == [4] * 12
    batch = reader.batch(items)
    with torch.no_grad():
        start = {**batch, "input_ids": torch.where(batch["input_ids"] > 2, 0, batch["input_ids"]),
                 "pixel_values": reader.baseline(batch["pixel_values"])}
        change = net(**batch).logits.softmax(-1) - net(**start).logits.softmax(-1)
    change = change[torch.arange(12), targets]
    together = torch.stack([t.sum() + i.sum() for t, i in zip(scores["text"], scores["image"])])
    torch.testing.assert_close(together, change, atol=5e-3, rtol=0)
    assert delta.abs().max() < 5e-3

    outcome = explainer.explain(reader, examples, ["no", "yes"], tmp_path)
    for modality in ("text", "image"):
        assert f"explain/{modality}/comprehensiveness" in outcome.metrics
    assert 0 < outcome.metrics["explain/image_share"] < 1
    assert outcome.summary[1].startswith(("Tokens pass:", "Tokens do NOT pass:"))
    table = pd.read_csv(tmp_path / "explanations.csv")
    assert set(table["modality"]) == {"text", "image"} and len(table) == 12 * (4 + 4)
    page = (tmp_path / "explanations.html").read_text()
    shown, classes = table.query("group != 'attributed'")["example"].nunique(), table["predicted"].nunique()
    assert "w9</span>" in page and page.count("data:image/png;base64,") == shown + classes  # + class maps
