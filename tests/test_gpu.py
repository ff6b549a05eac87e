"""The GPU paths, on a machine with CUDA (skipped elsewhere; `make gpu-check` runs them with
experiments/gpu_check.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dataeff.models.init import from_huggingface
from tests.conftest import FAST, run_cli, runs

pytestmark = [pytest.mark.gpu, pytest.mark.slow]


@pytest.mark.parametrize("trainer", [["trainer=gpu", "trainer.precision=bf16-mixed"],
                                     ["trainer=gpu", "trainer.precision=16-mixed"],
                                     ["trainer=fsdp", "trainer.devices=1"]])
def test_a_gpu_run_finishes_and_exports_the_whole_model(workdir, trainer):
    result = run_cli(*trainer, *FAST, cwd=workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    exported = from_huggingface(str(Path(run.data.tags["dataeff.output_dir"]) / "hf_model"))
    embeddings = exported.state_dict["bert.embeddings.word_embeddings.weight"]  # whole, not a shard
    assert embeddings.shape == (exported.config.vocab_size, exported.config.hidden_size)


def test_on_a_gpu_batches_are_made_by_workers_in_pinned_memory():
    import pytorch_lightning as pl

    from dataeff.data.loading import AUTO_WORKERS_CAP, loader_settings

    settings = loader_settings("auto", pl.Trainer(accelerator="gpu", devices=1, logger=False))
    assert settings["pin_memory"] and settings["persistent_workers"]
    assert 1 <= settings["num_workers"] <= AUTO_WORKERS_CAP


def test_masking_a_batch_never_waits_for_the_gpu():
    """A read-back (a count, an `any`) would stall the host every step until the GPU catches up."""
    import torch

    from dataeff.tasks.masking import Masker

    masker = Masker(mask_token_id=4, special_ids=[0, 1, 2, 3, 4], vocab_size=1000, static=True)
    ids = torch.randint(5, 1000, (32, 128), device="cuda")
    masker(ids)  # the first batch copies the special and ordinary ids to the device, once
    torch.cuda.set_sync_debug_mode("error")
    try:
        masked, labels = masker(ids)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert (labels != -100).any() and masked.shape == ids.shape
