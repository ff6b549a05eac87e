"""Explanations: Integrated Gradients over tokens, the page and tables a run logs, and the check
that the attributions are faithful; on a planted shortcut the token that decides the label wins."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pandas as pd
import torch

from dataeff.explain.attributions import TokenAttributor
from dataeff.explain.cli import main as explain_cli
from dataeff.explain.faithfulness import comprehensiveness, verdict
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
    attributor = TokenAttributor(net, Tokens(), steps=64)
    ids = torch.tensor([[1, 7, 9, 12, 2], [1, 5, 2, 0, 0]])
    batch = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    targets = torch.tensor([1, 0])
    scores, delta = attributor(batch, targets)
    baseline = attributor.baseline(ids)
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
    assert "explain=integrated_gradients attributes a text classifier's" in capsys.readouterr().err
    assert runs(workdir, "mlm") == []
    write_planted(workdir / "train.tsv", 40, 0)
    write_planted(workdir / "test.tsv", 10, 1)
    assert run_app(*PLANTED, "explain=integrated_gradients", "explain.baseline=zero") == 1
    assert "explain.baseline='zero' is not one of pad | mask" in capsys.readouterr().err
    assert runs(workdir, "classify") == []  # refused before training, not after
