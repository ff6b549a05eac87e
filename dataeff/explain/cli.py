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

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from transformers.utils import logging as hf_logging

from dataeff.data.readers import read_table
from dataeff.errors import UserError
from dataeff.explain.from_run import RunClassifier, encoded, preset_explainer, run_classifier
from dataeff.runs.store import default_tracking_uri, open_store


def examples(path: str, model: RunClassifier, text_column: str, label_column: str | None,
             pair_column: str | None) -> list:
    """The file's texts (and labels, and pairs), encoded for the model."""
    table = read_table(path)
    if text_column not in table:
        text_column = "text" if "text" in table else text_column
    missing = [c for c in (text_column, label_column, pair_column) if c is not None and c not in table]
    if missing:
        columns = ", ".join(map(str, table.columns))
        raise UserError(f"{path} has no column {missing[0]!r} (its columns: {columns}); name the right one "
                        "with --text-column / --label-column / --pair-column.")
    labels = list(table[label_column]) if label_column else None
    pairs = list(table[pair_column]) if pair_column else None
    return encoded(model, list(table[text_column]), labels, path, pairs)


def explain_run(run_id: str, path: str, out: Path, tracking_uri: str, columns: dict,
                settings: list[str]) -> list[str]:
    """Explain the texts of `path` with the run's model; write to `out`, log to the run."""
    explainer = preset_explainer(settings)
    with tempfile.TemporaryDirectory() as cache:
        model = run_classifier(run_id, tracking_uri, cache)
    texts = examples(path, model, columns["text"], columns["label"], columns["pair"])
    outcome = explainer.explain(explainer.reader(model.net, model.tokenizer), texts, model.names, out)
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
    parser.add_argument("--pair-column", help="the second text of sentence-pair data")
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
        columns = {"text": args.text_column, "label": args.label_column, "pair": args.pair_column}
        lines = explain_run(args.run, args.input, out, uri, columns, args.settings)
    except (UserError, OSError, MlflowException) as err:
        print(f"Error: {str(err).splitlines()[0]}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
