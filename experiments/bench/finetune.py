"""Fine-tuning speed with and without length-grouped batches (`data.group_by_length`).

    python experiments/bench/finetune.py                    # MiniLM on SST-2, 2 rounds of 40 steps
    python experiments/bench/finetune.py --init scratch --model bert_mini --rounds 3

`dataeff-train task=classify` as a user runs it, twice per round (grouped, then random batches,
the order alternating between rounds), each in a process of its own. Printed: steady-state
ms/step, real tokens/s, the real share of the padded positions, and grouped/random ratios. Data:
../shared/data/sst2 when present (sentences of 2 to 56 words), else the easy-VQA questions the
project ships (templated, nearly one length: a floor, not a figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from mlm import ROOT, timed

SST2 = ROOT.parent / "shared" / "data" / "sst2"
CONTESTANTS = {"grouped": True, "random": False}


def command(grouped: bool, args, out: Path) -> list[str]:
    data = "data=sst2" if SST2.exists() else "data=easyvqa_answers"
    return [str(Path(sys.executable).with_name("dataeff-train")), "task=classify", data,
            f"init={args.init}", *([f"model={args.model}"] if args.init == "scratch" else []),
            f"data.batch_size={args.batch_size}",
            f"data.group_by_length={grouped}", f"trainer.max_steps={args.steps}",
            f"trainer.precision={args.precision}", "trainer.limit_val_batches=0",
            "trainer.limit_test_batches=0", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "+callbacks.bench_timer._target_=step_timer.StepTimer",
            f"+callbacks.bench_timer.out={out}"]


def run_one(name: str, args, work: Path) -> dict:
    return timed(name, command(CONTESTANTS[name], args, work / f"{name}.json"), work, args.threads,
                 args.warmup, DATAEFF_DATA=str(SST2.parent))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--init", default="minilm")
    parser.add_argument("--model", default="bert_mini", help="the preset of a fresh encoder (init=scratch)")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    print(f"Data: {SST2 if SST2.exists() else 'easy-VQA questions (embedded; templated, one length)'}")
    results: dict[str, list[dict]] = {name: [] for name in CONTESTANTS}
    with tempfile.TemporaryDirectory(prefix="dataeff-bench-") as tmp:
        for round_ in range(args.rounds):
            order = list(CONTESTANTS)[::-1 if round_ % 2 else 1]
            for name in order:
                result = run_one(name, args, Path(tmp))
                results[name].append(result)
                print(f"round {round_ + 1} {name:8s} {result['ms_per_step']:6.0f} ms/step "
                      f"{result['real_per_s']:8,.0f} real tokens/s, real share "
                      f"{result['real_per_s'] / result['positions_per_s']:.2f}", flush=True)
    median = {name: {key: statistics.median(r[key] for r in rows)
                     for key in ("ms_per_step", "real_per_s", "positions_per_s")}
              for name, rows in results.items()}
    print(f"\n| batches | ms/step | real tokens/s | real share |\n|{'---|' * 4}")
    for name, row in median.items():
        print(f"| {name} | {row['ms_per_step']:.0f} | {row['real_per_s']:,.0f} | "
              f"{row['real_per_s'] / row['positions_per_s']:.2f} |")
    grouped, shuffled = median["grouped"], median["random"]
    setting = f"init={args.init}" + (f", model={args.model}" if args.init == "scratch" else "")
    print(f"\nLength-grouped batches: {shuffled['ms_per_step'] / grouped['ms_per_step']:.2f}x faster a "
          f"step, {grouped['real_per_s'] / shuffled['real_per_s']:.2f}x the real tokens/s "
          f"({setting}, batch {args.batch_size}, {args.precision}, medians of "
          f"{args.rounds} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
