"""Where a fine-tuning run's encoder comes from: scratch, a dataeff checkpoint, an MLflow run's
artifacts, or a local Hugging Face folder. The tokenizer always comes with the weights."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoConfig, BertConfig, VisionTextDualEncoderConfig

from dataeff.checkpoints import read_checkpoint, tokenizer_from_checkpoint
from dataeff.errors import UserError
from dataeff.hf import load_local, model_folder, read_weights
from dataeff.models import pooled  # noqa: F401  (AutoConfig knows mean-pooled classifiers)
from dataeff.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


@dataclass
class Pretrained:
    """Encoder weights (keys as in `BertFor*`: `bert.…`), their config and their tokenizer."""

    config: BertConfig
    state_dict: dict[str, torch.Tensor]
    tokenizer: object
    source: str
    run_id: str | None = None
    report: dict = field(default_factory=dict)


def load_init(cfg) -> Pretrained | None:
    """`init.kind`: scratch | checkpoint (init.source=path.ckpt) | huggingface (init.source=folder).
    The kinds that name runs (`pretrain`, `mlflow_run`) are turned into a folder by the job's stages
    (dataeff.stages.pretrain and .fetch) before anything is built, on rank 0 alone."""
    init_cfg = cfg.init
    kind, source = init_cfg.kind, init_cfg.get("source")
    if kind == "scratch":
        return None
    if not source:
        raise UserError(f"init={kind} needs init.source (a path or an MLflow run id).")
    loaders = {"checkpoint": from_checkpoint,
               "huggingface": lambda s: from_huggingface(s, run_id=init_cfg.get("source_run_id"))}
    if kind in ("mlflow_run", "pretrain"):
        raise UserError(f"init.kind={kind} ({source}) names a run, which only a dataeff-train job fetches "
                        "(its stages put the run's hf_model/ folder in the cache); outside one, use "
                        "init.kind=huggingface with that folder.")
    if kind not in loaders:
        raise UserError(f"Unknown init.kind={kind!r}; use scratch, checkpoint, mlflow_run, huggingface "
                        "or pretrain.")
    return loaders[kind](str(source))


def from_checkpoint(path: str) -> Pretrained:
    ckpt = read_checkpoint(path, setting="init.source")
    if "net_config" not in ckpt:
        raise UserError(f"Checkpoint {path} has no model config: it was not written by a dataeff "
                        "task. Use init=huggingface with a save_pretrained folder instead.")
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items()}
    return Pretrained(BertConfig.from_dict(ckpt["net_config"]), weights,
                      tokenizer_from_checkpoint(path, ckpt), source=str(path),
                      run_id=ckpt.get("mlflow_run_id"))


def from_huggingface(folder: str, run_id: str | None = None) -> Pretrained:
    path = model_folder(folder, "init.source")
    config = load_local(AutoConfig.from_pretrained, path, "init.source")
    if isinstance(config, VisionTextDualEncoderConfig):  # task=contrastive's export: its text tower
        config = config.text_config
    tokenizer = load_tokenizer(path)
    return Pretrained(config, saved_weights(path), tokenizer, source=str(path), run_id=run_id)


def saved_weights(folder: Path) -> dict[str, torch.Tensor]:
    """The tensors as saved, keyed like `BertFor*` models (`bert.…`; a dual encoder's text tower,
    `text_model.…`, too): what is not in the file is reported missing later instead of being
    silently initialised at random here."""
    weights = read_weights(folder, "init.source")
    return {bert_key(key): value for key, value in weights.items()}


def bert_key(key: str) -> str:
    if key.startswith("text_model."):
        return f"bert.{key.removeprefix('text_model.')}"
    return f"bert.{key}" if key.startswith(("embeddings.", "encoder.", "pooler.")) else key


def load_encoder(model: torch.nn.Module, pretrained: Pretrained, include: list[str],
                 exclude: list[str]) -> dict:
    """Copy the weights whose names match `include` and not `exclude`; report what happened.
    Strict where it matters: a source that fills none of them, or leaves out encoder weights
    (embeddings, layers) the patterns cover, is refused instead of training half-random."""
    def chosen(key: str) -> bool:
        return any(re.search(p, key) for p in include) and not any(re.search(p, key) for p in exclude)

    wanted = {k: v for k, v in pretrained.state_dict.items() if chosen(k)}
    own = model.state_dict()
    _check_coverage(pretrained, wanted, [k for k in own if chosen(k)], include)
    shapes = [k for k, v in wanted.items() if k in own and own[k].shape != v.shape]
    if shapes:
        raise UserError(f"{pretrained.source} does not fit this model: {shapes[0]} is "
                        f"{tuple(wanted[shapes[0]].shape)} there but {tuple(own[shapes[0]].shape)} "
                        "here. Initialised models take their architecture from the source.")
    result = model.load_state_dict(wanted, strict=False)
    report = {"source": pretrained.source, "loaded": sorted(set(wanted) - set(result.unexpected_keys)),
              "missing": sorted(result.missing_keys), "unexpected": sorted(result.unexpected_keys)}
    log.info("Initialised %d tensors from %s; %d left fresh (%s)", len(report["loaded"]),
             pretrained.source, len(report["missing"]), ", ".join(report["missing"][:4]))
    return report


# the pooler may be fresh: MLM runs have none (text_model: a dual encoder's text tower)
ENCODER_WEIGHTS = re.compile(r"^(bert|text_model)\.(embeddings|encoder)\.")


def _check_coverage(pretrained: Pretrained, wanted: dict, covered: list[str], include: list[str]) -> None:
    source = pretrained.source
    if not wanted:
        names = ", ".join(list(pretrained.state_dict)[:3])
        raise UserError(f"Nothing in {source} matches task.net.include={include}, so no weight would be "
                        f"loaded and the run would start from scratch under another name. Its tensors "
                        f"are named like {names}, and init takes BERT encoders (bert.*, or "
                        "embeddings.* and encoder.* as save_pretrained writes them); point init.source "
                        "at one, or set task.net.include= to the names its encoder weights have.")
    absent = sorted(k for k in covered if ENCODER_WEIGHTS.match(k) and k not in wanted)
    if absent:
        raise UserError(f"{source} lacks {len(absent)} encoder weight(s) that task.net.include covers, "
                        f"e.g. {absent[0]}: it is not a whole BERT encoder of this shape, and those "
                        "would stay random. Point init.source at the complete folder or run, or leave "
                        "them out on purpose with task.net.exclude=['<regex>'].")
