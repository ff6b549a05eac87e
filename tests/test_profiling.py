"""profiler=pytorch: a run's trace and steps.md, where a training step's time goes, in its artifacts."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from dataeff.profiling import read_trace
from tests.conftest import FAST, run_app, runs, store

PROFILED = ["profiler=pytorch", "trainer.profiler.schedule.wait=2", "trainer.profiler.schedule.warmup=1",
            "trainer.max_steps=12", "trainer.val_check_interval=6"]  # a validation inside the window


def table(markdown: str) -> dict[str, float]:
    rows = re.findall(r"^\| ([^|]+?) \| ([\d.]+) \| \d+% \|$", markdown, re.M)
    return {name: float(ms) for name, ms in rows}


def test_a_profiled_run_says_where_its_steps_time_goes(workdir):
    # the progress bar on, logging every 50 steps: between logging steps nothing in the loop reads
    # a tensor's value back (the bar shows the loss the logger read, not one read each step)
    assert run_app(*FAST, *PROFILED, "trainer.enable_progress_bar=true", "trainer.log_every_n_steps=50") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    folder = Path(store(workdir).download_artifacts(run.info.run_id, "profile", str(workdir)))
    [trace] = folder.glob("fit-profile-*training_step*.pt.trace.json.gz")
    events = json.loads(gzip.decompress(trace.read_bytes()))["traceEvents"]
    profiled = sorted(int(e["name"].split("#")[1]) for e in events
                      if e.get("name", "").startswith("ProfilerStep#"))
    assert profiled == [3, 4, 5, 6, 7, 8]  # counted from 0: after 2 steps of waiting and 1 of warm-up
    assert "FIT Profiler Report" in (folder / "fit-profile.txt").read_text()

    steps = (folder / "steps.md").read_text()
    # the first recorded step is in the trace only, and so is the one with a validation pass inside
    assert "over 4 training steps (ProfilerStep#4 to #8 of" in steps
    parts = table(steps)
    step = parts.pop("the step")
    assert set(parts) >= {"forward (training_step)", "backward", "data: fetch and copy to the device",
                          "optimizer: step, clipping, zero_grad, schedule", "callbacks"}
    assert sum(parts.values()) == pytest.approx(step, abs=0.01 * len(parts))
    assert parts["forward (training_step)"] + parts["backward"] > step / 2  # a tiny model, still the bulk
    # the eager MLM head counts the masked positions (nonzero): that read, and no other
    assert "per step: 1 in forward (training_step) (" in steps


def test_a_run_that_ends_before_the_profilers_window_says_so(workdir, capsys):
    # Lightning's own PyTorchProfiler failed such a run at its end (TrainingStepProfiler)
    assert run_app(*FAST, "profiler=pytorch", "trainer.max_steps=3") == 0
    [run] = runs(workdir)
    assert run.info.status == "FINISHED"
    assert "profiler=pytorch recorded no whole training step outside validation: the run stopped at step 3" \
        in capsys.readouterr().out


def trace(tmp_path: Path, *events: dict) -> Path:
    path = tmp_path / "fit-profile-[Strategy]SingleDeviceStrategy.training_step.1.pt.trace.json"
    path.write_text(json.dumps({"traceEvents": [{"tid": 1, **e} for e in events]}))
    return path


def span(name: str, start: float, end: float, cat: str = "user_annotation") -> dict:
    return {"name": name, "ts": start * 1000, "dur": (end - start) * 1000, "cat": cat}


def test_each_annotation_counts_its_own_time_to_its_part_and_only_whole_steps_are_read(tmp_path):
    """Milliseconds: steps 1-3 of 10 each, and a 4th the end of the fit closed; the first is cut
    into by an optimizer step whose start the profiler never saw, the 4th has no forward pass, so
    steps 2 and 3 are read. A module's annotation counts to the forward pass around it, a callback
    inside the backward pass to the callbacks. The device's copies of the annotations (a GPU
    trace's `gpu_user_annotation`) are not steps."""
    path = trace(
        tmp_path,
        span("ProfilerStep#1", 0, 10), span("ProfilerStep#2", 10, 20), span("ProfilerStep#3", 20, 30),
        span("ProfilerStep#4", 30, 35), span("[pl][profile][Callback]ExportModel.on_train_end", 31, 34),
        *({"tid": 7, **span(f"ProfilerStep#{i}", 10 * i - 9, 10 * i + 1, "gpu_user_annotation")}
          for i in (1, 2, 3)),
        span("[pl][profile][_TrainingEpochLoop].train_dataloader_next", 10, 11),
        span("[pl][profile][LightningModule]MLMTask.optimizer_step", 11, 19),
        span("Optimizer.step#AdamW.step", 11, 19),
        span("[pl][profile][Strategy]SingleDeviceStrategy.training_step", 11, 14),
        span("[pl][module]transformers.BertModel: net.bert", 11, 13),
        span("[pl][profile][Strategy]SingleDeviceStrategy.backward", 14, 18),
        span("[pl][profile][Callback]NaNGuard.on_after_backward", 17, 18),
        span("[pl][profile][_TrainingEpochLoop].train_dataloader_next", 20, 22),
        span("[pl][profile][Strategy]SingleDeviceStrategy.training_step", 22, 26),
        span("aten::nonzero", 12, 12.1, "cpu_op"),  # in a module: the forward pass's
        span("aten::_local_scalar_dense", 18.5, 18.6, "cpu_op"),  # Adam's step count: expected
        span("aten::_local_scalar_dense", 27, 27.1, "cpu_op"),  # between hooks: the loop's
        span("aten::_local_scalar_dense", 5, 5.1, "cpu_op"),  # in the step left out
        span("gemm", 11, 15, "kernel"), span("gemm", 14, 24, "kernel"), span("gemm", 40, 41, "kernel"),
        span("cudaStreamSynchronize", 27, 28, "cuda_runtime"))
    profile = read_trace(path)
    assert profile.steps == [2, 3]
    assert profile.parts == pytest.approx({
        "data: fetch and copy to the device": 1.5, "forward (training_step)": 3.5, "backward": 1.5,
        "callbacks": 0.5, "optimizer: step, clipping, zero_grad, schedule": 0.5,
        "Lightning's loop and logging": 2.5})
    assert profile.step_ms == pytest.approx(10)
    assert profile.host_reads == pytest.approx({"forward (training_step)": 0.5,
                                                "Lightning's loop and logging": 0.5})
    assert profile.device_busy == pytest.approx(13 / 20)  # kernels over 11-24 of 10-30 (not 40-41)
    assert profile.device_waits_ms == pytest.approx(0.5)
