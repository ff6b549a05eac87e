"""Active learning: acquisition functions on hand-made outputs, the loop's bookkeeping (no label is
seen before it is queried, none is queried twice) and the loop as MLflow runs through the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from omegaconf import OmegaConf

from dataeff.active import rounds as rounds_module
from dataeff.active.acquisition import STRATEGIES, PoolView, choose
from dataeff.active.loop import Loop, Oracle, nearest_to_centres
from dataeff.models.vectors import Texts
from dataeff.report.cli import main as report_main
from tests.conftest import FAST, cli_env, metric_history, run_app, runs, store
from tests.test_own_data import write_reviews

PROBS = torch.tensor([[0.90, 0.05, 0.05],   # 0: confident
                      [0.50, 0.48, 0.02],   # 1: the closest call between two classes
                      [0.40, 0.30, 0.30],   # 2: the flattest
                      [0.60, 0.20, 0.20]])  # 3: unsure, but not a close call


def picks(strategy: str, view: PoolView, k: int = 1) -> list[int]:
    return choose(strategy, view, k, seed=0)[0].tolist()


def test_uncertainty_strategies_pick_what_they_should():
    view = PoolView(size=4, probs=PROBS)
    assert picks("margin", view) == [1]
    assert picks("entropy", view) == [2]
    assert picks("least_confidence", view) == [2]
    assert picks("least_confidence", view, 4)[-1] == 0  # the most confident comes last
    assert sorted(picks("random", view, 4)) == [0, 1, 2, 3]


def test_bald_picks_where_dropout_samples_disagree():
    agree = torch.tensor([[0.5, 0.5], [0.5, 0.5]])     # uncertain, but every sample says so
    disagree = torch.tensor([[0.99, 0.01], [0.01, 0.99]])  # each sample sure, of another class
    samples = torch.stack([agree, disagree], dim=1)  # (T=2, N=2, C=2)
    view = PoolView(size=2, probs=samples.mean(0), mc_probs=samples)
    assert picks("bald", view) == [1]
    assert picks("entropy", view) in ([0], [1])  # the mean is flat for both: entropy cannot tell


def test_coreset_picks_the_farthest_point_then_covers_the_rest():
    pool = torch.tensor([[0.0, 0.1], [5.0, 5.0], [0.2, 0.0], [-4.0, 0.0]])
    view = PoolView(size=4, embeddings=pool, labelled_embeddings=torch.zeros(1, 2))
    assert picks("coreset", view, 2) == [1, 3]  # farthest from the labelled point, then from both


def test_badge_starts_with_the_largest_gradient_and_never_picks_twice():
    vectors = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    probs = torch.full((50, 3), 1 / 3)
    probs[7] = torch.tensor([0.34, 0.33, 0.33])
    vectors[7] *= 10  # the biggest gradient embedding
    chosen = picks("badge", PoolView(size=50, probs=probs, embeddings=vectors), 10)
    assert chosen[0] == 7 and len(set(chosen)) == 10


def test_kmeans_start_takes_one_example_per_cluster():
    clusters = [torch.randn(20, 4) * 0.01 + centre for centre in torch.eye(4) * 10]
    chosen = nearest_to_centres(torch.cat(clusters), 4, seed=0)
    assert sorted(i // 20 for i in chosen) == [0, 1, 2, 3]


class Tripwire:
    """Labels that record every one read, and refuse to be read all at once."""

    def __init__(self, labels):
        self.labels, self.read = labels, []

    def __getitem__(self, index):
        assert isinstance(index, int), "labels read in bulk"
        self.read.append(index)
        return self.labels[index]

    def __iter__(self):
        raise AssertionError("labels read in bulk")

    def __len__(self):
        raise AssertionError("labels counted: the loop has no business with them")


class FakeScorer:
    """A model that is least sure of the examples with the highest numbers."""

    def view(self, pool: Texts, labelled: Texts, needs, mc_samples) -> PoolView:
        numbers = torch.tensor([float(text.split()[1]) for text in pool.text])
        sure = 1 - numbers / 200
        vectors = torch.stack([numbers, -numbers], dim=1)
        return PoolView(size=len(pool), probs=torch.stack([sure, 1 - sure], dim=1), embeddings=vectors,
                        labelled_embeddings=torch.stack([torch.tensor([float(t.split()[1]), 0.0])
                                                         for t in labelled.text]),
                        mc_probs=torch.stack([torch.stack([sure, 1 - sure], dim=1)] * 2))


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_the_loop_reads_a_label_only_once_it_is_queried_and_never_queries_twice(strategy):
    texts = Texts([f"example {i}" for i in range(100)])
    labels = Tripwire(["POISON"] * 100)  # every label is poison until the oracle is asked for it
    loop = Loop(strategy, texts, Oracle(labels), query_size=7, seed=3)
    loop.start(10)
    for number in (1, 2, 3):
        loop.query(FakeScorer(), number)
    positions = loop.labelled
    assert len(positions) == len(set(positions)) == 10 + 3 * 7
    assert sorted(labels.read) == sorted(positions)  # read exactly the queried ones, each once
    assert [q.round for q in loop.queries] == [0] * 10 + [1] * 7 + [2] * 7 + [3] * 7


def test_random_queries_need_no_model():
    loop = Loop("random", Texts([f"example {i}" for i in range(30)]), Oracle(["x"] * 30), query_size=5)
    loop.start(5)
    assert len(set(loop.query(None, 1)) - set(loop.labelled[:5])) == 5


def test_uncertainty_queries_follow_the_model():
    loop = Loop("least_confidence", Texts([f"example {i}" for i in range(100)]), Oracle(["x"] * 100),
                query_size=5)
    loop.start(3)
    chosen = loop.query(FakeScorer(), 1)
    expected = [i for i in range(99, -1, -1) if i not in loop.labelled[:3]][:5]
    assert chosen == expected


def test_the_oracle_refuses_a_second_query():
    oracle = Oracle(["a", "b", "c"])
    oracle.reveal([0, 1])
    with pytest.raises(RuntimeError, match="twice"):
        oracle.reveal([1])
    assert np.array_equal(sorted(oracle.asked), [0, 1])


@pytest.mark.parametrize("warm_start", [False, True])
def test_a_warm_started_round_trains_from_the_last_round_and_a_cold_one_from_the_initial_encoder(
        tmp_path, monkeypatch, warm_start):
    started = []
    monkeypatch.setattr(rounds_module, "stage_run", lambda overrides, where, role: started.append(overrides)
                        or f"run-{len(started) - 1}")
    monkeypatch.setattr(rounds_module.Rounds, "record", lambda *args: None)
    rounds = object.__new__(rounds_module.Rounds)  # what __init__ derives from the loop job's config
    rounds.cfg = OmegaConf.create({"al": {"warm_start": warm_start}, "task": {"optimizer": {"lr": 1e-4}}})
    rounds.base, rounds.where = ["task=classify", "init=minilm", "init.lr=1e-4", "seed=3"], None
    rounds.folder, rounds.rows = tmp_path, np.arange(20)
    rounds.columns = {"text": "sentence", "label": "label"}
    loop = Loop("random", Texts([f"example {i}" for i in range(20)]), Oracle(["a", "b"] * 10), query_size=4)
    loop.start(4)
    previous, _ = rounds.train(loop, 0, None, None)
    loop.query(None, 1)
    rounds.train(loop, 1, previous, None)
    first, second = ([o for o in overrides if not o.startswith("++data.train=")] for overrides in started)
    assert first == rounds.base
    if warm_start:
        assert second == ["task=classify", "seed=3", "init=mlflow_run", "init.source=run-0",
                          "task.optimizer.lr=0.0001"]  # the rate the loop's first round had
    else:
        assert second == rounds.base  # every round from the initial encoder


@pytest.mark.slow
def test_a_two_round_loop_is_one_run_with_three_rounds_of_growing_labels(workdir, capsys):
    data = {split: write_reviews(workdir / f"{split}.tsv", rows, seed)
            for split, rows, seed in (("train", 120, 0), ("val", 30, 1), ("test", 30, 2))}
    command = ["task=classify", "data=labelled",
               *(f"data.{split}.path={path}" for split, path in data.items()), "al=margin",
               "al.initial_size=10", "al.rounds=2", "al.query_size=8", "data.max_length=16", *FAST]
    assert run_app(*command) == 0  # its rounds in this process too (run_cli: a process each)
    every = runs(workdir, "classify")
    [loop] = [r for r in every if r.data.tags.get("role") == "active_learning"]
    rounds = sorted((r for r in every if r.data.tags.get("mlflow.parentRunId") == loop.info.run_id),
                    key=lambda r: int(r.data.tags["al.round"]))
    assert len(every) == 1 + 3 and len(rounds) == 3
    assert loop.info.status == "FINISHED" and all(r.info.status == "FINISHED" for r in rounds)
    assert [r.data.tags["data.train_size"] for r in rounds] == ["10", "18", "26"]  # val is its own file
    assert [r.data.tags["al.labelled"] for r in rounds] == ["10", "18", "26"]
    assert {r.data.tags["al.strategy"] for r in rounds} == {"margin"}

    queried = pd.read_csv(store(workdir).download_artifacts(rounds[-1].info.run_id, "al_queried.csv",
                                                            str(workdir)))
    assert len(queried) == queried["pool_row"].nunique() == 26
    assert queried.groupby("round").size().tolist() == [10, 8, 8]
    truth = pd.read_csv(data["train"], sep="\t")["label"]
    assert (queried["label"] == truth[queried["pool_row"]].to_numpy()).all()  # the oracle told the truth
    assert [step for step, _ in metric_history(workdir, loop.info.run_id, "test/accuracy")] == [10, 18, 26]

    assert run_app(*command) == 0  # the same loop: its rounds are reused, not retrained
    every = runs(workdir, "classify")
    loops = [r for r in every if r.data.tags.get("role") == "active_learning"]
    assert len(every) == 2 + 3 and len(loops) == 2
    newest = max(loops, key=lambda r: r.info.start_time)
    assert all(r.data.tags["mlflow.parentRunId"] == newest.info.run_id for r in every if r not in loops)

    to_label = workdir / "to_label.csv"
    chosen = subprocess.run([str(Path(sys.executable).with_name("dataeff-select")), "--run",
                             rounds[-1].info.run_id, "--input", str(data["train"]), "--column", "sentence",
                             "--k", "5", "--out", str(to_label)], cwd=workdir, env=cli_env(),
                            capture_output=True, text=True, timeout=300)
    assert chosen.returncode == 0, chosen.stderr[-3000:]
    picked = pd.read_csv(to_label, keep_default_na=False)
    assert list(picked.columns) == ["row", "text", "guess", "confidence", "score", "rank", "label"]
    assert picked["rank"].tolist() == [1, 2, 3, 4, 5] and picked["score"].is_monotonic_decreasing
    sentences = pd.read_csv(data["train"], sep="\t")["sentence"]
    assert (picked["text"] == sentences[picked["row"]].to_numpy()).all()
    assert set(picked["guess"]) <= {"good", "bad"} and set(picked["label"]) == {""}

    capsys.readouterr()
    assert report_main(["--experiment", "classify", "--condition", "al.strategy"]) == 0  # dataeff-report
    assert "| `margin` |" in capsys.readouterr().out


def test_a_sweep_of_loops_reports_their_rounds():
    from dataeff.report.mlflow_runs import latest_parent_run_id, select_study

    rows = [("sweep", None, None), ("loop-margin", "sweep", "active_learning"),
            ("loop-random", "sweep", "active_learning"), ("m0", "loop-margin", "al_round"),
            ("m1", "loop-margin", "al_round"), ("r0", "loop-random", "al_round")]
    runs = pd.DataFrame({"run_id": [r[0] for r in rows], "parent_run_id": [r[1] for r in rows],
                         "tags.role": [r[2] for r in rows], "start_time": range(len(rows)),
                         "status": "FINISHED", "run_name": [r[0] for r in rows]})
    assert latest_parent_run_id(runs) == "sweep"  # not a loop, though it started later
    assert sorted(select_study(runs, ["sweep"], "active_learning")["run_id"]) == ["m0", "m1", "r0"]
