"""Read text columns from the formats users keep their data in.

Every reader returns a `pandas.DataFrame`; plain text becomes one column, `text`.
Errors name the file, what was wrong, and the override that fixes it.
"""

from __future__ import annotations

import json
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


def read_table(path: str | Path, format: str | None = None, split: str = "train",
               encoding: str = "utf-8") -> pd.DataFrame:
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
        return _READERS[fmt](path, split, encoding)
    except UserError:
        raise
    except LookupError:
        raise UserError(f"encoding={encoding!r} (for {path}) is not an encoding Python knows; use e.g. "
                        "utf-8, latin-1 or cp1252.") from None
    except UnicodeDecodeError as err:
        raise UserError(undecodable(path, encoding, err)) from None
    except Exception as err:  # a parser's own error, reworded with the file and the format
        reason = str(err).strip() or type(err).__name__
        raise UserError(f"Could not read {path} as {fmt}: {reason}. Fix the file, or set format= "
                        f"(e.g. data.train.format=tsv) if the suffix misleads.") from err


def undecodable(path: Path, encoding: str, err: UnicodeDecodeError) -> str:
    """Where the first byte that is not `encoding` sits (its line), and the two ways out."""
    number, byte = None, err.object[err.start:err.start + 1].hex() if err.object else "?"
    with path.open("rb") as file:
        for number, raw in enumerate(file, 1):  # noqa: B007  (the line number is what is wanted)
            try:
                raw.decode(encoding)
            except UnicodeDecodeError as bad:
                byte = raw[bad.start:bad.start + 1].hex()
                break
    where = f"line {number} holds the byte 0x{byte}" if number else f"the byte 0x{byte}"
    return (f"{path} is not {encoding} text: {where}, which {encoding} does not allow. Save the file as "
            f"UTF-8 (e.g. iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}), or say "
            "which encoding it is in, e.g. data.train.encoding=latin-1 (data.val.encoding, "
            "data.test.encoding, data.unlabelled.encoding for those files).")


def _read_txt(path: Path, split: str, encoding: str) -> pd.DataFrame:
    lines = path.read_text(encoding=encoding).splitlines()
    return pd.DataFrame({"text": [line for line in lines if line.strip()]})


def _read_delimited(sep: str):
    def read(path: Path, split: str, encoding: str) -> pd.DataFrame:
        # QUOTE_NONE for tsv: tokenised corpora (SST-2, GLUE) contain bare quote characters
        quoting = 3 if sep == "\t" else 0
        return pd.read_csv(path, sep=sep, quoting=quoting, dtype=str, keep_default_na=False,
                           encoding=encoding)
    return read


def _read_jsonl(path: Path, split: str, encoding: str) -> pd.DataFrame:
    """One JSON object a line, parsed line by line so that a bad one is named by its line."""
    records = []
    with path.open(encoding=encoding) as file:
        for number, text in enumerate(file, 1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as err:
                raise UserError(f"Line {number} of {path} is not JSON ({err.msg} at column {err.colno}); "
                                "a .jsonl file holds one JSON object a line. Fix that line.") from None
            if not isinstance(record, dict):
                kind = type(record).__name__
                raise UserError(f"Line {number} of {path} holds a JSON {kind}, not an object "
                                '({"text": ..., "label": ...}); a .jsonl file holds one object a line.')
            records.append(record)
    return pd.DataFrame.from_records(records)


def _read_parquet(path: Path, split: str, encoding: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def _read_hf(path: Path, split: str, encoding: str) -> pd.DataFrame:
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
