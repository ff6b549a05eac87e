"""Where text comes from: a user's file, or data shipped with a dependency.

Sources are cheap to build (Hydra instantiates them from `data.train` / `data.val`);
they read only when `texts()` (one text column) or `table()` (every column) is called. A data set
of your own is a subclass of `Source`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dataeff.data.readers import read_table
from dataeff.data.rows import column_text
from dataeff.errors import UserError, require_subclass


class Source(ABC):
    """Where one split's rows come from. `path` and `format` name the file read, when there is one:
    messages point at its lines (dataeff.data.rows)."""

    path: str | None = None
    format: str | None = None

    @abstractmethod
    def table(self) -> pd.DataFrame:
        """Every column (labelled data picks its own)."""

    def texts(self) -> list[str]:
        """The texts of an unlabelled corpus (MLM pretraining, unlabelled text for ssl)."""
        raise UserError(f"{self} holds no single text column to pretrain on; use a TextFile source "
                        "(data=text data.train.path=...).")

    @property
    def given(self) -> bool:
        """False for a split left unset (a file source whose path is null)."""
        return True


class FileSource(Source):
    """A source that reads the file or folder at `path`; a null path leaves its split unset."""

    @property
    def given(self) -> bool:
        return self.path is not None


@dataclass
class TextFile(FileSource):
    """One text column of a txt/csv/tsv/jsonl/parquet file or a `save_to_disk` dataset folder."""

    path: str
    column: str = "text"
    format: str | None = None
    split: str = "train"
    encoding: str = "utf-8"

    def texts(self) -> list[str]:
        """The non-empty texts of `column`, in file order."""
        table = self.table()
        if self.column not in table.columns:
            raise UserError(f"Column {self.column!r} is not in {self.path}; its columns are "
                            f"{list(map(str, table.columns))}. Set the column override to one of them, "
                            "e.g. data.train.column=sentence.")
        texts = column_text(table.reset_index(drop=True), self.column, self, "data.train.column")
        return [text for text in texts if text]

    def table(self) -> pd.DataFrame:
        """The whole file, every column (labelled data picks its own columns)."""
        return read_table(self.path, self.format, self.split, self.encoding)

    def __str__(self) -> str:
        return f"{Path(self.path).name}:{self.column}"


@dataclass
class EasyVQAQuestions(Source):
    """The questions of the `easy-vqa` package (real data, MIT, installed with the project)."""

    split: str = "train"

    def texts(self) -> list[str]:
        import easy_vqa

        read = {"train": easy_vqa.get_train_questions, "test": easy_vqa.get_test_questions}
        questions, _answers, _image_ids = read[self.split]()
        return list(questions)

    def table(self) -> pd.DataFrame:
        """Columns `question`, `answer` (13 answers), `image_id` and `image` (the PNG's path)."""
        import easy_vqa

        read = {"train": (easy_vqa.get_train_questions, easy_vqa.get_train_image_paths),
                "test": (easy_vqa.get_test_questions, easy_vqa.get_test_image_paths)}
        questions, answers, image_ids = read[self.split][0]()
        paths = read[self.split][1]()
        return pd.DataFrame({"question": questions, "answer": answers, "image_id": image_ids,
                             "image": [paths[i] for i in image_ids]})

    def __str__(self) -> str:
        return f"easy-vqa:{self.split}"


@dataclass
class EasyVQAImages(Source):
    """easy-VQA's pictures, one row each, labelled (column `answer`) with the `attribute` (shape or
    color) that one of its questions asks for: image-only classification where the answer is in
    the image. A picture no question names it of (about a fifth: asked only yes/no questions) is
    left out. `captioned`: only pictures whose shape and colour are both named, each with a
    `caption` built from them ("a blue circle"), the image-text pairs of task=contrastive."""

    split: str = "train"
    attribute: str = "shape"
    captioned: bool = False

    def table(self) -> pd.DataFrame:
        """Columns `image_id`, `image` (the PNG's path), `answer`, and with `captioned`, `caption`."""
        import easy_vqa

        shapes = {"circle", "rectangle", "triangle"}
        answers = {"shape": shapes, "color": set(easy_vqa.get_answers()) - shapes - {"yes", "no"}}
        if self.attribute not in answers:
            raise UserError(f"data.train.attribute={self.attribute!r} is not one of shape, color.")
        questions = EasyVQAQuestions(self.split).table()
        pictures = questions.drop_duplicates("image_id").set_index("image_id")[["image"]]
        for attribute, values in answers.items():  # what the picture's questions name, if any
            named = questions[questions["answer"].isin(values)].drop_duplicates("image_id")
            pictures[attribute] = named.set_index("image_id")["answer"]
        pictures = pictures.dropna(subset=["shape", "color"] if self.captioned else [self.attribute])
        table = pictures.sort_index().reset_index()
        table["answer"] = table[self.attribute]
        if self.captioned:
            table["caption"] = "a " + table["color"] + " " + table["shape"]
        return table[["image_id", "image", "answer", *(["caption"] if self.captioned else [])]]

    def __str__(self) -> str:
        return f"easy-vqa:{self.split}:{self.attribute}"


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


@dataclass
class ImageFolder(FileSource):
    """Images sorted into one sub-folder per class (torchvision's ImageFolder layout)."""

    path: str

    def table(self) -> pd.DataFrame:
        """Columns `image` (the file's path) and `label` (its sub-folder's name)."""
        root = Path(self.path).expanduser()
        if not root.is_dir():
            raise UserError(f"Image folder {root} does not exist; set data.train.path to a folder "
                            "with one sub-folder of images per class.")
        files = sorted(f for f in root.glob("*/*") if f.suffix.lower() in IMAGE_SUFFIXES)
        return pd.DataFrame({"image": [str(f) for f in files], "label": [f.parent.name for f in files]})

    def __str__(self) -> str:
        return str(self.path)


def given_source(source: Source | None, setting: str) -> Source | None:
    """The source of a split, None when it is left unset (no source, or a file whose path is null)."""
    if source is None:
        return None
    require_subclass(source, Source, setting, "data source", "its table() returns the split's rows.")
    return source if source.given else None
