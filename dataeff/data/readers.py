"""Read text columns from the formats users keep their data in.

Every reader returns a `pandas.DataFrame`; plain text becomes one column, `text`.
Errors name the file, what was wrong, and the override that fixes it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dataeff.errors import UserError

TABLE_FORMATS = ("txt", "csv", "tsv", "jsonl", "parquet", "hf")
_SUFFIXES = {".txt": "txt", ".text": "txt", ".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl",
             ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet"}


def infer_format(path: Path) -> str:
    """The format of `path` from its suffix; a directory is a dataset saved with `save_to_disk`."""
    if path.is_dir():
        return "hf"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise UserError(
            f"Cannot tell the format of {path} from its suffix; set format= to one of "
            f"{', '.join(TABLE_FORMATS)} (e.g. data.train.format=csv)."
        )
    return fmt


def read_table(path: str | Path, format: str | None = None, split: str = "train") -> pd.DataFrame:
    """Read a whole file (or a `save_to_disk` dataset folder) into a DataFrame."""
    path = Path(path).expanduser()
    if not path.exists():
        raise UserError(
            f"Data file {path} does not exist (resolved from the working directory {Path.cwd()}); "
            "fix the path override, e.g. data.train.path=/abs/path/to/train.csv."
        )
    fmt = format or infer_format(path)
    if fmt not in TABLE_FORMATS:
        raise UserError(f"Unknown data format {fmt!r} for {path}; use one of {', '.join(TABLE_FORMATS)}.")
    try:
        return _READERS[fmt](path, split)
    except UserError:
        raise
    except Exception as err:  # a parser's own error, reworded with the file and the format
        raise UserError(f"Could not read {path} as {fmt}: {err}. Check the file or set format=.") from err


def read_column(path: str | Path, column: str, format: str | None = None,
                split: str = "train") -> list[str]:
    """The non-empty strings of one column, in file order."""
    table = read_table(path, format, split)
    if column not in table.columns:
        raise UserError(
            f"Column {column!r} is not in {path}; its columns are {list(map(str, table.columns))}. "
            "Set the column override to one of them, e.g. data.train.column=sentence."
        )
    texts = [str(t).strip() for t in table[column].dropna()]
    return [t for t in texts if t]


def _read_txt(path: Path, split: str) -> pd.DataFrame:
    lines = path.read_text(encoding="utf-8").splitlines()
    return pd.DataFrame({"text": [line for line in lines if line.strip()]})


def _read_delimited(sep: str):
    def read(path: Path, split: str) -> pd.DataFrame:
        # QUOTE_NONE for tsv: tokenised corpora (SST-2, GLUE) contain bare quote characters
        quoting = 3 if sep == "\t" else 0
        return pd.read_csv(path, sep=sep, quoting=quoting, dtype=str, keep_default_na=False,
                           encoding="utf-8")
    return read


def _read_jsonl(path: Path, split: str) -> pd.DataFrame:
    return pd.read_json(path, lines=True, dtype=False)


def _read_parquet(path: Path, split: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_hf(path: Path, split: str) -> pd.DataFrame:
    """A Hugging Face `Dataset` or `DatasetDict` saved with `save_to_disk`."""
    from datasets import DatasetDict, load_from_disk

    dataset = load_from_disk(str(path))
    if isinstance(dataset, DatasetDict):
        if split not in dataset:
            raise UserError(
                f"Split {split!r} is not in the dataset at {path}; its splits are "
                f"{list(dataset)}. Set the split override, e.g. data.train.split={next(iter(dataset))}."
            )
        dataset = dataset[split]
    return dataset.to_pandas()


_READERS = {"txt": _read_txt, "csv": _read_delimited(","), "tsv": _read_delimited("\t"),
            "jsonl": _read_jsonl, "parquet": _read_parquet, "hf": _read_hf}
