"""`dataeff-select`: which of your unlabelled texts to label next, by a model a dataeff run trained.

    dataeff-select --run <run id> --input unlabelled.txt --k 100 --out to_label.csv
    dataeff-select --model outputs/.../hf_model --input pool.csv --column sentence --strategy badge

The CSV lists the k texts the strategy picks, best first, with the model's guess and the score,
and an empty `label` column: fill it in and train on it (data=labelled data.train.path=...), or
append it to your labelled file. `--labelled` gives core-set the texts already labelled, so that
it picks far from them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from dataeff.active.acquisition import NEEDS, STRATEGIES, choose
from dataeff.active.scoring import Scorer
from dataeff.data.readers import read_table
from dataeff.data.sources import TextFile
from dataeff.errors import UserError
from dataeff.models.vectors import Texts
from dataeff.runs.artifacts import fetch_run_model
from dataeff.runs.store import default_tracking_uri, open_store


def select(model: str | Path, texts: pd.Series, strategy: str, k: int, labelled: list[str] = (),
           seed: int = 0, max_length: int = 128, mc_samples: int = 10) -> pd.DataFrame:
    """The k of `texts` (indexed by their row in the input) to label next: row, text, guess,
    confidence, score, rank and an empty label column."""
    scorer = Scorer(model, max_length)
    # the model's guess is printed for every strategy, random included
    view = scorer.view(Texts(texts.tolist()), Texts(list(labelled)), NEEDS[strategy] | {"probs"}, mc_samples)
    picks, scores = choose(strategy, view, k, seed)
    confidence, guess = view.probs[picks].max(-1)
    return pd.DataFrame({"row": texts.index[picks], "text": texts.iloc[picks].tolist(),
                         "guess": [scorer.labels[int(g)] for g in guess],
                         "confidence": confidence.numpy().round(4), "score": scores,
                         "rank": range(1, len(picks) + 1), "label": ""})


def unlabelled(path: str, column: str) -> pd.Series:
    """The non-empty texts of the input, indexed by their row (0-based, a header not counted)."""
    table = read_table(path)
    if column not in table.columns:
        names = list(map(str, table.columns))
        raise UserError(f"Column {column!r} is not in {path}; its columns are {names}. Name the text "
                        "column with --column.")
    texts = table[column].dropna().astype(str).str.strip()
    return texts[texts != ""]


def model_of(args) -> Path:
    if args.model:
        return Path(args.model)
    uri = open_store(args.tracking_uri or default_tracking_uri())
    return fetch_run_model(args.run, uri, args.cache_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dataeff-select", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="an MLflow run id of a classify job (its hf_model/ is used)")
    source.add_argument("--model", help="an hf_model/ folder a classify job exported")
    parser.add_argument("--input", required=True, help="unlabelled texts: txt (a line each), csv, tsv, jsonl")
    parser.add_argument("--column", default="text", help="the text column of a table (default: text)")
    parser.add_argument("--strategy", default="margin", choices=sorted(STRATEGIES))
    parser.add_argument("--k", type=int, default=100, help="how many to label (default 100)")
    parser.add_argument("--labelled", help="texts already labelled (same --column), for coreset")
    parser.add_argument("--out", default="to_label.csv")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--tracking-uri", default=None, help="the store of --run (default: as dataeff-train)")
    parser.add_argument("--cache-dir", default=".cache", help="where --run's model is downloaded")
    args = parser.parse_args(argv)
    if args.k < 1:
        parser.error(f"--k {args.k}: ask for at least one text to label")
    try:
        texts = unlabelled(args.input, args.column)
        labelled = TextFile(args.labelled, args.column).texts() if args.labelled else []
        texts = texts[~texts.isin(set(labelled))]  # what is labelled already is never asked again
        table = select(model_of(args), texts, args.strategy, args.k, labelled, args.seed, args.max_length)
    except UserError as err:
        print(f"\nError: {err}", file=sys.stderr)
        sys.exit(1)
    table.to_csv(args.out, index=False)
    print(f"{len(table)} of {len(texts)} texts to label, by {args.strategy}, best first: {args.out}")


if __name__ == "__main__":
    main()
