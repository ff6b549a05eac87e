"""Real Lightning training of the tiny preset through the Hydra app, checked in MLflow."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml
from safetensors.torch import load_file

from dataeff.runs.footprint import local_path, size_on_disk
from dataeff.runs.tags import DISK_TAG
from dataeff.tasks.mlm import MLMTask
from tests.conftest import FAST, metric_history, run_app, runs, store

MLM_METRICS = {"train/loss", "val/loss", "val/perplexity", "val/masked_accuracy", "train/lr",
               "train/tokens_per_sec"}


def artifact_paths(workdir: Path, run_id: str, path: str | None = None) -> set[str]:
    found = set()
    for item in store(workdir).list_artifacts(run_id, path):
        found |= artifact_paths(workdir, run_id, item.path) if item.is_dir else {item.path}
    return found


def test_run_lands_in_mlflow_with_metrics_config_and_checkpoint(workdir):
    assert run_app(*FAST, "trainer.max_steps=20", "trainer.val_check_interval=10", "seed=7",
                   "+tags.note=first", "keep_checkpoints=all", "logger.mlflow.log_model=true") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert set(run.data.metrics) >= MLM_METRICS
    assert run.data.params["trainer.max_steps"] == "20"
    assert run.data.params["task.optimizer.lr"] == "0.001"
    assert run.data.tags["task.name"] == "mlm" and run.data.tags["seed"] == "7"
    assert run.data.tags["note"] == "first"
    assert "trainer.max_steps=20" in run.data.tags["dataeff.overrides"]
    experiment = store(workdir).get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"

    artifacts = artifact_paths(workdir, run.info.run_id)
    assert {"config.yaml", "hf_model/model.safetensors", "hf_model/tokenizer.json"} <= artifacts
    assert any(p.endswith(".ckpt") for p in artifacts)
    logged = yaml.safe_load(Path(store(workdir).download_artifacts(
        run.info.run_id, "config.yaml", str(workdir))).read_text())
    assert logged["seed"] == 7 and logged["trainer"]["max_steps"] == 20

    ckpts = Path(run.data.tags["dataeff.output_dir"]) / "checkpoints"
    assert (ckpts / "last.ckpt").exists() and list(ckpts.glob("best-step*.ckpt"))
    last = torch.load(ckpts / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == 20
    assert last["mlflow_run_id"] == run.info.run_id and "json" in last["tokenizer"]


def test_a_finished_run_keeps_its_weights_once(workdir):
    assert run_app(*FAST, "trainer.max_steps=6", "trainer.val_check_interval=3") == 0
    [run] = runs(workdir)
    assert not any(p.endswith(".ckpt") for p in artifact_paths(workdir, run.info.run_id))
    output_dir = Path(run.data.tags["dataeff.output_dir"])
    assert not (output_dir / "checkpoints").exists()  # training state, for resuming only
    exported, logged = output_dir / "hf_model", local_path(run.info.artifact_uri) / "hf_model"
    assert exported.is_symlink() and exported.resolve() == logged.resolve()
    weights = size_on_disk(logged)
    assert weights / 1e6 <= float(run.data.tags[DISK_TAG]) < 2 * weights / 1e6


def test_the_export_is_the_best_on_validation_for_mlm_too(workdir):
    # before: an MLM run exported its last weights, which task_adaptive then fine-tuned from
    assert run_app(*FAST, "trainer.max_steps=9", "keep_checkpoints=all") == 0
    [run] = runs(workdir)
    output_dir = Path(run.data.tags["dataeff.output_dir"])
    [best] = (output_dir / "checkpoints").glob("best-step*.ckpt")
    checkpoint = torch.load(best, map_location="cpu", weights_only=True)
    assert run.data.tags["dataeff.exported_step"] == str(checkpoint["global_step"])
    history = dict(metric_history(workdir, run.info.run_id, "val/loss"))
    assert history[checkpoint["global_step"] - 1] == min(history.values())  # logged at step - 1
    exported = load_file(output_dir / "hf_model" / "model.safetensors")
    key = "bert.encoder.layer.0.attention.self.query.weight"
    assert torch.equal(exported[key], checkpoint["state_dict"][f"net.{key}"])


def test_validation_loss_falls(workdir):
    assert run_app(*FAST, "trainer.max_steps=150", "trainer.val_check_interval=50") == 0
    [run] = runs(workdir)
    history = [value for _, value in metric_history(workdir, run.info.run_id, "val/loss")]
    assert len(history) == 3
    assert history[-1] < history[0] - 0.3, history
    accuracy = [value for _, value in
                metric_history(workdir, run.info.run_id, "val/masked_accuracy")]
    assert accuracy[-1] > accuracy[0], accuracy


def test_resume_continues_global_step_in_the_same_run(workdir):
    assert run_app(*FAST, "keep_checkpoints=last") == 0
    [first] = runs(workdir)
    ckpt = Path(first.data.tags["dataeff.output_dir"]) / "checkpoints" / "last.ckpt"
    assert run_app(*FAST, "trainer.max_steps=12", f"ckpt_path={ckpt}", "keep_checkpoints=last") == 0
    [run] = runs(workdir)  # still one run
    assert run.info.run_id == first.info.run_id and run.info.status == "FINISHED"
    steps = [step for step, _ in metric_history(workdir, run.info.run_id, "val/loss")]
    assert steps == [2, 5, 8, 11]  # logged at steps 3, 6 (first job), 9, 12 (resumed)
    second_dir = Path(run.data.tags["dataeff.output_dir"])
    assert second_dir != ckpt.parent.parent
    resumed = torch.load(second_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                         weights_only=False)
    assert resumed["global_step"] == 12


def test_injected_error_leaves_a_failed_run(workdir, monkeypatch):
    def explode(self, batch, batch_idx):
        raise RuntimeError("injected failure")

    monkeypatch.setattr(MLMTask, "training_step", explode)
    assert run_app(*FAST) == 1
    [run] = runs(workdir)
    assert run.info.status == "FAILED"
    assert "injected failure" in run.data.tags["dataeff.error"]


def test_interrupt_leaves_a_killed_run_and_a_resumable_checkpoint(workdir, monkeypatch):
    original = MLMTask.training_step

    def interrupt_at_step_4(self, batch, batch_idx):
        if self.global_step == 4:
            raise KeyboardInterrupt
        return original(self, batch, batch_idx)

    monkeypatch.setattr(MLMTask, "training_step", interrupt_at_step_4)
    assert run_app(*FAST) == 130  # what a shell reports for Ctrl-C
    [run] = runs(workdir)
    assert run.info.status == "KILLED"
    saved = Path(run.data.tags["dataeff.output_dir"]) / "checkpoints" / "interrupted.ckpt"
    assert torch.load(saved, map_location="cpu", weights_only=False)["global_step"] == 4


def test_multirun_makes_a_parent_and_children(workdir):
    assert run_app(*FAST, "trainer.max_steps=3", "seed=1,2", multirun=True) == 0
    all_runs = runs(workdir)
    parents = [r for r in all_runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in all_runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 2
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parents[0].info.run_id}
    assert sorted(c.data.tags["seed"] for c in children) == ["1", "2"]
    assert {r.info.status for r in all_runs} == {"FINISHED"}
    assert len({c.data.tags["dataeff.output_dir"] for c in children}) == 2


def test_any_sweep_ends_with_its_report(workdir, capsys):
    """A sweep that is not a configured study still gets a report: each setting of what it swept,
    its runs' objective and test metrics over the seeds, best first (before: nothing was printed)."""
    assert run_app(*FAST, "trainer.max_steps=3", "task=classify", "data=easyvqa_answers", "data.shots=2",
                   "trainer.limit_test_batches=2", "task.optimizer.lr=1e-3,3e-3", "seed=1,2",
                   multirun=True) == 0
    out = capsys.readouterr().out
    assert "# Sweep report: classify" in out
    assert "4 finished job(s); swept: `task.optimizer.lr`; replicates over `seed`" in out
    rows = [line for line in out.splitlines() if line.startswith("| `task.optimizer.lr=")]
    # the objective, test/accuracy, test/f1_macro and test/loss: each over the two seeds
    assert len(rows) == 2 and all(row.count("(n=2)") == 4 for row in rows)
    best, other = (float(row.split("|")[2].split()[0]) for row in rows)
    assert best >= other  # best first, by the mean objective (val/accuracy, max)
    parent = next(r for r in runs(workdir, "classify") if "mlflow.parentRunId" not in r.data.tags)
    logged = store(workdir).list_artifacts(parent.info.run_id, "report")
    assert [artifact.path for artifact in logged] == ["report/sweep.md"]


def test_unknown_override_is_refused_before_any_run(workdir, capsys):
    assert run_app("trainer.max_stepz=5") == 1
    assert "Could not override 'trainer.max_stepz'" in capsys.readouterr().err
    assert runs(workdir) == []


def test_a_run_shorter_than_its_validation_interval_validates_at_its_end_and_tests_the_best(workdir):
    # 5 steps, validation every 250 by default: before, the test of "best" crashed after training
    assert run_app("task=classify", "data=easyvqa_answers", "trainer.max_steps=5", "data.batch_size=16",
                   "trainer.limit_val_batches=2", "trainer.limit_test_batches=2",
                   "trainer.enable_progress_bar=false") == 0
    [run] = runs(workdir, "classify")
    assert run.info.status == "FINISHED"
    assert {"val/accuracy", "test/accuracy"} <= set(run.data.metrics)
    assert run.data.params["trainer.val_check_interval"] == "5"
    assert float(run.data.tags["dataeff.objective"]) == run.data.metrics["val/accuracy"]
