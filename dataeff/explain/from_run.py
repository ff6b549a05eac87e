"""A finished run's exported text classifier, and texts encoded for it: what `dataeff-explain` and
the audit's explanations of likely label errors (audit.labels.explain_run) start from."""

from __future__ import annotations

import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import dataeff.models.pooled  # noqa: F401  (a mean-pooled classifier's model type, for AutoModel)
from dataeff.checks.command_line import CONFIG_DIR
from dataeff.errors import UserError
from dataeff.explain.text import TextExplainer
from dataeff.hf import load_local
from dataeff.runs.artifacts import fetch_run_model

MAX_LENGTH = 128


def run_classifier(run_id: str, tracking_uri: str, cache_dir: str):
    """The run's `hf_model/` as (network, tokenizer, class names)."""
    folder = fetch_run_model(run_id, tracking_uri, cache_dir)
    net = load_local(AutoModelForSequenceClassification.from_pretrained, folder, f"the run {run_id}")
    tokenizer = load_local(AutoTokenizer.from_pretrained, folder, f"the run {run_id}")
    return net, tokenizer, [str(net.config.id2label[i]) for i in range(net.config.num_labels)]


def encoded(texts: list[str], labels: list[str] | None, tokenizer, names: list[str], where: str) -> list:
    """(token ids, token type ids, label) per text, as `TextExplainer.explain` reads examples; the
    label is -1 where none is given."""
    ids = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(label) for label in labels or [] if str(label) not in ids})
    if unknown:
        raise UserError(f"{where}: labels {', '.join(unknown[:5])} are not among the model's classes "
                        f"({', '.join(names)}).")
    numbers = [ids[str(label)] for label in labels] if labels is not None else [-1] * len(texts)
    tokens = tokenizer([str(text) for text in texts], truncation=True, max_length=MAX_LENGTH,
                       return_token_type_ids=True)
    return [(torch.tensor(i), torch.tensor(t), label)
            for i, t, label in zip(tokens["input_ids"], tokens["token_type_ids"], numbers)]


def preset_explainer(settings: list[str]) -> TextExplainer:
    """conf/explain/integrated_gradients.yaml with `settings` (key=value) over it."""
    preset = OmegaConf.load(CONFIG_DIR / "explain" / "integrated_gradients.yaml")
    return instantiate(OmegaConf.merge(preset, OmegaConf.from_dotlist(settings)))
