"""Settings checked before anything is built or logged: a wrong value gets one paragraph that
names the fix, and no MLflow run is created for it. Checks that need the data (vocabulary,
label rows) live where the data is read."""

from __future__ import annotations

import importlib
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from dataeff.checks.command_line import CONFIG_DIR, nested_group_typed_as_value
from dataeff.checks.explain import check_explain
from dataeff.checks.targets import check_targets
from dataeff.checks.values import check_values
from dataeff.errors import UserError
from dataeff.models.pooling import pooling_of
from dataeff.runs.footprint import KEEP

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed", "bf16-true", "16-true", "64-true", "transformer-engine",
              "transformer-engine-float16", "32", "16", "bf16", "64", 32, 16, 64)  # Lightning's list
CLASSIFIERS = ("classify", "linear_probe", "setfit", "tfidf_lr", "fusion")  # tasks that learn labels
MIN_LENGTH = 4  # [CLS] + [SEP] + room for text
DATA_KINDS = {  # datamodule -> what it holds
    "dataeff.data.text.TextDataModule": "unlabelled text",
    "dataeff.data.labelled.LabelledTextDataModule": "labelled text",
    "dataeff.data.multimodal.ImageTextDataModule": "labelled images with text",
}
TASK_DATA = {"mlm": "dataeff.data.text.TextDataModule",  # task.name -> the datamodule it trains on
             "classify": "dataeff.data.labelled.LabelledTextDataModule",
             "linear_probe": "dataeff.data.labelled.LabelledTextDataModule",
             "setfit": "dataeff.data.labelled.LabelledTextDataModule",
             "tfidf_lr": "dataeff.data.labelled.LabelledTextDataModule",
             "fusion": "dataeff.data.multimodal.ImageTextDataModule",
             "mim": "dataeff.data.multimodal.ImageTextDataModule",
             "contrastive": "dataeff.data.multimodal.ImageTextDataModule"}


def check_settings(cfg: DictConfig) -> None:
    for check in (check_nested_groups, check_data_fits_task, check_labels_named, check_modality, check_pairs,
                  check_pretraining, check_missing, check_values, check_budget, check_batches,
                  check_label_budget, check_model, check_trainer, check_keep_checkpoints,
                  check_semi_supervised, check_subruns, check_explain, check_targets):
        check(cfg)


def check_subruns(cfg: DictConfig) -> None:
    subruns = cfg.get("subruns", "process")
    if subruns not in ("process", "in_process"):
        raise UserError(f"subruns={subruns!r} is neither process (each run a job needs first, in its own "
                        "process) nor in_process (in the job's process: quicker, for tests and debugging).")


def check_keep_checkpoints(cfg: DictConfig) -> None:
    keep = cfg.get("keep_checkpoints", "none")
    if keep not in KEEP:
        raise UserError(f"keep_checkpoints={keep!r} is not one of {', '.join(KEEP)}: none keeps hf_model/ "
                        "only, last also last.ckpt (to train on with ckpt_path=), all every .ckpt.")


def check_semi_supervised(cfg: DictConfig) -> None:
    ssl = cfg.get("ssl")
    if not ssl or ssl.get("objective") is None:
        return
    if cfg.task.get("name") != "classify" or "unlabelled" not in cfg.data:
        raise UserError(f"ssl={ssl.name} teaches a text classifier with unlabelled text beside its labels: "
                        "use it with task=classify and labelled text (data=labelled or data=sst2).")
    if not OmegaConf.select(cfg, "data.unlabelled.path"):
        raise UserError(f"ssl={ssl.name} needs unlabelled text: set data.unlabelled.path=<file> (a .txt with "
                        "one text a line, or a table with data.unlabelled.column=<its text column>).")
    if not (isinstance(ssl.ratio, int) and ssl.ratio >= 1):
        raise UserError(f"ssl.ratio={ssl.ratio} is not a number of unlabelled examples per labelled one; "
                        "use e.g. ssl.ratio=3.")


