"""Semi-supervised training: the objectives on hand-made logits, and ssl=... runs through the CLI."""

from __future__ import annotations

import math

import pytest
import torch

from dataeff.tasks.semi import Consistency, PseudoLabel, sharpen
from tests.conftest import FAST, metric_history, run_app, runs
from tests.test_own_data import write_reviews


def test_the_uda_loss_is_zero_for_identical_predictions():
    logits = torch.tensor([[2.0, -1.0], [0.3, 0.1], [-4.0, 4.0]])
    loss, _ = Consistency(threshold=0.0, temperature=1.0)(logits, logits.clone())
    assert loss.abs() < 1e-6
    sharpened, _ = Consistency(threshold=0.0, temperature=0.4)(logits, logits.clone())
    assert sharpened > 0  # a sharpened target asks the student to be surer than the teacher


def test_only_confident_predictions_teach_and_their_accuracy_is_counted():
    teacher = torch.tensor([[5.0, 0.0], [0.1, 0.0], [0.0, 5.0], [0.0, 6.0]])  # sure, unsure, sure, sure
    student = torch.zeros(4, 2, requires_grad=True)
    truth = torch.tensor([0, 0, 0, -1])  # the third is wrong, the fourth unknown
    loss, stats = PseudoLabel(threshold=0.9)(teacher, student, truth)
    assert stats["mask_rate"] == 0.75 and stats["known"] == 2 and stats["correct"] == 1
    assert torch.isclose(loss, torch.tensor(0.75 * math.log(2.0)))
    loss.backward()
    assert student.grad[1].abs().sum() == 0  # the unsure one taught nothing


def test_the_weight_ramps_up_and_sharpening_keeps_a_distribution():
    objective = PseudoLabel(weight=2.0, ramp_steps=4)
    assert [objective.weight_at(step) for step in (0, 1, 3, 10)] == [0.5, 1.0, 2.0, 2.0]
    sharp = sharpen(torch.tensor([[0.6, 0.4]]), 0.5)
    assert torch.allclose(sharp.sum(-1), torch.tensor(1.0)) and sharp[0, 0] > 0.6


@pytest.mark.parametrize("method", ["pseudo_label", "uda"])
def test_a_semi_supervised_run_learns_from_unlabelled_text_and_says_how(workdir, method):
    train, test = write_reviews(workdir / "train.tsv", 60, 0), write_reviews(workdir / "test.tsv", 30, 1)
    pool = write_reviews(workdir / "unlabelled.tsv", 200, 2)  # labels known: pseudo-labels are scored
    assert run_app("task=classify", "data=labelled", f"data.train.path={train}", f"data.test.path={test}",
                   f"ssl={method}", f"data.unlabelled.path={pool}", "data.unlabelled.column=sentence",
                   "data.unlabelled_label_column=label", "ssl.objective.threshold=0.0", "ssl.ratio=2",
                   "data.max_length=16", *FAST) == 0
    [run] = runs(workdir, "classify")
    assert run.info.status == "FINISHED" and run.data.params["ssl.name"] == method
    seen = metric_history(workdir, run.info.run_id, "ssl/unlabelled_seen")
    assert seen[-1][1] == 6 * 16 * 2  # every step took ratio x batch unlabelled sentences
    assert {"ssl/loss", "ssl/mask_rate", "ssl/pseudo_label_accuracy", "train/supervised_loss"} <= set(
        run.data.metrics)
    assert 0 <= run.data.metrics["ssl/pseudo_label_accuracy"] <= 1


def test_ssl_without_unlabelled_text_names_the_setting(workdir, capsys):
    write_reviews(workdir / "train.tsv", 20, 0)
    assert run_app("task=classify", "data=labelled", "data.train.path=train.tsv", "ssl=uda", *FAST) == 1
    err = capsys.readouterr().err
    assert "data.unlabelled.path" in err and "Traceback" not in err
