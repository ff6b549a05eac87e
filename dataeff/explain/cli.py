"""dataeff-explain: what a finished classify, linear_probe or setfit run's predictions rest on, for
texts you give it (one a line in a .txt, or a table's text column; with a label column the page
marks the errors). The page and tables go to --out and to the run's artifacts under
explanations/<file name>/; the summary, with the faithfulness verdict, is printed.

    dataeff-explain --run <run id> --input reviews.txt
    dataeff-explain --run <run id> --input dev.tsv --text-column sentence --label-column label
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch
from hydra.utils import instantiate
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

import dataeff.models.pooled  # noqa: F401  (a mean-pooled classifier's model type, for AutoModel)
from dataeff.checks.command_line import CONFIG_DIR
from dataeff.data.readers import read_table
from dataeff.errors import UserError
from dataeff.hf import load_local
from dataeff.runs.artifacts import fetch_run_model
from dataeff.runs.store import default_tracking_uri, open_store

MAX_LENGTH = 128


def examples(path: str, tokenizer, text_column: str, label_column: str | None, label_names: list[str]):
    """(ids, types, label) per text of the file; label -1 where none is given."""
    table = read_table(path)
    if text_column not in table:
        text_column = "text" if "text" in table else text_column
    missing = [c for c in (text_column, label_column) if c is not None and c not in table]
    if missing:
        columns = ", ".join(map(str, table.columns))
        raise UserError(f"{path} has no column {missing[0]!r} (its columns: {columns}); name the right one "
                        "with --text-column / --label-column.")
    ids = {name: i for i, name in enumerate(label_names)}
    labels = [ids.get(str(v), -2) for v in table[label_column]] if label_column else [-1] * len(table)
    if -2 in labels:
        unknown = sorted({str(v) for v in table[label_column] if str(v) not in ids})
        raise UserError(f"{path}: labels {', '.join(unknown[:5])} are not among the model's classes "
                        f"({', '.join(label_names)}).")
    encoded = tokenizer(list(table[text_column].astype(str)), truncation=True, max_length=MAX_LENGTH,
                        return_token_type_ids=True)
    return [(torch.tensor(i), torch.tensor(t), label)
            for i, t, label in zip(encoded["input_ids"], encoded["token_type_ids"], labels)]


def explain_run(run_id: str, path: str, out: Path, tracking_uri: str, text_column: str,
                label_column: str | None, settings: list[str]) -> list[str]:
    """Explain the texts of `path` with the run's model; write to `out`, log to the run."""
    with tempfile.TemporaryDirectory() as cache:
        folder = fetch_run_model(run_id, tracking_uri, cache)
        net = load_local(AutoModelForSequenceClassification.from_pretrained, folder, "--run")
        tokenizer = load_local(AutoTokenizer.from_pretrained, folder, "--run")
    names = [net.config.id2label[i] for i in range(net.config.num_labels)]
    preset = OmegaConf.load(CONFIG_DIR / "explain" / "integrated_gradients.yaml")
    explainer = instantiate(OmegaConf.merge(preset, OmegaConf.from_dotlist(settings)))
    outcome = explainer.explain(net, tokenizer, examples(path, tokenizer, text_column, label_column, names),
                                names, out)
    MlflowClient(tracking_uri).log_artifacts(run_id, str(out), f"explanations/{Path(path).name}")
    return [*outcome.summary, f"Written to {out} and to run {run_id}'s artifacts "
                              f"(explanations/{Path(path).name}/explanations.html)."]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dataeff-explain", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, help="the MLflow run id of a finished text classifier")
    parser.add_argument("--input", required=True,
                        help="texts: .txt (one a line), .csv, .tsv, .jsonl, .parquet")
    parser.add_argument("--text-column", default="sentence", help="default: sentence, else text")
    parser.add_argument("--label-column", help="the given labels, if the file has them")
    parser.add_argument("--out", help="default: explanations/<run id>/<file name>/")
    parser.add_argument("--tracking-uri",
                        help="default: $MLFLOW_TRACKING_URI, else $DATAEFF_ROOT/mlflow.db, else ./mlflow.db")
    parser.add_argument("settings", nargs="*", help="explain settings, e.g. steps=64 max_examples=500")
    args = parser.parse_args(argv)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one summary, no bars
    hf_logging.disable_progress_bar()
    out = Path(args.out or Path("explanations") / args.run / Path(args.input).name)
    try:
        uri = open_store(args.tracking_uri or default_tracking_uri())
        lines = explain_run(args.run, args.input, out, uri, args.text_column, args.label_column,
                            args.settings)
    except (UserError, OSError, MlflowException) as err:
        print(f"Error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
