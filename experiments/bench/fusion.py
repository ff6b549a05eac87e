"""Image + text fine-tuning speed: dataeff's late fusion against a hand-written loop.

    python experiments/bench/fusion.py                                   # CPU: bert_tiny + vit_tiny
    python experiments/bench/fusion.py --device cuda --model bert_base --vision vit_b16 \\
        --batch-size 128 --precision bf16-mixed                         # make bench-gpu-fusion

Both train the same shapes on easy-VQA's training questions and images (shipped with the project),
with the same WordPiece vocabulary, batch size and precision, each in a process of its own,
interleaved over rounds:

- `raw`: a loop written by hand: Hugging Face BertModel + ViTModel, mean-pooled, concatenated,
  an MLP, AdamW (fused on a GPU), images decoded and resized once;
- `dataeff`: `dataeff-train task=fusion fusion=concat` as a user runs it, MLflow included.

Printed: steady-state ms/step, image-text pairs/s, dataeff/raw, and on a GPU the model FLOPs
utilisation (6 x weights per token or patch, plus attention).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

from mlm import ROOT, model_flops_per_token, timed

HERE = Path(__file__).resolve().parent
MAX_LENGTH = 32  # easy-VQA questions are at most 13 tokens


def preset(group: str, name: str) -> dict:
    from omegaconf import OmegaConf

    config = OmegaConf.to_container(OmegaConf.load(ROOT / "conf" / group / f"{name}.yaml").config)
    config.pop("_target_")
    return config


def raw_loop(spec: dict) -> None:
    """The contestant written by hand; writes its step record to spec['out']."""
    import easy_vqa
    import torch
    import torch.nn.functional as F
    from record import Record
    from torch import nn
    from torchvision.io import ImageReadMode, decode_image
    from torchvision.transforms.v2.functional import resize
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast, ViTConfig, ViTModel

    torch.set_num_threads(spec["threads"])
    device, size = spec["device"], preset("vision", spec["vision"])["image_size"]
    questions, answers, image_ids = easy_vqa.get_train_questions()
    paths = easy_vqa.get_train_image_paths()
    tokenizer = PreTrainedTokenizerFast.from_pretrained(spec["tokenizer_dir"])
    encoded = tokenizer(questions, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    ids = [torch.tensor(seq) for seq in encoded]
    order = sorted(paths)
    pixels = torch.stack([resize(decode_image(paths[i], mode=ImageReadMode.RGB), [size, size], antialias=True)
                          for i in order])
    image_of = torch.tensor([order.index(i) for i in image_ids])
    classes = sorted(set(answers))
    labels = torch.tensor([classes.index(a) for a in answers])

    class Fusion(nn.Module):
        def __init__(self):
            super().__init__()
            text = BertConfig(**preset("model", spec["model"]), vocab_size=len(tokenizer),
                              pad_token_id=tokenizer.pad_token_id, attn_implementation="sdpa")
            vision = ViTConfig(**preset("vision", spec["vision"]), attn_implementation="sdpa")
            self.bert = BertModel(text, add_pooling_layer=False)
            self.vit = ViTModel(vision, add_pooling_layer=False)
            self.head = nn.Sequential(nn.Linear(text.hidden_size + vision.hidden_size, 256), nn.GELU(),
                                      nn.Dropout(0.1), nn.Linear(256, len(classes)))

        def forward(self, input_ids, attention_mask, pixel_values):
            mask = attention_mask.unsqueeze(-1).float()
            text = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            image = self.vit(pixel_values=pixel_values).last_hidden_state.mean(1)
            return self.head(torch.cat([(text * mask).sum(1) / mask.sum(1), image], -1))

    torch.manual_seed(0)
    model = Fusion().to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    dtype = torch.bfloat16 if spec["precision"] == "bf16-mixed" else None
    record = Record(device)
    generator = torch.Generator().manual_seed(0)
    for _ in range(spec["steps"]):
        picked = torch.randint(len(labels), (spec["batch_size"],), generator=generator)
        input_ids = nn.utils.rnn.pad_sequence([ids[i] for i in picked], batch_first=True,
                                              padding_value=tokenizer.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": (input_ids != tokenizer.pad_token_id).long(),
                 "pixel_values": (pixels[image_of[picked]].float() / 255 - 0.5) / 0.5}
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        record.batch(batch)
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            loss = F.cross_entropy(model(**batch).float(), labels[picked].to(device))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record.step_end()
    record.save(spec["out"])


def prepare(work: Path) -> str:
    """The WordPiece vocabulary both contestants use, trained once on the questions."""
    import easy_vqa

    from dataeff.tokenizer import cached_wordpiece

    questions = easy_vqa.get_train_questions()[0]
    tokenizer = cached_wordpiece(questions, work / "cache", 2000)
    tokenizer.save_pretrained(str(work / "tokenizer"))
    return str(work / "tokenizer")


def command(name: str, spec: dict, work: Path) -> list[str]:
    if name == "raw":
        return [sys.executable, str(HERE / "fusion.py"), "--contestant", str(work / "spec.json")]
    return [str(Path(sys.executable).with_name("dataeff-train")), "task=fusion", "data=easyvqa",
            "fusion=concat", f"model={spec['model']}", f"vision={spec['vision']}",
            f"tokenizer.path={spec['tokenizer_dir']}", f"data.max_length={MAX_LENGTH}",
            f"data.batch_size={spec['batch_size']}", f"trainer={'cpu' if spec['device'] == 'cpu' else 'gpu'}",
            f"trainer.precision={spec['precision']}", f"trainer.max_steps={spec['steps']}",
            "trainer.limit_val_batches=0", "trainer.limit_test_batches=0",
            "trainer.enable_progress_bar=false",
            "trainer.enable_model_summary=false", "+callbacks.bench_timer._target_=step_timer.StepTimer",
            f"+callbacks.bench_timer.out={spec['out']}", f"+callbacks.bench_timer.device={spec['device']}"]


def flops_per_pair(spec: dict, text_tokens: float) -> float:
    """Training FLOPs of one pair: the text encoder over its real tokens, the ViT over its patches."""
    vision = preset("vision", spec["vision"])
    patches = (vision["image_size"] // vision["patch_size"]) ** 2 + 1
    layers, hidden = vision["num_hidden_layers"], vision["hidden_size"]
    per_patch = 6 * 12 * layers * hidden**2 + 12 * layers * hidden * patches
    return text_tokens * model_flops_per_token(spec["model"], MAX_LENGTH) + patches * per_patch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contestant", help=argparse.SUPPRESS)  # the raw loop's own process
    parser.add_argument("--model", default="bert_tiny")
    parser.add_argument("--vision", default="vit_tiny")
    parser.add_argument("--precision", default="32-true")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak, for MFU")
    args = parser.parse_args()
    if args.contestant:
        raw_loop(json.loads(Path(args.contestant).read_text()))
        return 0
    results: dict[str, list[dict]] = {"raw": [], "dataeff": []}
    with tempfile.TemporaryDirectory(prefix="dataeff-bench-") as tmp:
        work = Path(tmp)
        spec = {"model": args.model, "vision": args.vision, "precision": args.precision,
                "device": args.device, "steps": args.steps, "batch_size": args.batch_size,
                "threads": args.threads, "tokenizer_dir": prepare(work)}
        for round_ in range(args.rounds):
            for name in list(results)[::-1 if round_ % 2 else 1]:
                spec["out"] = str(work / f"{name}.json")
                (work / "spec.json").write_text(json.dumps(spec))
                result = timed(name, command(name, spec, work), work, args.threads, args.warmup)
                results[name].append(result)
                print(f"round {round_ + 1} {name:8s} {result['ms_per_step']:6.0f} ms/step "
                      f"{1000 * args.batch_size / result['ms_per_step']:8,.0f} pairs/s", flush=True)
    median = {name: {key: statistics.median(r[key] for r in rows) for key in ("ms_per_step", "real_per_s")}
              for name, rows in results.items()}
    print(f"\n| contestant | ms/step | pairs/s |\n|{'---|' * 3}")
    for name, row in median.items():
        print(f"| {name} | {row['ms_per_step']:.0f} | {1000 * args.batch_size / row['ms_per_step']:,.0f} |")
    print(f"\ndataeff's step time = {median['dataeff']['ms_per_step'] / median['raw']['ms_per_step']:.2f}x "
          f"the raw loop's ({args.model} + {args.vision}, batch {args.batch_size}, {args.precision}, "
          f"medians of {args.rounds} rounds)")
    if args.device == "cuda":
        for name, row in median.items():
            pairs = 1000 * args.batch_size / row["ms_per_step"]
            tokens = row["real_per_s"] / pairs  # real text tokens per pair
            tflops = pairs * flops_per_pair(spec, tokens) / 1e12
            print(f"{name}: {pairs:,.0f} pairs/s, {tflops:.0f} TFLOP/s, MFU {tflops / args.peak_tflops:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
