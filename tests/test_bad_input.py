"""Every bad input a user can give: one paragraph naming the fix, no traceback, no FINISHED run.

One row per case: (overrides, message fragment, what the store holds afterwards: no run at all
when the mistake is found before one is created, else one FAILED run). A new case is one line.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing

import pytest
from PIL import Image

from tests.conftest import FAST, run_app, runs
from tests.imagedata import write_png_claiming

LABELLED = ["task=classify", "data=labelled", "data.train.path=train.tsv", "data.text_column=sentence"]
NO_RUN, FAILED = [], ["FAILED"]

CASES = {
    "missing file": (["data=text", "data.train.path=missing.txt"], "missing.txt does not exist", FAILED),
    "empty corpus": (["data=text", "data.train.path=empty.txt"], "has no non-empty text", FAILED),
    "missing column": (["data=text", "data.train.path=table.csv"], "Column 'text' is not in", FAILED),
    "mask_prob 1.5": (["task.mask_prob=1.5"], "task.mask_prob=1.5 is outside (0, 1)", NO_RUN),
    "mask_ratio 1": (["task=mim", "task.mask_ratio=1.0"], "task.mask_ratio=1.0 is outside (0, 1): it is the "
                     "share of image patches masked", NO_RUN),
    "a nested group typed with a dot": (["task=fusion", "vision.init=mim"],
                                        "vision/init is a config group, chosen with a slash", NO_RUN),
    "missing checkpoint": (["ckpt_path=nowhere.ckpt"], "nowhere.ckpt does not exist", NO_RUN),
    "zero steps": (["trainer.max_steps=0"], "trains nothing", NO_RUN),
    "zero epochs": (["trainer.max_steps=-1", "trainer.max_epochs=0"], "trains nothing", NO_RUN),
    "no budget at all": (["trainer.max_steps=-1", "trainer.max_epochs=-1"], "never stops", NO_RUN),
    "zero max_length": (["data.max_length=0"], "data.max_length=0 leaves no room", NO_RUN),
    "max_length past the positions": (["data.max_length=600"], "longer than the model's 512", NO_RUN),
    "zero batch": (["data.batch_size=0"], "data.batch_size=0 is not a batch size", NO_RUN),
    "workers not a count": (["data.num_workers=many"], "data.num_workers='many' is not a number", NO_RUN),
    "negative workers": (["data.num_workers=-1"], "data.num_workers=-1 is not a number", NO_RUN),
    "seed not a number": (["seed=abc"], "seed='abc' is not an integer", NO_RUN),
    "hidden size vs heads": (["model.config.hidden_size=65"], "hidden_size=65 cannot be split", NO_RUN),
    "no heads": (["model.config.num_attention_heads=0"], "num_attention_heads=0 must be a positive",
                 NO_RUN),
    "bogus precision": (["trainer.precision=bogus"], "trainer.precision=bogus is not a precision", NO_RUN),
    "gpu without one": (["trainer=gpu"], "PyTorch finds none", NO_RUN),
    "labelled data without a file": (["task=classify", "data=labelled"], "data.train.path must be set",
                                     NO_RUN),
    "fraction and shots": (["task=classify", "data=easyvqa_answers", "data.fraction=0.5", "data.shots=2"],
                           "both set the label budget", NO_RUN),
    "data of another kind": (["data._target_=tests.own_modules.PlainDataModule"],
                             "fits if it subclasses dataeff.data.text.TextDataModule", NO_RUN),
    "own data of the wrong kind": ([*LABELLED, "data._target_=tests.own_modules.MyImages"],
                                   "holds labelled images with text", NO_RUN),
    "data of no module": (["data._target_=nowhere.Data"], "data._target_=nowhere.Data cannot be imported",
                          NO_RUN),
    "a task of your own, data of another kind": (["task.name=mine", "study=mlm",
                                                  "data._target_=tests.own_modules.PlainDataModule"],
                                                 "which is no dataeff DataModule", NO_RUN),
    "mask_prob 0": (["task.mask_prob=0"], "task.mask_prob=0 is outside (0, 1)", NO_RUN),
    "vocabulary too small": (["tokenizer.vocab_size=3"], "tokenizer.vocab_size=3 is smaller", FAILED),
    "rows without a label": ([*LABELLED], "Line 3 of train.tsv (row 2 after the header) has no 'label'",
                             FAILED),
    "val interval past an epoch": (["trainer.val_check_interval=1.5"], "trainer.val_check_interval=1.5 is "
                                   "neither a share of an epoch", NO_RUN),
    "val interval 0": (["trainer.val_check_interval=0"], "trainer.val_check_interval=0 is neither", NO_RUN),
    "no training batches": (["+trainer.limit_train_batches=0"], "limit_train_batches=0 is neither", NO_RUN),
    "accumulate over 0 batches": (["+trainer.accumulate_grad_batches=0"], "is not a count", NO_RUN),
    "negative vocabulary": (["tokenizer.vocab_size=-5"], "tokenizer.vocab_size=-5 is not a count", NO_RUN),
    "a monitor no task logs": (["callbacks.model_checkpoint.monitor=val/nothing"],
                               "Lightning refuses these settings: `ModelCheckpoint(monitor='val/nothing')`",
                               FAILED),
    "a folder as the store": (["logger.mlflow.tracking_uri=sqlite:///pets"], "pets is a folder, not a file",
                              NO_RUN),
    "artifacts under a file": (["logger.mlflow.artifact_location=afile/artifacts"],
                               "The run's artifacts cannot be written", FAILED),
    "active learning on mlm": (["al=margin"], "use it with task=classify", NO_RUN),
    "active learning past the pool": ([*LABELLED, "data.on_bad_row=skip", "al=margin", "al.rounds=3"],
                                      "the pool (the training file) has 22", NO_RUN),
    "k-means start from scratch": ([*LABELLED, "data.on_bad_row=skip", "al=margin", "al.initial=kmeans",
                                    "al.initial_size=4", "al.query_size=2"], "al.initial=kmeans", NO_RUN),
    "unknown strategy": ([*LABELLED, "al=margin", "al.strategy=psychic"], "al.strategy=psychic", NO_RUN),
    # numbers out of range, wherever they sit (dataeff.checks.values)
    "negative learning rate": (["task.optimizer.lr=-1e-3"], "task.optimizer.lr=-0.001 is not a learning rate",
                               NO_RUN),
    "nan learning rate": (["task.optimizer.lr=nan"], "task.optimizer.lr=nan is not a learning rate", NO_RUN),
    "negative rate for one init": ([*LABELLED, "+lr_by_init={scratch: -1}"], "lr_by_init.scratch=-1", NO_RUN),
    "a tuned rate below zero": ([*LABELLED, "tune=lr", "tune.values=[1e-3,-1e-3]"],
                                "task.optimizer.lr=-0.001 is not a learning rate", NO_RUN),
    "negative seed": (["seed=-1"], "seed=-1 is out of range", NO_RUN),
    "seed past 32 bits": (["data.split_seed=4294967296"], "data.split_seed=4294967296 is out of range",
                          NO_RUN),
    "negative weight decay": (["task.optimizer.weight_decay=-0.1"], "is not a weight decay", NO_RUN),
    "dropout above 1": (["model.config.hidden_dropout_prob=1.5"], "must be in [0, 1]", NO_RUN),
    "fraction above 1": ([*LABELLED, "data.fraction=1.5"], "data.fraction=1.5 is a share", NO_RUN),
    "zero shots": ([*LABELLED, "data.shots=0"], "data.shots=0 is not a number of labelled", NO_RUN),
    "validation share of 1": (["data.val_fraction=1"], "data.val_fraction=1 is a share", NO_RUN),
    "a profiler that records nothing": (["profiler=pytorch", "trainer.profiler.schedule.active=0"],
                                        "trainer.profiler.schedule.active=0 is not a number of training "
                                        "steps for the profiler to record", NO_RUN),
    "unknown val_size": ([*LABELLED, "data.val_size=half"], "data.val_size='half' is not one of", NO_RUN),
    "unknown bad-row policy": ([*LABELLED, "data.on_bad_row=ignore"], "data.on_bad_row='ignore'", NO_RUN),
    # settings no constructor takes (dataeff.checks.targets)
    "unknown Trainer argument": (["+trainer.max_step=10"], "did you mean trainer.max_steps?", NO_RUN),
    "unknown optimizer argument": (["+task.optimizer.beta=0.9"], "task.optimizer.beta is not a setting of "
                                   "torch.optim.AdamW", NO_RUN),
    "unknown callback argument": (["+callbacks.model_checkpoint.keep=2"], "callbacks.model_checkpoint.keep",
                                  NO_RUN),
    "a classifier without labels": (["task=classify", "data.label_column=null"],
                                    "learns labels, and data.label_column=null names none", NO_RUN),
    # image-text data hands its table settings on to the labelled data it extends: checked too
    "misspelt image data setting": (["task=fusion", "+data.fractoin=0.5"], "did you mean data.fraction?",
                                    NO_RUN),
    "image text data without ssl": (["task=fusion", "+data.ssl.ratio=2"], "data.ssl is not a setting",
                                    NO_RUN),
    # data that reads but is not what it seems (found in the data: the run ends FAILED)
    "latin-1 table": ([*LABELLED, "data.train.path=latin.tsv"],
                      "latin.tsv is not utf-8 text: line 3 holds the byte 0xe9", FAILED),
    "an encoding Python lacks": ([*LABELLED, "data.train.encoding=klingon"], "'klingon' (for", FAILED),
    "NaN as a label": ([*LABELLED, "data.train.path=nan.tsv"], "has no 'label' (it holds 'NaN', which marks",
                       FAILED),
    "null as a text": ([*LABELLED, "data.train.path=null.tsv"], "has no 'sentence' (it holds 'null'", FAILED),
    "a list in a cell": ([*LABELLED, "data.train.path=nested.jsonl"], "Line 2 of nested.jsonl holds list "
                         "['good', 'film'] in column 'sentence'", FAILED),
    "an object as a text": (["data=text", "data.train.path=nested.jsonl", "data.train.column=sentence"],
                            "holds list", FAILED),
    "a fraction as a label": ([*LABELLED, "data.train.path=scores.jsonl"], "has the label 0.73, a number "
                              "between classes", FAILED),
    "one class": ([*LABELLED, "data.train.path=one_class.tsv"], "has one class in column 'label' ('1' on all",
                  FAILED),
    "a line that is not JSON": ([*LABELLED, "data.train.path=broken.jsonl"],
                                "Line 3 of broken.jsonl is not JSON", FAILED),
    "a decompression bomb": (["task=fusion", "model.modality=image", "data=image_folder",
                              "data.train.path=pets", "vision.config.image_size=32"],
                             "too large (20000 x 20000 = 400,000,000 pixels", FAILED),
    "a store of random bytes": (["logger.mlflow.tracking_uri=sqlite:///random.db"],
                                "random.db is not an SQLite database", NO_RUN),
    "another program's database as the store": (["logger.mlflow.tracking_uri=sqlite:///app.db"],
                                                "is another program's SQLite database (its tables: orders)",
                                                NO_RUN),
    "a semicolon-separated csv": ([*LABELLED, "data.train.path=semicolons.csv"],
                                  "split by ';': a .csv is read with commas", FAILED),
    "out of memory mid-training": (["+callbacks.fault._target_=tests.faults.OutOfMemoryAt"],
                                   "The job ran out of GPU memory (CUDA out of memory.", FAILED),
    "outputs under a file": (["paths.root_dir=afile/sub"], "output folder", NO_RUN),
    "store under a file": (["paths.root_dir=.", "logger.mlflow.tracking_uri=sqlite:///afile/mlflow.db"],
                           "cannot be opened or created", NO_RUN),
    "a recipe that is none": (["recipe=nowhere.run"], "recipe=nowhere.run is no workflow the app can run",
                              NO_RUN),
    "a task that is no dataeff task": (["task._target_=tests.own_modules.PlainTask"],
                                       "which is no dataeff task. Subclass dataeff.tasks.base.Task", FAILED),
    "a source that is no source": ([*LABELLED, "data.train._target_=tests.own_modules.CsvRows"],
                                   "data.train makes a tests.own_modules.CsvRows, which is no data source",
                                   NO_RUN),
    "a text step that is no augmenter": ([*LABELLED, "augment=eda",
                                          "+augment.text.shout._target_=tests.own_modules.Shout"],
                                         "augment.text.shout makes a tests.own_modules.Shout", NO_RUN),
}


@pytest.mark.parametrize(("overrides", "message", "statuses"), CASES.values(), ids=CASES.keys())
def test_bad_input(workdir, capsys, overrides, message, statuses):
    (workdir / "train.tsv").write_text("sentence\tlabel\ngood film\t1\nno label here\t\nbad film\t0\n"
                                       + "".join(f"film {i}\t{i % 2}\n" for i in range(20)))
    (workdir / "afile").write_text("a file, not a folder")
    (workdir / "empty.txt").write_text("\n \n")
    (workdir / "table.csv").write_text("sentence,label\nhello there,1\n")
    write_bad_data(workdir)
    stores = {name: (workdir / name).read_bytes() for name in ("random.db", "app.db")}
    assert run_app(*FAST, *overrides) == 1
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and "Error in call to target" not in err
    experiment = next((o.split("=")[1] for o in overrides if o.startswith("task=")), "mlm")
    for store in ("random.db", "app.db"):  # a store that is not MLflow's is left as it was
        assert (workdir / store).read_bytes() == stores[store]
    assert [r.info.status for r in runs(workdir, experiment)] == statuses


def write_bad_data(folder) -> None:
    """Files that read without an error and are still not what they seem."""
    films = "".join(f"film {i}\t{i % 2}\n" for i in range(20))
    latin = "sentence\tlabel\ngood\t1\ncafé crème\t0\n" + films
    (folder / "latin.tsv").write_bytes(latin.encode("latin-1"))
    (folder / "nan.tsv").write_text("sentence\tlabel\ngood film\t1\nodd film\tNaN\n" + films)
    (folder / "null.tsv").write_text("sentence\tlabel\nnull\t1\n" + films)
    (folder / "one_class.tsv").write_text("sentence\tlabel\n" + "".join(f"film {i}\t1\n" for i in range(20)))
    rows = [{"sentence": f"film {i}", "label": i % 2} for i in range(20)]
    write_jsonl(folder / "nested.jsonl", [rows[0], {"sentence": ["good", "film"], "label": 1}, *rows])
    write_jsonl(folder / "scores.jsonl", [*rows, {"sentence": "fine", "label": 0.73}])
    (folder / "broken.jsonl").write_text('{"sentence": "a", "label": 1}\n\n{"sentence": "b", label: 0}\n')
    for label in ("dark", "light"):
        (folder / "pets" / label).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (32, 32), (40 * i, 0, 0)).save(folder / "pets" / label / f"{i}.png")
    write_png_claiming(folder / "pets" / "dark" / "bomb.png", 20_000, 20_000)
    (folder / "random.db").write_bytes(bytes(range(256)) * 64)
    semicolons = "".join(f"film {i};{i % 2}\n" for i in range(20))
    (folder / "semicolons.csv").write_text("sentence;label\n" + semicolons)
    with closing(sqlite3.connect(folder / "app.db")) as db, db:
        db.execute("CREATE TABLE orders (id INTEGER, item TEXT)")


def write_jsonl(path, records) -> None:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_rows_without_a_label_can_be_skipped_and_counted(workdir):
    (workdir / "train.tsv").write_text("sentence\tlabel\nno label here\t\n"
                                       + "".join(f"film {i}\t{i % 2}\n" for i in range(20)))
    assert run_app(*FAST, *LABELLED, "data.on_bad_row=skip") == 0
    [run] = runs(workdir, "classify")
    assert run.info.status == "FINISHED" and run.data.tags["data.skipped_rows"] == "1"
