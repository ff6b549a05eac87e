"""Where text comes from: a user's file, or data shipped with a dependency.

Sources are cheap to build (Hydra instantiates them from `data.train` / `data.val`);
they read only when `texts()` is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dataeff.data.readers import read_column


@dataclass
class TextFile:
    """One text column of a txt/csv/tsv/jsonl/parquet file or a `save_to_disk` dataset folder."""

    path: str
    column: str = "text"
    format: str | None = None
    split: str = "train"

    def texts(self) -> list[str]:
        return read_column(self.path, self.column, self.format, self.split)

    def __str__(self) -> str:
        return f"{Path(self.path).name}:{self.column}"


@dataclass
class EasyVQAQuestions:
    """The questions of the `easy-vqa` package (real data, MIT, installed with the project)."""

    split: str = "train"

    def texts(self) -> list[str]:
        import easy_vqa

        read = {"train": easy_vqa.get_train_questions, "test": easy_vqa.get_test_questions}
        questions, _answers, _image_ids = read[self.split]()
        return list(questions)

    def __str__(self) -> str:
        return f"easy-vqa:{self.split}"