def check_labels_named(cfg: DictConfig) -> None:
    """A classifier learns labels: `data.label_column=null` (images or text alone) suits task=mim."""
    if cfg.task.get("name") in CLASSIFIERS and "label_column" in cfg.data and (
            cfg.data.label_column is None):
        raise UserError(f"task={cfg.task.name} learns labels, and data.label_column=null names none; set "
                        "data.label_column=<the label column> (task=mim pretrains on images without labels).")


def check_modality(cfg: DictConfig) -> None:
    """task=fusion reads text unless it learns from the image alone; images without text (an image
    folder, easyvqa_shapes) would fail once the model is built, a FAILED run."""
    if cfg.task.get("name") == "fusion" and cfg.data.get("text_column", "") is None and (
            OmegaConf.select(cfg, "model.modality") != "image"):
        raise UserError(f"data={cfg.data.get('name')} has no text (data.text_column=null), and task=fusion "
                        "reads text unless it learns from the image alone: add fusion=image_only (or "
                        "model.modality=image), or set data.text_column.")


def check_nested_groups(cfg: DictConfig) -> None:
    """A nested group (vision/init) set like a value (vision.init=mim) leaves a string where the
    group's node goes; the command line's check says so for dataeff-train, this for the app."""
    for folder in sorted(CONFIG_DIR.glob("*/*/")):
        key = ".".join(folder.relative_to(CONFIG_DIR).parts)
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if isinstance(value, str):
            raise UserError(f"{key}={value}: {nested_group_typed_as_value(key, value)}")


def check_pairs(cfg: DictConfig) -> None:
    """task=contrastive learns from image-text pairs, each batch's others its negatives."""
    if cfg.task.get("name") != "contrastive":
        return
    if cfg.data.get("text_column", "") is None:
        raise UserError(f"task=contrastive pairs each image with its text, and data={cfg.data.get('name')} "
                        "names no text column (data.text_column=null); set data.text_column=<the caption "
                        "column>, or use data=easyvqa_captions.")
    size = cfg.data.get("batch_size", 2)
    if isinstance(size, int) and size < 2:  # not a number at all: check_batches says so
        raise UserError(f"data.batch_size={size}: InfoNCE contrasts each image-text pair with the other "
                        "pairs of its batch, and a batch of one has none; use 2 or more (CLIP's batches "
                        "hold thousands; on a CPU, 64-256).")
    prompt = str(cfg.task.get("prompt", "{}"))
    try:
        filled = prompt.format("circle")
    except (IndexError, KeyError, ValueError):
        filled = prompt
    if filled == prompt or "circle" not in filled:
        raise UserError(f"task.prompt={prompt!r} is not a template with one {{}} where the label goes (zero-"
                        "shot classification writes each label into it); use e.g. task.prompt='a photo of "
                        "a {}'.")


def check_data_fits_task(cfg: DictConfig) -> None:
    """Each task brings the data it fits (conf/task/*.yaml); a `data=` of another kind would fail
    deep inside the model, so name the options that fit."""
    wanted, given = TASK_DATA.get(cfg.task.get("name")), cfg.data.get("_target_")
    if wanted is None or given is None:
        return
    kind = given if given in DATA_KINDS else dataeff_kind(given)
    if kind == wanted:
        return
    fitting = sorted(path.stem for path in (CONFIG_DIR / "data").glob("*.yaml")
                     if data_target(path) == wanted)
    raise UserError(f"task={cfg.task.name} trains on {DATA_KINDS[wanted]}, and data={cfg.data.get('name')} "
                    f"holds {DATA_KINDS.get(kind, given)}; use data={' | '.join(fitting)}, or leave data= "
                    f"out for the task's default. A DataModule of your own fits if it subclasses {wanted}.")


