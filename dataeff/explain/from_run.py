"""A finished run's exported text classifier, and texts encoded for it: what `dataeff-explain` and
the audit's explanations of likely label errors (audit.labels.explain_run) start from."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import dataeff.models.pooled  # noqa: F401  (a mean-pooled classifier's model type, for AutoModel)
from dataeff.building import build
from dataeff.checks.command_line import CONFIG_DIR
from dataeff.checks.explain import TEXT_CLASSIFIERS
from dataeff.errors import UserError
from dataeff.explain.explainer import Explainer
from dataeff.hf import load_local
from dataeff.runs.artifacts import fetch_run_model

MAX_LENGTH = 128  # a run that logged none


@dataclass
class RunClassifier:
    net: torch.nn.Module
    tokenizer: object
    names: list[str]  # the class names, in the order of the net's outputs
    max_length: int  # the run's data.max_length: texts are cut as its training cut them


def run_classifier(run_id: str, tracking_uri: str, cache_dir: str) -> RunClassifier:
    """The run's `hf_model/`, refused unless the run trained a text classifier."""
    try:
        run = MlflowClient(tracking_uri).get_run(run_id)
    except MlflowException as err:
        raise UserError(f"MLflow run {run_id} does not exist in {tracking_uri}; copy a run id from the "
                        "MLflow UI (make ui) or set MLFLOW_TRACKING_URI to its store.") from err
    task = run.data.tags.get("task.name")
    if task not in TEXT_CLASSIFIERS:
        raise UserError(f"MLflow run {run_id} trained task={task}; explanations attribute a text "
                        f"classifier's predictions to its tokens: give the run of a task="
                        f"{' | '.join(TEXT_CLASSIFIERS)} job.")
    folder = fetch_run_model(run_id, tracking_uri, cache_dir)
    net = load_local(AutoModelForSequenceClassification.from_pretrained, folder, f"the run {run_id}")
    tokenizer = load_local(AutoTokenizer.from_pretrained, folder, f"the run {run_id}")
    names = [str(net.config.id2label[i]) for i in range(net.config.num_labels)]
    return RunClassifier(net, tokenizer, names, int(run.data.params.get("data.max_length", MAX_LENGTH)))


def encoded(model: RunClassifier, texts: list[str], labels: list[str] | None, where: str,
            pairs: list[str] | None = None) -> list:
    """(token ids, token type ids, label) per text (with its pair, for sentence-pair data), as
    `Explainer.explain` reads a text classifier's examples; the label is -1 where none is given."""
    if not texts:
        raise UserError(f"{where} has no texts to explain.")
    names = model.names
    ids = {name: i for i, name in enumerate(names)}
    unknown = sorted({str(label) for label in labels or [] if str(label) not in ids})
    if unknown:
        raise UserError(f"{where}: labels {', '.join(unknown[:5])} are not among the model's classes "
                        f"({', '.join(names)}).")
    numbers = [ids[str(label)] for label in labels] if labels is not None else [-1] * len(texts)
    tokens = model.tokenizer([str(text) for text in texts], [str(p) for p in pairs] if pairs else None,
                             truncation=True, max_length=model.max_length, return_token_type_ids=True)
    return [(torch.tensor(i), torch.tensor(t), label)
            for i, t, label in zip(tokens["input_ids"], tokens["token_type_ids"], numbers)]


def preset_explainer(settings: list[str]) -> Explainer:
    """conf/explain/integrated_gradients.yaml with `settings` (key=value) over it."""
    preset = OmegaConf.load(CONFIG_DIR / "explain" / "integrated_gradients.yaml")
    for setting in settings:
        key = setting.partition("=")[0]
        if "=" not in setting or key not in preset or key.startswith("_"):
            known = ", ".join(k for k in preset if not str(k).startswith("_"))
            raise UserError(f"{setting!r} is not an explain setting as key=value; the keys: {known}.")
    return build(OmegaConf.merge(preset, OmegaConf.from_dotlist(settings)))
