"""Where a training step's time goes, read from the PyTorch profiler's trace (`profiler=pytorch`).

Lightning's PyTorchProfiler wraps each hook, the data fetch and the optimizer in an annotation.
They nest (the optimizer's step calls the training step and the backward pass through its closure;
callbacks run inside the backward pass), so each annotation's own time, less its children's, goes
to the part of the step it belongs to, or to its parent's part when it names none of them.
On a GPU the trace also holds the device's kernels and the host's waits for them: a step is
host-bound when the kernels leave the device idle."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import torch
from pytorch_lightning.profilers import PyTorchProfiler

DATA, OPTIMIZER = "data: fetch and copy to the device", "optimizer: step, clipping, zero_grad, schedule"
FORWARD, LOOP = "forward (training_step)", "Lightning's loop and logging"
PARTS = {  # the part an annotation belongs to, by the first pattern its name matches
    DATA: r"train_dataloader_next|batch_to_device|enumerate\(DataLoader\)",
    FORWARD: r"Strategy\].*\.training_step$",
    "backward": r"Strategy\].*\.backward$",
    "callbacks": r"\[Callback\]",
    OPTIMIZER: r"optimizer_step|Optimizer\.(step|zero_grad)#|optimizer_zero_grad|gradient_clipping"
               r"|lr_scheduler_step",
}
# a tensor's value read on the host: on a GPU the host waits for every kernel queued before it.
# Left out: the data's (tensors still on the host) and the optimizer's (Adam reads its step count,
# kept on the host; on a GPU, the waits below count what the optimizer does wait for)
HOST_READS = {"aten::_local_scalar_dense", "aten::nonzero"}
EXPECTED_READS = {DATA, OPTIMIZER}
DEVICE_WAITS = re.compile(r"cuda(Stream|Device|Event)Synchronize")
DEVICE_WORK = {"kernel", "gpu_memcpy", "gpu_memset"}


class TrainingStepProfiler(PyTorchProfiler):
    """Lightning's PyTorchProfiler on training steps only. Lightning's also counts validation and
    test steps, each stage against the schedule from its start: a validation pass inside the window
    ends the recording there, and a stage shorter than the schedule's wait and warm-up (a short
    validation or test, a run that ends early) fails the run at its end, the torch profiler asked
    for events it never recorded. Here a validation pass falls inside a profiled step, which
    `read_trace` leaves out, and a stage that recorded nothing keeps no events."""

    STEP_FUNCTIONS = {"training_step"}

    def _cache_functions_events(self) -> None:  # Lightning's private hook; tests/test_profiling.py
        if isinstance(self.profiler, torch.profiler.profile) and self.profiler.profiler is None:
            self.function_events = None
            return
        super()._cache_functions_events()


@dataclass
class Span:
    name: str
    start: float
    end: float
    children: list[Span] = field(default_factory=list)


@dataclass
class StepProfile:
    """Per training step, in milliseconds of host time, over the profiled steps."""

    steps: list[int]
    parts: dict[str, float]
    host_reads: dict[str, float]  # by part, tensor values read outside the data and the optimizer, per step
    device_busy: float | None = None  # share of the steps' span with a kernel or copy running
    device_waits_ms: float | None = None  # host time blocked in CUDA synchronisation, per step

    @property
    def step_ms(self) -> float:
        return sum(self.parts.values())

    def slowest_first(self) -> list[tuple[str, float]]:
        return sorted(self.parts.items(), key=lambda item: -item[1])


def part_of(name: str) -> str | None:
    return next((part for part, pattern in PARTS.items() if re.search(pattern, name)), None)


def nest(spans: list[Span]) -> list[Span]:
    """The spans of one thread as trees (a child lies within its parent)."""
    roots, open_ = [], []
    for span in sorted(spans, key=lambda s: (s.start, -s.end)):
        while open_ and open_[-1].end <= span.start:
            open_.pop()
        (open_[-1].children if open_ else roots).append(span)
        open_.append(span)
    return roots


def attribute(span: Span, inherited: str, clip, totals: dict[str, float], owner: dict[int, str]) -> None:
    """Add the span's own time within the profiled steps (less its children's) to its part in
    `totals`, and note in `owner` the part of the span and of each span within it."""
    part = part_of(span.name) or inherited
    owner[id(span)] = part
    totals[part] = totals.get(part, 0.0) + clip(span) - sum(clip(child) for child in span.children)
    for child in span.children:
        attribute(child, part, clip, totals, owner)


def innermost(roots: list[Span], time: float) -> Span | None:
    """The deepest span running at `time`; None between spans."""
    found, level = None, roots
    while True:
        inner = next((s for s in level if s.start <= time < s.end), None)
        if inner is None:
            return found
        found, level = inner, inner.children


def profiled_steps(events: list[dict]) -> tuple[list[dict], list[tuple[float, float]]]:
    """The profiled steps that are whole training steps, and their windows. Lightning starts a
    profiler step where a training step's forward pass ends, so each runs from one forward's end to
    the next: one of every part of the loop, though not in the loop's order. Left out: the first
    (it starts inside an optimizer step whose annotation the profiler never saw), unless it is the
    only one, any with a validation pass inside, and any without a forward pass (the last, when the
    run ends inside the window, closes at the end of the fit). On a GPU each annotation is also
    copied onto the device's stream (`gpu_user_annotation`): the host's are the steps."""
    host = [e for e in events if e.get("cat") == "user_annotation"]
    steps = sorted((e for e in host if e["name"].startswith("ProfilerStep#")), key=lambda e: e["ts"])
    steps = steps[1:] if len(steps) > 1 else steps
    validations = [e["ts"] for e in host if re.search(r"\.validation_step$", e["name"])]
    forwards = [e["ts"] for e in host if re.search(PARTS[FORWARD], e["name"])]
    steps = [s for s in steps if not holds(s, validations) and holds(s, forwards)]
    return steps, [(s["ts"], s["ts"] + s["dur"]) for s in steps]


def holds(step: dict, times: list[float]) -> bool:
    return any(step["ts"] <= time < step["ts"] + step["dur"] for time in times)


def overlap(start: float, end: float, windows: list[tuple[float, float]]) -> float:
    return sum(max(0.0, min(end, b) - max(start, a)) for a, b in windows)


def inside(time: float, windows: list[tuple[float, float]]) -> bool:
    return any(a <= time < b for a, b in windows)


def read_trace(path: Path) -> StepProfile | None:
    """The profile of the whole training steps in one trace file; None when it holds none."""
    events = [e for e in json.loads(path.read_text())["traceEvents"] if "dur" in e and "ts" in e]
    steps, windows = profiled_steps(events)
    if not steps:
        return None
    thread, count = steps[0]["tid"], len(steps)

    def clip(span: Span) -> float:
        return overlap(span.start, span.end, windows)

    spans = [Span(e["name"], e["ts"], e["ts"] + e["dur"]) for e in events
             if e.get("cat") == "user_annotation" and e["tid"] == thread
             and not e["name"].startswith("ProfilerStep#") and overlap(e["ts"], e["ts"] + e["dur"], windows)]
    roots, owner = nest(spans), {}
    totals = {LOOP: sum(b - a for a, b in windows) - sum(clip(root) for root in roots)}  # between annotations
    for root in roots:
        attribute(root, LOOP, clip, totals, owner)
    reads: dict[str, float] = {}
    for e in events:
        if e.get("cat") == "cpu_op" and e["name"] in HOST_READS and e["tid"] == thread \
                and inside(e["ts"], windows):
            span = innermost(roots, e["ts"])
            part = LOOP if span is None else owner[id(span)]
            if part not in EXPECTED_READS:
                reads[part] = reads.get(part, 0) + 1 / count
    return StepProfile(steps=[int(s["name"].split("#")[1]) for s in steps],
                       parts={part: us / 1000 / count for part, us in totals.items() if us > 0},
                       host_reads=reads, **device_time(events, windows))


def device_time(events: list[dict], windows: list[tuple[float, float]]) -> dict[str, float]:
    """On a GPU: the share of the windows with a kernel or copy running, and the host's time
    blocked in CUDA synchronisation per window. Nothing on a CPU."""
    device = [e for e in events if e.get("cat") in DEVICE_WORK]
    if not device:
        return {}
    waits = sum(e["dur"] for e in events if e.get("cat") == "cuda_runtime"
                and DEVICE_WAITS.match(e["name"]) and inside(e["ts"], windows))
    return {"device_busy": sum(covered(device, a, b) for a, b in windows) / sum(b - a for a, b in windows),
            "device_waits_ms": waits / 1000 / len(windows)}


def covered(events: list[dict], start: float, end: float) -> float:
    """Microseconds of [start, end) during which at least one of the events runs."""
    total, reach = 0.0, start
    for a, b in sorted((max(e["ts"], start), min(e["ts"] + e["dur"], end)) for e in events):
        if a < b and b > reach:  # a < b: the event runs within [start, end)
            total += b - max(a, reach)
            reach = b
    return total


def training_traces(folder: Path) -> list[Path]:
    """The fit stage's training-step traces Lightning's PyTorchProfiler wrote, rank by rank."""
    return sorted(folder.glob("fit-*training_step*.pt.trace.json"))


def summarize(folder: Path) -> StepProfile | None:
    """steps.md in `folder` from rank 0's training trace, if the profiler wrote one; then every trace
    gzipped (a tenth of the size; Perfetto and chrome://tracing open them as they are)."""
    traces = training_traces(folder)
    profile = read_trace(traces[0]) if traces else None
    if profile is not None:
        (folder / "steps.md").write_text(markdown(profile, traces[0].name + ".gz"))
    for trace in folder.glob("*.pt.trace.json"):
        with trace.open("rb") as plain, gzip.open(f"{trace}.gz", "wb") as packed:
            shutil.copyfileobj(plain, packed)
        trace.unlink()
    return profile


def markdown(profile: StepProfile, trace: str) -> str:
    first, last = min(profile.steps), max(profile.steps)
    reads = ", ".join(f"{count:g} in {part}" for part, count in profile.host_reads.items()) or "none"
    rows = [f"| {part} | {ms:.2f} | {ms / profile.step_ms:.0%} |" for part, ms in profile.slowest_first()]
    lines = ["# Where a training step's time goes", "",
             f"The PyTorch profiler over {len(profile.steps)} training steps (ProfilerStep#{first} to "
             f"#{last} of `{trace}`, less any with a validation pass inside), host time per step. "
             "On a GPU the host only queues the forward and backward kernels; the device's share below "
             "says whether they keep it busy.", "",
             "| part | ms per step | share |", "|---|---|---|", *rows,
             f"| the step | {profile.step_ms:.2f} | 100% |", "",
             f"Tensor values read on the host outside the data and the optimizer, per step: {reads} "
             "(`.item()`, `nonzero`, ...; on a GPU each one waits for every kernel queued before it)."]
    if profile.device_busy is not None:
        lines += ["", f"The GPU ran kernels or copies {profile.device_busy:.0%} of the steps' span; the host "
                  f"waited for it {profile.device_waits_ms:.2f} ms per step. Well under 100% busy with "
                  "little waiting: the step is bound by the host (launches, Python, data)."]
    return "\n".join(lines) + "\n"