def dataeff_kind(target: str) -> str | None:
    """The DataModule of dataeff's that a user's own class (`data._target_`) extends, the nearest
    in its ancestry; None for none. Only such a target is imported here: dataeff's own are told
    apart by name, without importing Lightning."""
    given = load_class(target)
    names = (f"{cls.__module__}.{cls.__qualname__}" for cls in getattr(given, "__mro__", ()))
    return next((name for name in names if name in DATA_KINDS), None)


def load_class(target: str):
    module, _, name = target.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except Exception as err:  # the user's module may fail in any way while it is imported
        raise UserError(f"data._target_={target} cannot be imported ({type(err).__name__}: {err}). Name a "
                        "class as package.module.Class, its package installed or on PYTHONPATH.") from None


def data_target(path: Path) -> str | None:
    """The datamodule a data config builds, following its defaults within the group (sst2 -> labelled)."""
    node = OmegaConf.load(path)
    if "_target_" in node:
        return node._target_
    parents = [entry for entry in node.get("defaults", []) if isinstance(entry, str) and entry != "_self_"]
    return data_target(path.with_name(f"{parents[0]}.yaml")) if parents else None


def check_pretraining(cfg: DictConfig) -> None:
    """Before check_missing, which would meet a pretraining override that cannot be filled in."""
    if cfg.init.get("kind") == "pretrain":
        pretraining_overrides(cfg)


def pretraining_overrides(cfg) -> list[str] | None:
    """`init.pretrain` as strings, its interpolations (the data's files, init.corpus) filled in."""
    name = cfg.init.get("name")
    try:
        pretrain = OmegaConf.select(cfg, "init.pretrain")
        overrides = [str(item) for item in pretrain] if pretrain else None
    except OmegaConfBaseException as err:
        reason = str(err).splitlines()[0]
        raise UserError(f"init={name} pretrains on what its overrides name, and one of them cannot be "
                        f"filled in with data={cfg.data.get('name')}: {reason}. Its pretraining reads the "
                        "labelled data's training file (data.train.path), so use file data (data=labelled "
                        "data.train.path=..., data=sst2), or set init.pretrain=[...].") from None
    unset = [item for item in overrides or () if item.endswith("=None")]
    if unset:
        raise UserError(f"init={name} trains an MLM run first with {unset[0]}: a value it needs is not "
                        "set. init=minilm_dapt pretrains on unlabelled text of the task's domain: name it "
                        "with init.corpus=<file> (a line per text, or init.corpus_column=<column> of a "
                        "table).")
    return overrides


def check_missing(cfg: DictConfig) -> None:
    missing = sorted(key for key in OmegaConf.missing_keys(cfg) if not key.startswith("hydra."))
    if missing:
        example = "data.train.path=train.tsv" if "data.train.path" in missing else f"{missing[0]}=..."
        raise UserError(f"{', '.join(missing)} must be set for data={cfg.data.name}; give it on the "
                        f"command line, e.g. {example}.")


def check_budget(cfg: DictConfig) -> None:
    steps, epochs = cfg.trainer.get("max_steps", -1), cfg.trainer.get("max_epochs")
    if steps == 0 or epochs == 0:
        raise UserError(f"trainer.max_steps={steps} trainer.max_epochs={epochs} trains nothing, and an "
                        "untrained model would be exported as if trained; give a positive budget, e.g. "
                        "trainer.max_steps=1000 (or trainer.max_steps=-1 trainer.max_epochs=3).")
    if steps == -1 and epochs == -1 and not cfg.trainer.get("max_time"):
        raise UserError("trainer.max_steps=-1 with trainer.max_epochs=-1 never stops; set one of them, "
                        "e.g. trainer.max_steps=1000 or trainer.max_epochs=3.")
    for key, value in (("trainer.max_steps", steps), ("trainer.max_epochs", epochs)):
        if value is not None and (not isinstance(value, int) or value < -1):
            raise UserError(f"{key}={value} is not a number of {key.split('_')[-1]}; use a positive "
                            "whole number, or -1 to leave the budget to the other setting.")


