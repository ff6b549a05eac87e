"""Image-text data: manifests (good and broken), image folders, easy-VQA, the budget and batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import write_png

from dataeff.data.images import ImageStore, decode_rgb8
from dataeff.data.multimodal import ImageTextDataModule
from dataeff.data.sources import EasyVQAQuestions, ImageFolder, TextFile
from dataeff.errors import UserError
from tests.conftest import FAST, run_app, runs
from tests.imagedata import write_png16, write_png_claiming, write_xor_task


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


PIXELS = np.random.default_rng(0).integers(0, 256, (12, 20, 3), dtype=np.uint8)


def saved(path, mode: str, **kwargs):
    """PIXELS in a file of another depth or mode, as cameras, scanners and editors write them."""
    Image.fromarray(PIXELS).convert(mode).save(path, **kwargs)
    return path


@pytest.mark.parametrize(("name", "write", "tolerance"), [
    ("rgb.png", lambda p: saved(p, "RGB"), 0),
    ("rgb16.png", lambda p: write_png16(p, PIXELS.astype(np.uint16) * 257), 0),
    ("alpha.png", lambda p: saved(p, "RGBA"), 0),
    ("rgb.bmp", lambda p: saved(p, "RGB"), 0),
    ("rgb.tif", lambda p: saved(p, "RGB"), 0),
    ("cmyk.jpg", lambda p: saved(p, "CMYK", quality=100), 40),
    ("rgb.webp", lambda p: saved(p, "RGB", lossless=True), 0),
    ("frames.gif", lambda p: saved(p, "RGB", save_all=True, append_images=[Image.new("RGB", (20, 12))]), 128),
])
def test_every_depth_and_mode_decodes_to_8_bit_rgb(tmp_path, name, write, tolerance):
    image = decode_rgb8(str(write(tmp_path / name)))
    assert image.dtype == torch.uint8 and image.shape == (3, 12, 20)
    error = (image.permute(1, 2, 0).int() - torch.from_numpy(PIXELS).int()).abs()
    assert error.float().mean() <= tolerance / 4 and error.max() <= tolerance


@pytest.mark.parametrize("mode", ["L", "P", "LA", "1"])
def test_grey_and_palette_images_become_three_equal_or_mapped_channels(tmp_path, mode):
    path = saved(tmp_path / f"{mode}.png", mode)
    image = decode_rgb8(str(path))
    expected = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (3, 12, 20) and torch.equal(image.permute(1, 2, 0), torch.from_numpy(expected))


def test_a_16_bit_grey_tiff_is_scaled_not_clipped(tmp_path):
    path = tmp_path / "grey16.tif"
    Image.fromarray(PIXELS[..., 0].astype(np.uint16) * 257).save(path)  # Pillow mode I;16
    image = decode_rgb8(str(path))
    assert torch.equal(image[0], torch.from_numpy(PIXELS[..., 0])) and torch.equal(image[0], image[2])


def test_an_image_past_the_pixel_limit_is_refused_from_its_header(tmp_path):
    bomb = write_png_claiming(tmp_path / "bomb.png", 20_000, 20_000)
    store = ImageStore(8)
    with pytest.raises(UserError, match=r"bomb.png: too large \(20000 x 20000 = 400,000,000 pixels, "
                       r"more than data.max_image_pixels=89,478,485"):
        store.add([str(bomb)], "train")
    small = saved(tmp_path / "small.png", "RGB")
    assert ImageStore(8, "skip", max_pixels=239).add([str(small)], "train") == [False]
    assert ImageStore(8, "skip", max_pixels=240).add([str(small)], "train") == [True]


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
    assert "add fusion=image_only (or model.modality=image)" in capsys.readouterr().err
    assert runs(workdir, "fusion") == []  # refused before any run


def test_easy_vqa_questions_come_with_their_images():
    table = EasyVQAQuestions("test").table()
    assert len(table) > 9000 and {"question", "answer", "image"} <= set(table.columns)
    data = ImageTextDataModule("easyvqa", EasyVQAQuestions("train"), test=EasyVQAQuestions("test"),
                               text_column="question", label_column="answer", image_size=64,
                               shots=2)
    tables = data.tables()
    assert len(tables["train"]) == 26 and len(data.label_names) == 13
    assert data.store.stacked().shape == (5000, 3, 64, 64)  # 4,000 train + 1,000 test images, once
