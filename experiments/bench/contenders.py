"""One benchmark contestant, run in its own process so its memory and start-up are its own.

    python experiments/bench/contenders.py <raw|raw_masked|hf_trainer|hf_trainer_mlflow> <spec.json>

Every contestant trains the same BertForMaskedLM (built from a dataeff model preset) on the same
tokenized text, batch size and precision, with Hugging Face's DataCollatorForLanguageModeling
masking, and records the wall time at the end of every optimizer step together with the real and
padded token positions of that step's batch; `mlm.py` turns that into rates. (`dataeff`
itself is the fourth contestant, started as `dataeff-train` with `step_timer.StepTimer`.)
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from record import Record
from transformers import (
    BertConfig,
    BertForMaskedLM,
    DataCollatorForLanguageModeling,
    PreTrainedTokenizerFast,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

CONF = Path(__file__).resolve().parents[2] / "conf"


def build(spec: dict):
    tokenizer = PreTrainedTokenizerFast.from_pretrained(spec["tokenizer_dir"])
    preset = OmegaConf.to_container(OmegaConf.load(CONF / "model" / f"{spec['model']}.yaml").config)
    preset.pop("_target_")
    config = BertConfig(**preset, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = BertForMaskedLM(config).to(spec["device"])
    texts = Path(spec["corpus"]).read_text(encoding="utf-8").splitlines()
    encoded = tokenizer(texts, truncation=True, max_length=spec["max_length"])
    examples = [{"input_ids": ids} for ids in encoded["input_ids"]]
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15)
    return model, examples, collator


def raw_loop(spec: dict, masked_only: bool) -> Record:
    """The loop a researcher writes by hand; `masked_only` projects onto the vocabulary at the
    masked positions only (the trick dataeff uses), instead of `BertForMaskedLM(labels=...)`."""
    model, examples, collator = build(spec)
    record, device = Record(spec["device"]), spec["device"]
    loader = torch.utils.data.DataLoader(examples, batch_size=spec["batch_size"], shuffle=True,
                                         collate_fn=collator, generator=torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device == "cuda")
    dtype = torch.bfloat16 if spec["precision"] == "bf16-mixed" else None
    model.train()
    batches = (batch for _ in itertools.count() for batch in loader)  # epoch after epoch, freshly masked
    for _ in range(spec["steps"]):
        batch = {k: v.to(device) for k, v in next(batches).items()}
        record.batch(batch)
        with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
            if masked_only:
                hidden = model.bert(input_ids=batch["input_ids"],
                                    attention_mask=batch["attention_mask"]).last_hidden_state
                targets = batch["labels"] != -100
                logits = model.cls(hidden[targets])
                loss = F.cross_entropy(logits.float(), batch["labels"][targets])
            else:
                loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        record.step_end()
    return record


class _Timer(TrainerCallback):
    def __init__(self, record: Record):
        self.record = record

    def on_step_end(self, args, state, control, **kwargs):
        self.record.step_end()


def hf_trainer(spec: dict, tracked: bool = False) -> Record:
    """The Hugging Face Trainer as its MLM example uses it, with nothing saved; nothing logged, or
    (`tracked`) the loss logged to MLflow ($MLFLOW_TRACKING_URI) every 10 steps, as dataeff logs."""
    model, examples, collator = build(spec)
    record = Record(spec["device"])

    def counted(features):
        batch = collator(features)
        record.batch(batch)
        return batch

    args = TrainingArguments(
        output_dir=spec["work_dir"], max_steps=spec["steps"], per_device_train_batch_size=spec["batch_size"],
        learning_rate=1e-4, bf16=spec["precision"] == "bf16-mixed", use_cpu=spec["device"] == "cpu",
        report_to="mlflow" if tracked else "none", save_strategy="no",
        logging_strategy="steps" if tracked else "no", logging_steps=10, disable_tqdm=True,
        dataloader_num_workers=0, optim="adamw_torch_fused" if spec["device"] == "cuda" else "adamw_torch",
        lr_scheduler_type="constant", seed=0)
    Trainer(model=model, args=args, train_dataset=examples, data_collator=counted,
            callbacks=[_Timer(record)]).train()
    return record


def main(name: str, spec_file: str) -> None:
    spec = json.loads(Path(spec_file).read_text())
    torch.set_num_threads(spec["threads"])
    runners = {"raw": lambda: raw_loop(spec, masked_only=False),
               "raw_masked": lambda: raw_loop(spec, masked_only=True),
               "hf_trainer": lambda: hf_trainer(spec),
               "hf_trainer_mlflow": lambda: hf_trainer(spec, tracked=True)}
    runners[name]().save(spec["out"])


if __name__ == "__main__":
    main(*sys.argv[1:3])
