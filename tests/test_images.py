"""Image-text data: manifests (good and broken), image folders, easy-VQA, the budget and batches."""

from __future__ import annotations

import pytest
import torch
from torchvision.io import write_png

from dataeff.data.multimodal import ImageTextDataModule
from dataeff.data.sources import EasyVQAQuestions, ImageFolder, TextFile
from dataeff.errors import UserError
from tests.conftest import FAST, run_app, runs
from tests.imagedata import write_xor_task


@pytest.fixture
def xor(tmp_path):
    return write_xor_task(tmp_path / "xor", n_train=40, n_test=8, size=16)


def manifest(folder, **kwargs) -> ImageTextDataModule:
    kwargs.setdefault("test", TextFile(str(folder / "test.csv")))
    return ImageTextDataModule("m", TextFile(str(folder / "train.csv")), text_column="text",
                               image_size=16, **kwargs)


class WordTokenizer:
    pad_token_id = 0

    def __call__(self, texts, pairs=None, **_):
        ids = [[1 + len(word) for word in text.split()] for text in texts]
        return {"input_ids": ids, "token_type_ids": [[0] * len(seq) for seq in ids]}


def test_manifest_paths_resolve_next_to_it_and_batches_carry_images(xor):
    data = manifest(xor, batch_size=8)
    tables = data.tables()
    assert len(tables["train"]) + len(tables["val"]) == 40 and len(tables["test"]) == 8
    assert all(path.startswith(str(xor)) for path in tables["train"]["image"])
    data.set_tokenizer(WordTokenizer())
    data.setup()
    batch = next(iter(data.train_dataloader()))
    assert batch["pixel_values"].shape == (8, 3, 16, 16) and batch["pixel_values"].dtype == torch.float32
    assert float(batch["pixel_values"].min()) >= -1.0 and float(batch["pixel_values"].max()) <= 1.0
    assert batch["input_ids"].shape[0] == 8 and set(batch["labels"].tolist()) <= {0, 1}
    assert data.budget()["data.skipped_images"] == 0


def test_missing_column_names_the_columns(xor):
    data = ImageTextDataModule("m", TextFile(str(xor / "train.csv")), text_column="text",
                               image_column="picture")
    with pytest.raises(UserError, match=r"Column 'picture' is not in .* data.image_column="):
        data.tables()


def test_missing_image_is_named_and_skip_mode_counts_it(xor):
    (xor / "images" / "train-3.png").unlink()
    with pytest.raises(UserError, match=r"train-3.png: no such file.*data.on_bad_image=skip"):
        manifest(xor).tables()
    data = manifest(xor, on_bad_image="skip")
    assert len(data.tables()["train"]) + len(data.tables()["val"]) == 39
    assert data.budget()["data.skipped_images"] == 1


def test_unreadable_image_is_named(xor):
    (xor / "images" / "train-5.png").write_bytes(b"this is not a png")
    with pytest.raises(UserError, match=r"train-5.png: not a readable image"):
        manifest(xor).tables()


def test_label_outside_the_label_set(xor):
    test = xor / "test.csv"
    test.write_text(test.read_text().replace(",yes\n", ",maybe\n", 1))
    with pytest.raises(UserError, match="'maybe' in the test data"):
        manifest(xor).tables()


def test_bad_on_bad_image_setting(xor):
    with pytest.raises(UserError, match="data.on_bad_image='ignore'"):
        manifest(xor, on_bad_image="ignore")


def test_image_folder_has_a_class_per_sub_folder(tmp_path):
    for label in ("cat", "dog"):
        (tmp_path / "pets" / label).mkdir(parents=True)
        for i in range(3):
            write_png(torch.zeros(3, 8, 8, dtype=torch.uint8), str(tmp_path / "pets" / label / f"{i}.png"))
    table = ImageFolder(str(tmp_path / "pets")).table()
    assert sorted(table["label"].unique()) == ["cat", "dog"] and len(table) == 6
    data = ImageTextDataModule("f", ImageFolder(str(tmp_path / "pets")), text_column=None, image_size=8)
    assert not data.has_text and data.train_texts() == [] and data.label_names == ["cat", "dog"]


def test_image_only_run_from_a_folder(workdir):
    for label, value in (("dark", 20), ("light", 230)):
        (workdir / "pets" / label).mkdir(parents=True)
        for i in range(8):
            write_png(torch.full((3, 32, 32), value + i, dtype=torch.uint8),
                      str(workdir / "pets" / label / f"{i}.png"))
    assert run_app(*FAST, "task=fusion", "model.modality=image", "data=image_folder",
                   "data.train.path=pets", "vision.config.image_size=32", "data.val_fraction=0.25") == 0
    [run] = runs(workdir, "fusion")
    assert run.info.status == "FINISHED" and run.data.tags["model.modality"] == "image"


def test_text_on_image_only_data_is_a_clear_error(workdir, capsys):
    (workdir / "pets" / "a").mkdir(parents=True)
    (workdir / "pets" / "b").mkdir(parents=True)
    for label in "ab":
        for i in range(3):
            write_png(torch.zeros(3, 32, 32, dtype=torch.uint8), str(workdir / "pets" / label / f"{i}.png"))
    assert run_app(*FAST, "task=fusion", "data=image_folder", "data.train.path=pets",
                   "vision.config.image_size=32") == 1
    assert "use model.modality=image" in capsys.readouterr().err


def test_easy_vqa_questions_come_with_their_images():
    table = EasyVQAQuestions("test").table()
    assert len(table) > 9000 and {"question", "answer", "image"} <= set(table.columns)
    data = ImageTextDataModule("easyvqa", EasyVQAQuestions("train"), test=EasyVQAQuestions("test"),
                               text_column="question", label_column="answer", image_size=64,
                               shots=2)
    tables = data.tables()
    assert len(tables["train"]) == 26 and len(data.label_names) == 13
    assert data.store.stacked().shape == (5000, 3, 64, 64)  # 4,000 train + 1,000 test images, once