def check_batches(cfg: DictConfig) -> None:
    data = cfg.data
    size = data.get("batch_size")
    if size is not None and (not isinstance(size, int) or size < 1):
        raise UserError(f"data.batch_size={size} is not a batch size; use a positive whole number, "
                        "e.g. data.batch_size=32.")
    workers = data.get("num_workers")
    if workers is not None and workers != "auto" and (not isinstance(workers, int) or workers < 0):
        raise UserError(f"data.num_workers={workers!r} is not a number of worker processes: give 0 (batches "
                        "made in the training process), a count, or auto (0 on CPUs; on GPUs the job's "
                        "share of the cores, less one, at most 8).")
    length = data.get("max_length")
    if length is None:
        return
    if not isinstance(length, int) or length < MIN_LENGTH:
        raise UserError(f"data.max_length={length} leaves no room for text after [CLS] and [SEP]; use "
                        "e.g. data.max_length=128.")
    positions = OmegaConf.select(cfg, "model.config.max_position_embeddings")
    if not OmegaConf.select(cfg, "model.pretrained") and positions and length > positions:
        raise UserError(f"data.max_length={length} is longer than the model's "
                        f"{positions} positions; lower data.max_length or raise "
                        "model.config.max_position_embeddings.")


def check_label_budget(cfg: DictConfig) -> None:
    fraction, shots = cfg.data.get("fraction"), cfg.data.get("shots")
    if shots is not None and fraction not in (None, 1, 1.0):
        raise UserError(f"data.fraction={fraction} and data.shots={shots} both set the label budget; "
                        "keep one: data.shots=null for a fraction, or data.fraction=1.0 for shots.")


def check_model(cfg: DictConfig) -> None:
    """Transformer shapes that would fail deep inside transformers (or divide by zero)."""
    if OmegaConf.select(cfg, "model.pooling") is not None:
        pooling_of(cfg.model)
    for group in ("model", "vision"):
        config = OmegaConf.select(cfg, f"{group}.config")
        if config is None or OmegaConf.select(cfg, f"{group}.pretrained"):
            continue
        hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
        for key in ("hidden_size", "num_attention_heads", "num_hidden_layers", "intermediate_size"):
            value = config.get(key)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"{group}.config.{key}={value} must be a positive whole number.")
        if hidden and heads and hidden % heads:
            rounded = heads * (hidden // heads + 1)
            raise UserError(f"{group}.config.hidden_size={hidden} cannot be split over {heads} attention "
                            f"heads; make it a multiple of num_attention_heads, e.g. "
                            f"{group}.config.hidden_size={rounded}.")
    fusion = cfg.get("fusion")
    if fusion is not None and OmegaConf.select(cfg, "model.modality") == "both" and "_target_" not in fusion:
        raise UserError(f"fusion={fusion.get('name')} is one modality alone, yet model.modality=both asks "
                        "for a fusion of two; choose a head (fusion=concat | gated | cross_attention | "
                        "early) "
                        "or leave model.modality out.")


def check_trainer(cfg: DictConfig) -> None:
    trainer = cfg.trainer
    if trainer.get("precision") not in PRECISIONS:
        raise UserError(f"trainer.precision={trainer.get('precision')} is not a precision Lightning knows; "
                        "use 32-true, bf16-mixed (CPU or recent GPU) or 16-mixed (GPU).")
    if trainer.get("accelerator") in ("gpu", "cuda") and not cuda_available():
        raise UserError("This trainer asks for a GPU, but PyTorch finds none (torch.cuda.is_available() is "
                        "False). Use trainer=cpu, or trainer=ddp_sim to try DDP with CPU processes.")


def cuda_available() -> bool:
    import torch  # loaded by the job anyway; not for --help

    return torch.cuda.is_available()
