"""Every config in conf/ composes, every `_target_` in it names something importable that takes
the settings its node gives, and every number the checks know is in range."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_object
from omegaconf import OmegaConf

from dataeff.app import CONFIG_DIR
from dataeff.checks.targets import check_targets
from dataeff.checks.values import check_values

GROUPS = ["task", "model", "tokenizer", "init", "augment", "data", "trainer", "budget", "logger",
          "callbacks", "paths", "experiment", "debug", "vision", "fusion"]
CHOICES = [(group, path.stem) for group in GROUPS
           for path in sorted((Path(CONFIG_DIR) / group).glob("*.yaml"))]
REQUIRED = {("model", "pretrained"): ["model.pretrained=/some/folder"],
            ("data", "text"): ["data.train.path=corpus.txt"],
            ("data", "labelled"): ["data.train.path=train.tsv"],
            ("data", "manifest"): ["data.train.path=train.csv"],
            ("data", "image_folder"): ["data.train.path=images"],
            ("vision", "pretrained"): ["vision.pretrained=/some/vit"],
            **{("init", kind): ["init.source=somewhere"]
               for kind in ("checkpoint", "mlflow_run", "huggingface")}}


def targets(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["_target_"]] if "_target_" in node else []
        return found + [t for value in node.values() for t in targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in targets(value)]
    return []


@pytest.mark.parametrize(("group", "name"), CHOICES, ids=[f"{g}={n}" for g, n in CHOICES])
def test_config_composes(group, name):
    needs_fusion = ["task=fusion"] if group in ("vision", "fusion") else []  # groups task=fusion adds
    overrides = [*needs_fusion, f"{group}={name}", *REQUIRED.get((group, name), [])]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    tree = OmegaConf.to_container(cfg, resolve=False)
    assert "???" not in str(tree.get(group)), f"{group}={name} leaves a mandatory value unset"
    for target in targets(tree):
        assert get_object(target) is not None, f"{group}={name}: {target} does not import"
    check_targets(cfg)  # each `_target_` takes every setting its node gives it
    check_values(cfg)  # and every seed, learning rate and probability is in range


def test_every_group_has_configs():
    assert {g for g, _ in CHOICES} == set(GROUPS)


def test_trainer_presets():
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        gpu = compose("train", overrides=["trainer=ddp"]).trainer
        sim = compose("train", overrides=["trainer=ddp_sim"]).trainer
        cpu = compose("train", overrides=["trainer.precision=16-mixed", "trainer.max_steps=50"])
    assert (gpu.accelerator, gpu.strategy, gpu.precision) == ("gpu", "ddp", "bf16-mixed")
    assert (sim.accelerator, sim.devices, sim.strategy) == ("cpu", 2, "ddp")
    assert (cpu.trainer.precision, cpu.trainer.max_steps) == ("16-mixed", 50)


@pytest.mark.parametrize(("overrides", "recipe"), [
    ([], "dataeff.recipes.train.run"),
    (["task=classify", "al=margin"], "dataeff.recipes.active_learning.run"),
    (["task=audit"], "dataeff.recipes.audit.run"),
    (["task=audit", "al=margin"], "dataeff.recipes.audit.run"),  # the audit reads data; no loop
])
def test_the_config_names_the_recipe_the_app_runs(overrides, recipe):
    with initialize_config_dir(CONFIG_DIR, version_base="1.3"):
        assert compose("train", overrides=overrides).recipe == recipe
