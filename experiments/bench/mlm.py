"""MLM training speed: dataeff against a hand-written loop and the Hugging Face Trainer.

    make bench                                   # CPU: bert_mini, fp32 (and bf16 if native), 2 rounds
    python experiments/bench/mlm.py --rounds 3 --precision 32-true --steps 40
    python experiments/bench/mlm.py --device cuda --model bert_base --batch-size 256 --max-length 128

Four contestants train the same model preset on the same text with the same tokenizer, batch
size, sequence length and precision, each in a process of its own (so peak memory and start-up
are its own), interleaved over rounds so that a machine's drift hits them all alike:

- `raw`: a hand-written loop, `BertForMaskedLM(labels=...)` (vocabulary projection everywhere);
- `raw_masked`: the same loop projecting the masked positions only (the trick dataeff uses);
- `hf_trainer`: the Hugging Face Trainer with DataCollatorForLanguageModeling;
- `dataeff`: `dataeff-train data=text ...` as a user runs it, MLflow logging included;
- `dataeff_packed`: the same with `data.packing=true` (whole texts side by side in each row);
- `dataeff_compiled` (with `--compile`): packed and `task.compile=true` (static shapes).

With `--profile DIR`, one more packed dataeff job (untimed, after the table) runs under
`profiler=pytorch`: its trace, Lightning's operator table and steps.md (where a step's time goes,
the device's busy share on a GPU) land in DIR, and steps.md is printed last.

Printed per contestant: steady-state ms/step, real tokens/s (attention mask) and padded positions
/s, peak RSS, and the fixed cost of a job (its wall time less its steps); then dataeff's ratios
against the HF Trainer and against the raw loop with the same trick. Text: ../shared/data/mr when
present, else the easy-VQA questions the project ships (short, templated: a floor, not a figure).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
MR = ROOT.parent / "shared" / "data" / "mr" / "unlabeled.txt"
CONTESTANTS = ("raw", "raw_masked", "hf_trainer", "dataeff", "dataeff_packed")


def corpus(limit: int) -> tuple[list[str], str]:
    if MR.exists():
        lines = [line for line in MR.read_text(encoding="utf-8").splitlines() if line.strip()]
        return lines[:limit], f"MR unlabelled sentences ({MR})"
    from dataeff.data.sources import EasyVQAQuestions

    return list(EasyVQAQuestions(split="train").texts())[:limit], "easy-VQA questions (embedded)"


def prepare(work: Path, args) -> dict:
    """The text and the tokenizer every contestant uses: written once, read by all."""
    from dataeff.tokenizer import cached_wordpiece

    texts, source = corpus(args.texts)
    (work / "corpus.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    tokenizer = cached_wordpiece(texts, work / "cache", args.vocab_size)
    tokenizer.save_pretrained(str(work / "tokenizer"))
    print(f"Text: {len(texts)} lines of {source}; WordPiece vocabulary {len(tokenizer)}")
    return {"corpus": str(work / "corpus.txt"), "tokenizer_dir": str(work / "tokenizer"),
            "model": args.model, "batch_size": args.batch_size, "max_length": args.max_length,
            "steps": args.steps, "threads": args.threads, "device": args.device}


def command(name: str, spec: dict, work: Path) -> list[str]:
    if not name.startswith("dataeff"):
        return [sys.executable, str(HERE / "contenders.py"), name, str(work / "spec.json")]
    trainer = "cpu" if spec["device"] == "cpu" else "gpu"
    return [str(Path(sys.executable).with_name("dataeff-train")), "data=text",
            f"data.train.path={spec['corpus']}", f"data.max_length={spec['max_length']}",
            f"data.batch_size={spec['batch_size']}", f"model={spec['model']}",
            f"tokenizer.path={spec['tokenizer_dir']}", f"trainer={trainer}",
            f"trainer.max_steps={spec['steps']}", f"trainer.precision={spec['precision']}",
            "trainer.limit_val_batches=0", "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "task.optimizer.lr=1e-4",
            "+callbacks.bench_timer._target_=step_timer.StepTimer",
            f"+callbacks.bench_timer.out={spec['out']}", f"+callbacks.bench_timer.device={spec['device']}",
            f"data.packing={name != 'dataeff'}", f"task.compile={name == 'dataeff_compiled'}"]


def fill_token_cache(base: dict, work: Path) -> None:
    """One untimed one-step dataeff job: it tokenizes the text into the cache that every later
    dataeff job reads, as a study's first job does, instead of whichever dataeff contestant runs
    first paying for it in its fixed cost (the HF Trainer tokenizes in every run, as it does)."""
    spec = {**base, "precision": "32-true", "steps": 1, "out": str(work / "fill_cache.json")}
    run_process("fill_cache", command("dataeff", spec, work), work, spec["threads"])


def profile_one(base: dict, work: Path, folder: Path, precision: str) -> None:
    """A packed dataeff job under profiler=pytorch, long enough for its window (steps 13-18), as a
    user runs it: without the benchmark's step timer, which waits for the device every step."""
    spec = {**base, "precision": precision, "steps": 20, "out": str(work / "profiled.json")}
    timed = command("dataeff_packed", spec, work)
    argv = [arg for arg in timed if not arg.startswith("+callbacks.bench_timer")]
    argv += ["profiler=pytorch", f"trainer.profiler.dirpath={folder.resolve()}"]
    run_process("profiled", argv, work, spec["threads"])
    steps = folder / "steps.md"
    print(f"\n{precision}, packed, profiled (files in {folder}):\n"
          + (steps.read_text() if steps.exists() else "no steps.md: see the job's log, profiled.log"))


