"""Lightning's and Hydra's own habits, as people bring them from lightning-hydra-template:
fast_dev_run for every task and every experiment, a validation interval in either unit, task
data defaults, and one clear sentence for what cannot work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dataeff.app import CONFIG_DIR
from dataeff.checks import check_command_line
from dataeff.errors import UserError
from tests.conftest import metric_history, run_app, run_cli, runs, store

pytestmark = pytest.mark.slow
EXPERIMENTS = sorted(path.stem for path in (Path(CONFIG_DIR) / "experiment").glob("*.yaml"))
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def write_study_data(folder: Path) -> Path:
    """A stand-in for ../shared/data: SST-2-shaped TSVs and movie-review lines, a few dozen rows."""
    words = ["good", "bad", "fine", "dull", "great", "awful", "warm", "cold"]
    (folder / "sst2").mkdir(parents=True)
    for split, rows in (("train", 48), ("dev", 12), ("test", 12)):
        lines = [f"a {words[i % 8]} film about {words[(i * 3) % 8]} people\t{i % 2}" for i in range(rows)]
        (folder / "sst2" / f"{split}.tsv").write_text("sentence\tlabel\n" + "\n".join(lines) + "\n")
    (folder / "mr").mkdir()
    (folder / "mr" / "unlabeled.txt").write_text(
        "\n".join(f"the {words[i % 8]} story of a {words[(i * 5) % 8]} town" for i in range(60)) + "\n")
    return folder


@pytest.mark.parametrize("task", ["mlm", "classify", "fusion", "mim", "contrastive"])
def test_fast_dev_run_of_each_task_alone_finishes_as_a_smoke_run(workdir, task):
    # before: the checkpoint pickled Lightning's DummyLogger, and classify/fusion kept the MLM data
    assert run_app(f"task={task}", "++trainer.fast_dev_run=true", *QUIET) == 0
    [run] = runs(workdir, task)
    assert run.info.status == "FINISHED"
    assert run.data.tags["dataeff.smoke"] == "true"
    expected_data = {"mlm": "easyvqa_questions", "classify": "easyvqa_answers", "fusion": "easyvqa",
                     "mim": "easyvqa", "contrastive": "easyvqa_captions"}
    assert run.data.tags["data.name"] == expected_data[task]
    if task in ("classify", "fusion"):  # the exported model names its classes as the data does
        exported = Path(run.data.tags["dataeff.output_dir"]) / "hf_model" / "config.json"
        config = json.loads(exported.read_text())
        assert {"yes", "no", "circle", "blue"} <= set(config["id2label"].values())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_runs_under_fast_dev_run(workdir, experiment):
    data = write_study_data(workdir / "data")
    assert run_app(f"experiment={experiment}", "++trainer.fast_dev_run=true", f"paths.data_dir={data}") == 0
    client = store(workdir)
    every = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert every and {(r.info.status, r.data.tags["dataeff.smoke"]) for r in every} == {("FINISHED", "true")}
    assert len([r for r in every if r.data.tags.get("role") == "tuning"]) <= 1  # a tuned study: one trial


def test_a_smoke_test_of_a_chained_study_smoke_tests_its_pretraining(workdir):
    assert run_app("experiment=transfer_small", "init=task_adaptive", "++trainer.fast_dev_run=true") == 0
    pretraining, job = runs(workdir, "transfer_small")
    assert pretraining.data.tags["role"] == "pretraining"
    assert pretraining.data.params["trainer.fast_dev_run"] == "True"  # not 1,000 steps of MLM
    assert {r.data.tags["dataeff.smoke"] for r in (pretraining, job)} == {"true"}
    assert job.data.tags["init.source_run_id"] == pretraining.info.run_id


def test_a_fraction_of_an_epoch_validates_within_an_epochs_budget(workdir):
    # before: Lightning refused val_check_interval=0.5 with check_val_every_n_epoch=None
    assert run_app("trainer.max_steps=-1", "trainer.max_epochs=1", "trainer.val_check_interval=0.5",
                   "+trainer.limit_train_batches=6", "trainer.limit_val_batches=2", *QUIET) == 0
    [run] = runs(workdir)
    assert [step for step, _ in metric_history(workdir, run.info.run_id, "val/loss")] == [2, 5]


def test_a_number_of_batches_validates_across_epochs_with_an_epochs_budget(workdir):
    # before: 4 batches within an epoch of 3 was Lightning's "must be less than or equal" error
    assert run_app("budget=epochs", "trainer.max_epochs=3", "trainer.val_check_interval=4",
                   "+trainer.limit_train_batches=3", "trainer.limit_val_batches=2", *QUIET) == 0
    [run] = runs(workdir)
    assert [step for step, _ in metric_history(workdir, run.info.run_id, "val/loss")] == [3, 7]


def test_data_of_the_wrong_kind_names_the_data_that_fits(workdir, capsys):
    assert run_app("task=fusion", "data=easyvqa_answers") == 1
    err = capsys.readouterr().err
    assert "task=fusion trains on labelled images with text" in err
    assert "data=easyvqa | easyvqa_captions | easyvqa_shapes | image_folder | manifest" in err
    assert runs(workdir, "fusion") == []


@pytest.mark.parametrize("arg", ["logger=null", "~logger", "logger=csv"])
def test_turning_mlflow_off_names_the_supported_way(arg):
    with pytest.raises(UserError, match="records every run in MLflow.*DATAEFF_ROOT=/tmp/try"):
        check_command_line(["-m", "--cfg", "job", arg])


def test_a_required_group_left_empty_lists_its_choices():
    choices = r"task=audit \| classify \| contrastive \| fusion \| linear_probe \| mim \| mlm \| setfit \| "
    choices += r"tfidf_lr"
    with pytest.raises(UserError, match=rf"task=null: .*{choices}"):
        check_command_line(["task=null"])
    check_command_line(["~augment", "callbacks=none", "seed=1,2", "hydra/launcher=joblib"])


def test_an_optional_group_set_to_null_names_hydras_way_to_leave_it_out():
    # before: Hydra's traceback "Config group override must be a string or a list. Got NoneType"
    with pytest.raises(UserError, match=r"tune=null: Hydra leaves a config group out with ~tune"):
        check_command_line(["experiment=transfer_curve", "tune=null"])


@pytest.mark.parametrize(("arg", "fix"), [("vision.init=mim", "vision/init=mim"),
                                          ("vision.init=mim,denoise", "vision/init=mim,denoise"),
                                          ("hydra.launcher=joblib", "hydra/launcher=joblib")])
def test_a_nested_group_chosen_like_a_value_names_the_slash(arg, fix):
    # before: Hydra put the string where the group's node was, and the job failed with AttributeError
    with pytest.raises(UserError, match=f"{arg}: .* chosen with a slash: {fix}[ ;]"):
        check_command_line([arg])
    check_command_line([fix, "vision.init.source=abc", "++vision.init.pretrain=[]"])


def test_cli_logger_null_is_one_sentence_not_a_traceback(workdir):
    result = run_cli("logger=null", cwd=workdir)
    assert result.returncode == 1
    assert "Error: logger=null: dataeff records every run in MLflow" in result.stderr
    assert "Traceback" not in result.stderr and runs(workdir) == []


def test_cpu_precision_is_bf16_only_where_the_cpu_has_bf16_instructions(monkeypatch):
    import torch

    from dataeff.resolvers import cpu_precision

    for avx512_bf16, amx, expected in [(False, False, "32-true"), (True, False, "bf16-mixed"),
                                        (False, True, "bf16-mixed")]:
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda v=avx512_bf16: v)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda v=amx: v)
        assert cpu_precision() == expected
