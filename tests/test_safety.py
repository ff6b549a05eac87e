"""Loading never runs code, and a resume never touches a run it does not belong to."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from transformers import BertConfig, BertForMaskedLM

from dataeff.runs.store import open_store
from dataeff.tokenizer import train_wordpiece
from tests.conftest import FAST, run_app, runs

COLOURS = ["red", "green", "blue", "yellow", "teal", "gray"]


class Payload:
    """What a crafted checkpoint smuggles in: unpickling it would create a file."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


def first_run_dir(workdir: Path, experiment: str = "mlm") -> Path:
    [run] = [r for r in runs(workdir, experiment) if r.info.status == "FINISHED"][:1]
    return Path(run.data.tags["dataeff.output_dir"])


@pytest.mark.parametrize("setting", ["ckpt_path", "init"])
def test_a_crafted_checkpoint_runs_no_code(workdir, capsys, setting):
    torch.save({"state_dict": {}, "tokenizer": Payload()}, workdir / "crafted.ckpt")
    args = (["ckpt_path=crafted.ckpt"] if setting == "ckpt_path" else
            ["task=classify", "data=easyvqa_answers", "init=checkpoint", "init.source=crafted.ckpt"])
    assert run_app(*FAST, *args) == 1
    err = capsys.readouterr().err
    assert "could run code" in err and "Traceback" not in err
    assert not (workdir / "pwned").exists()


@pytest.mark.parametrize(("content", "setting"), [(b"", "ckpt_path"), (b"not a checkpoint" * 9, "ckpt_path"),
                                                  ("half", "ckpt_path"), ("half", "init.source")])
def test_a_corrupt_checkpoint_gets_one_paragraph(workdir, capsys, content, setting):
    if content == "half":
        assert run_app(*FAST, "trainer.max_steps=3", "keep_checkpoints=last") == 0
        whole = (first_run_dir(workdir) / "checkpoints" / "last.ckpt").read_bytes()
        content = whole[: len(whole) // 2]
    (workdir / "bad.ckpt").write_bytes(content)
    args = (["ckpt_path=bad.ckpt"] if setting == "ckpt_path" else
            ["task=classify", "data=easyvqa_answers", "init=checkpoint", "init.source=bad.ckpt"])
    assert run_app(*FAST, *args) == 1
    err = capsys.readouterr().err
    assert f"{setting}=bad.ckpt is not a readable PyTorch checkpoint" in err and "Traceback" not in err
    assert "mmap" not in err


def test_init_checkpoint_that_is_missing_names_init_source(workdir, capsys):
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "init=checkpoint",
                   "init.source=nowhere.ckpt") == 1
    assert "set init.source= to a .ckpt" in capsys.readouterr().err


def test_a_model_folder_with_custom_code_is_refused_without_a_prompt(workdir, capsys):
    assert run_app(*FAST, "trainer.max_steps=3") == 0
    folder = workdir / "custom"
    shutil.copytree(first_run_dir(workdir) / "hf_model", folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="custombert", auto_map={"AutoConfig": "custom.CustomConfig"})
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom.py").write_text("import pathlib\npathlib.Path('pwned').touch()\n")
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "init=huggingface",
                   f"init.source={folder}") == 1
    err = capsys.readouterr().err
    assert "never runs code from a model folder" in err and "Traceback" not in err
    assert not (workdir / "pwned").exists()


def test_a_checkpoint_of_another_task_is_refused_before_its_run_is_touched(workdir, capsys):
    assert run_app(*FAST, "task=classify", "data=easyvqa_answers", "trainer.limit_test_batches=2",
                   "keep_checkpoints=last") == 0
    [before] = runs(workdir, "classify")
    ckpt = first_run_dir(workdir, "classify") / "checkpoints" / "last.ckpt"
    assert run_app(*FAST, f"ckpt_path={ckpt}") == 1  # the default task is mlm
    err = capsys.readouterr().err
    assert "is a checkpoint of task=classify, not task=mlm" in err and "init=checkpoint" in err
    [after] = runs(workdir, "classify")
    assert after.info.status == "FINISHED" and after.data.tags == before.data.tags
    assert runs(workdir, "mlm") == []