def run_one(name: str, spec: dict, work: Path) -> dict:
    spec = {**spec, "out": str(work / f"{name}.json"), "work_dir": str(work / "hf")}
    (work / "spec.json").write_text(json.dumps(spec))
    return timed(name, command(name, spec, work), work, spec["threads"], spec["warmup"])


def timed(name: str, argv: list[str], work: Path, threads: int, warmup: int, **env: str) -> dict:
    """Start a contestant (it writes its Record to work/<name>.json), wait for it with its own
    resource usage; its rates and costs. The store, if any, goes under `work`."""
    wall, peak_mb = run_process(name, argv, work, threads, **env)
    return {**rates(json.loads((work / f"{name}.json").read_text()), warmup), "wall_s": wall,
            "peak_mb": peak_mb}


def run_process(name: str, argv: list[str], work: Path, threads: int, **env: str) -> tuple[float, float]:
    """Run a contestant to its end, its output in work/<name>.log; its wall seconds and peak MB.
    MLFLOW_TRACKING_URI is the caller's to give: dataeff's store goes under `work` otherwise."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env = {**base, "PYTHONPATH": str(HERE), "DATAEFF_ROOT": str(work / "dataeff_root"),
           "OMP_NUM_THREADS": str(threads), "TOKENIZERS_PARALLELISM": "false", **env}
    log = (work / f"{name}.log").open("w")
    start = time.perf_counter()
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        tail = (work / f"{name}.log").read_text(errors="replace")[-3000:]
        raise SystemExit(f"{tail}\n{name} failed (exit {process.returncode}); the end of its log is above.")
    return wall, usage.ru_maxrss / 1024


def rates(record: dict, warmup: int) -> dict:
    """Steady state: from the end of the warm-up steps to the end of the last step."""
    ends, real, positions = record["ends"], record["real"], record["positions"]
    seconds = ends[-1] - ends[warmup - 1]
    steps = len(ends) - warmup
    return {"ms_per_step": 1000 * seconds / steps, "real_per_s": sum(real[warmup:]) / seconds,
            "positions_per_s": sum(positions[warmup:]) / seconds, "steps": len(ends)}


def summarise(results: list[dict]) -> dict:
    """Medians over rounds; the fixed cost is the wall time less the steps it ran."""
    median = {key: statistics.median(r[key] for r in results)
              for key in ("ms_per_step", "real_per_s", "positions_per_s", "peak_mb", "wall_s")}
    median["fixed_s"] = statistics.median(r["wall_s"] - r["steps"] * r["ms_per_step"] / 1000
                                          for r in results)
    return median


def model_flops_per_token(model: str, max_length: int) -> float:
    """Training FLOPs per token, the usual estimate: 6 x the encoder's weights (12 x layers x
    hidden^2) plus attention's 12 x layers x hidden x sequence length."""
    from omegaconf import OmegaConf

    config = OmegaConf.load(ROOT / "conf" / "model" / f"{model}.yaml").config
    layers, hidden = config.num_hidden_layers, config.hidden_size
    return 6 * 12 * layers * hidden**2 + 12 * layers * hidden * max_length