def test_a_checkpoint_from_another_store_names_the_store(workdir, capsys, monkeypatch):
    assert run_app(*FAST, "trainer.max_steps=3", "keep_checkpoints=last") == 0
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # Lightning's logger exported it
    ckpt = first_run_dir(workdir) / "checkpoints" / "last.ckpt"
    assert run_app(*FAST, f"ckpt_path={ckpt}", f"paths.root_dir={workdir / 'elsewhere'}") == 1
    err = capsys.readouterr().err
    assert "which is not in the store" in err and "DATAEFF_ROOT" in err and "Traceback" not in err


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory) -> Path:
    """A tiny BERT with its tokenizer, as save_pretrained writes it (model.safetensors)."""
    folder = tmp_path_factory.mktemp("bert")
    texts = [f"is the shape {c} or {d}" for c in COLOURS for d in COLOURS]
    tokenizer = train_wordpiece(texts, vocab_size=120)
    tokenizer.save_pretrained(folder)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64)
    BertForMaskedLM(config).save_pretrained(folder)
    return folder


def pickled_weights(folder: Path) -> str:
    (folder / "model.safetensors").unlink()
    torch.save({"bert.embeddings.word_embeddings.weight": Payload()}, folder / "pytorch_model.bin")
    return "hold Python objects besides tensors"


def corrupt(name: str, cut: bool = False):
    def spoil(folder: Path) -> str:
        whole = (folder / name).read_bytes()
        (folder / name).write_bytes(whole[: len(whole) // 2] if cut else b"{not what it claims" * 20)
        return "cannot be read: a file of it is truncated, corrupt or missing"
    return spoil


SPOILED = {"pickled weights": pickled_weights, "corrupt safetensors": corrupt("model.safetensors"),
           "half a safetensors file": corrupt("model.safetensors", cut=True),
           "config not JSON": corrupt("config.json")}
SETTINGS = {"init=huggingface": lambda folder: ["task=classify", "init=huggingface", f"init.source={folder}"],
            "model=pretrained": lambda folder: ["model=pretrained", f"model.pretrained={folder}"]}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("spoil", SPOILED.values(), ids=SPOILED.keys())
def test_a_model_folder_that_cannot_be_read_safely_gets_one_paragraph(workdir, capsys, bert_folder, spoil,
                                                                      setting):
    folder = workdir / "model"
    shutil.copytree(bert_folder, folder)
    message = spoil(folder)
    assert run_app(*FAST, *SETTINGS[setting](folder)) == 1
    err = capsys.readouterr().err
    assert message in err and str(folder) in err
    assert "Traceback" not in err and "weights_only=False" not in err
    assert not (workdir / "pwned").exists()
    experiment = "classify" if setting.startswith("init") else "mlm"
    assert "FINISHED" not in {run.info.status for run in runs(workdir, experiment)}


def test_a_run_whose_logged_weights_are_a_pickle_is_refused_as_an_init(workdir, capsys, bert_folder):
    """init=mlflow_run fetches the run's hf_model/: a tampered artifact store is no way in either."""
    folder = workdir / "model"
    shutil.copytree(bert_folder, folder)
    pickled_weights(folder)
    client = MlflowClient(open_store(f"sqlite:///{workdir}/mlflow.db"))
    run = client.create_run(client.create_experiment("tampered"))
    client.log_artifacts(run.info.run_id, str(folder), "hf_model")
    client.set_terminated(run.info.run_id)
    assert run_app(*FAST, "task=classify", "init=mlflow_run", f"init.source={run.info.run_id}") == 1
    err = capsys.readouterr().err
    assert "hold Python objects besides tensors" in err and "Traceback" not in err
    assert not (workdir / "pwned").exists()