def report_mfu(table: dict, precisions: list[str], args) -> None:
    """Model FLOPs utilisation on a GPU: useful (real-token) FLOPs against the chip's peak."""
    per_token = model_flops_per_token(args.model, args.max_length)
    for precision in precisions:
        for name, row in table[precision].items():
            tflops = row["real_per_s"] * per_token / 1e12
            print(f"{precision} {name}: {row['real_per_s'] / args.max_length:,.0f} sequences/s "
                  f"(at {args.max_length} tokens), {tflops:.0f} TFLOP/s, MFU {tflops / args.peak_tflops:.1%}")


def report(table: dict, precisions: list[str]) -> None:
    print(f"\n| precision | contestant | ms/step | real tokens/s | padded positions/s | real share "
          f"| peak MB | fixed s |\n|{'---|' * 8}")
    for precision in precisions:
        for name, row in table[precision].items():
            share = row["real_per_s"] / row["positions_per_s"]
            print(f"| {precision} | {name} | {row['ms_per_step']:.0f} | {row['real_per_s']:,.0f} | "
                  f"{row['positions_per_s']:,.0f} | {share:.2f} | {row['peak_mb']:,.0f} | "
                  f"{row['fixed_s']:.1f} |")
    print()
    for precision in precisions:
        rows = table[precision]
        hf, raw, ours = rows["hf_trainer"], rows["raw_masked"], rows["dataeff"]
        packed = rows["dataeff_packed"]
        print(f"{precision}: real tokens/s against the HF Trainer's: dataeff "
              f"{ours['real_per_s'] / hf['real_per_s']:.2f}x, with packing "
              f"{packed['real_per_s'] / hf['real_per_s']:.2f}x (target >= 1.5); dataeff's "
              f"step time = {ours['ms_per_step'] / raw['ms_per_step']:.2f}x the raw loop's with the same "
              f"trick (target <= 1.05); fixed cost per job = {ours['fixed_s'] / hf['fixed_s']:.2f}x the "
              f"HF Trainer's, {packed['fixed_s'] / hf['fixed_s']:.2f}x packed (target <= 1; in detail, "
              "with MLflow and sweeps: make bench-startup)")
        if "dataeff_compiled" in rows:
            print(f"{precision}: task.compile=true against eager (both packed): "
                  f"{rows['dataeff_compiled']['real_per_s'] / rows['dataeff_packed']['real_per_s']:.2f}x "
                  "the real tokens/s")


def default_precisions(device: str) -> list[str]:
    from dataeff.resolvers import cpu_precision

    if device == "cuda" or cpu_precision() == "bf16-mixed":
        return ["32-true", "bf16-mixed"]
    print("bf16-mixed left out: this CPU has no bf16 instructions (AVX512-BF16, AMX), so it would "
          "time slow fallback kernels; --precision bf16-mixed times it anyway.")
    return ["32-true"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="bert_mini")
    parser.add_argument("--precision", nargs="+", default=None,
                        help="default: 32-true, and bf16-mixed where the CPU or GPU has bf16 instructions")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=2000)
    parser.add_argument("--texts", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--compile", action="store_true", help="also time task.compile=true (packed)")
    parser.add_argument("--profile", type=Path, help="a folder: profile one more packed job into it")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="the GPU's dense bf16 peak for MFU (H100/H200 SXM: 989)")
    args = parser.parse_args()
    args.precision = args.precision or default_precisions(args.device)
    with tempfile.TemporaryDirectory(prefix="dataeff-bench-") as tmp:
        work = Path(tmp)
        base = {**prepare(work, args), "warmup": args.warmup}
        fill_token_cache(base, work)
        contestants = CONTESTANTS + (("dataeff_compiled",) if args.compile else ())
        results = {p: {n: [] for n in contestants} for p in args.precision}
        for round_ in range(args.rounds):
            turn = round_ % len(contestants)
            order = contestants[turn:] + contestants[:turn]  # no one always goes first
            for precision in args.precision:
                for name in order:
                    result = run_one(name, {**base, "precision": precision}, work)
                    results[precision][name].append(result)
                    print(f"round {round_ + 1} {precision:10s} {name:10s} "
                          f"{result['ms_per_step']:7.0f} ms/step {result['real_per_s']:9,.0f} real tokens/s "
                          f"wall {result['wall_s']:.1f} s", flush=True)
        table = {p: {n: summarise(r) for n, r in by_name.items()} for p, by_name in results.items()}
        report(table, args.precision)
        if args.device == "cuda":
            report_mfu(table, args.precision, args)
        if args.profile:  # after the table, which a failed or stopped profiled job cannot lose
            profile_one(base, work, args.profile, args.precision[-1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
