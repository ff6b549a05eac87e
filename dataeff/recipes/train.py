"""The training recipe. `run` (at the end) reads top to bottom: the job's config resolved, its data,
its model from the init source, then Lightning's fit and test, the export, and everything logged to
the job's MLflow run. The app loads it by name (`recipe`, conf/train.yaml's default), so `--help`
and refused settings answer without loading Lightning, MLflow or transformers."""

from __future__ import annotations

import logging
from pathlib import Path

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.profilers import PyTorchProfiler

from dataeff.building import build, build_data
from dataeff.callbacks import BudgetProgressBar, ExportModel
from dataeff.checkpoints import read_checkpoint, tokenizer_from_checkpoint
from dataeff.data.base import DataModule
from dataeff.data.labelled import LabelledTextDataModule
from dataeff.data.multimodal import ImageTextDataModule
from dataeff.errors import require_subclass
from dataeff.launch import job_argv, machine_share, submitit_tasks
from dataeff.models.init import Pretrained, load_init
from dataeff.profiling import StepProfile, summarize
from dataeff.recipes.ending import job_recipe
from dataeff.report.per_class import per_class_files
from dataeff.resources import AtomicCheckpointIO
from dataeff.runs.job_run import JobRun
from dataeff.runs.tags import EXPLAIN_FAITHFUL_TAG, EXPORTED_STEP_TAG, OBJECTIVE_TAG
from dataeff.stages.resolve import TRAINING_STAGES, resolve_job
from dataeff.tasks.base import Task
from dataeff.tokenizer import cached_wordpiece, load_tokenizer

log = logging.getLogger("dataeff")


def resolve_tokenizer(cfg: DictConfig, datamodule: DataModule, pretrained: Pretrained | None,
                      checkpoint: dict | None = None):
    """The tokenizer travels with the weights: checkpoint > init > pretrained folder > path > train."""
    if checkpoint is not None:
        return tokenizer_from_checkpoint(cfg.ckpt_path, checkpoint)
    if not datamodule.has_text:
        return None  # images only
    if pretrained is not None:
        return pretrained.tokenizer
    if cfg.model.get("pretrained"):
        return load_tokenizer(cfg.model.pretrained)
    if cfg.tokenizer.get("path"):
        return load_tokenizer(cfg.tokenizer.path)
    tok = cfg.tokenizer
    return cached_wordpiece(datamodule.train_texts(), cfg.paths.cache_dir, tok.vocab_size,
                            tok.lowercase, tok.min_frequency)


def log_load_reports(run: JobRun, reports: dict, cfg: DictConfig, pretrained: Pretrained | None) -> None:
    """init_report.json: for each pretrained part (text encoder, ViT, MLM augmenter) its source and the
    keys loaded, missing and unexpected; each part's source and tensor count as tags."""
    if not reports:
        return
    run.log_json(reports, "init_report.json")
    if "text" in reports:
        run.set_tags({"init.source": pretrained.source, "init.source_run_id": pretrained.run_id or "",
                      "init.loaded_tensors": len(reports["text"]["loaded"]),
                      **architecture_tag(cfg, pretrained)})
    for part in set(reports) - {"text"}:
        run.set_tags({f"{part}.source": reports[part]["source"],
                      f"{part}.loaded_tensors": len(reports[part]["loaded"])})
        if reports[part].get("source_run_id"):  # a pretraining run of this study (vision/init=mim)
            run.set_tags({f"{part}.source_run_id": reports[part]["source_run_id"]})


def build_task(cfg: DictConfig, datamodule: DataModule, run: JobRun) -> Task:
    """Init source -> tokenizer -> network -> LightningModule; what was loaded goes to MLflow."""
    pretrained = load_init(cfg) if cfg.get("init") else None
    tokenizer = resolve_tokenizer(cfg, datamodule, pretrained, run.checkpoint)
    datamodule.set_tokenizer(tokenizer)
    make_net = instantiate(cfg.task.net)
    net, reports = make_net(model_cfg=cfg.model, tokenizer=tokenizer, data=datamodule.shape(),
                            pretrained=pretrained)
    log_load_reports(run, {**reports, **datamodule.load_reports()}, cfg, pretrained)
    run.set_tags(datamodule.run_tags())
    samples = datamodule.augmentation_samples()
    if samples:
        run.log_text(samples, "augmentation_samples.md")
    grid = datamodule.augmentation_grid()
    if grid is not None:
        run.log_image(grid.permute(1, 2, 0).numpy(), "augmentation_samples.png")
    task = build(cfg.task, net=net, tokenizer=tokenizer)
    require_subclass(task, Task, f"task._target_={cfg.task.get('_target_')}", "dataeff task",
                     "it builds the optimizer and schedule from the task's settings and saves checkpoints a "
                     "job can resume.")
    return task


def architecture_tag(cfg: DictConfig, pretrained: Pretrained) -> dict:
    """`model.name` says what was trained: weights of another shape than the model preset (MiniLM
    under bert_tiny) bring their own architecture, named after the init and its shape."""
    preset, source = OmegaConf.select(cfg, "model.config"), pretrained.config
    shape = (source.num_hidden_layers, source.hidden_size)
    if preset is not None and (preset.get("num_hidden_layers"), preset.get("hidden_size")) == shape:
        return {}
    return {"model.name": f"{cfg.init.name}-L{shape[0]}-H{shape[1]}"}


def fit(cfg: DictConfig, datamodule: DataModule, run: JobRun, explainer=None) -> float | None:
    """Build the rest from config, train, test with the best checkpoint, export (ExportModel), then
    explain. `explainer`: built from `explain._target_` when asked for (an Explainer, not
    imported here, so that captum loads for those jobs only)."""
    task = build_task(cfg, datamodule, run)
    export_dir = Path(cfg.paths.output_dir) / "hf_model"
    has_test = datamodule.has_test
    exporter = ExportModel(export_dir, has_test)
    callbacks = [*(instantiate(c) for c in (cfg.callbacks or {}).values()), exporter]
    bars = [c for c in callbacks if isinstance(c, ProgressBar)]
    if cfg.trainer.get("enable_progress_bar", True) and not bars:
        callbacks.append(BudgetProgressBar())  # "Epoch 299", not Lightning's "Epoch 299/-2"
    # every rank gets the logger (callbacks expect one); only rank 0 has a run and writes
    logger = instantiate(cfg.logger.mlflow, run_id=run.run_id, client=run.client,
                         logged_steps=run.logged_steps)
    plugins = cfg.trainer.get("plugins") or [AtomicCheckpointIO()]  # checkpoints whole or not at all
    trainer: pl.Trainer = build(cfg.trainer, callbacks=callbacks, logger=logger, plugins=plugins)
    # weights_only: loading a checkpoint never unpickles code (dataeff.checkpoints)
    trainer.fit(task, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    if has_test:
        best = "best" if trainer.checkpoint_callback and trainer.checkpoint_callback.best_model_path else None
        if best is None and not trainer.fast_dev_run:  # fast_dev_run saves no checkpoint, by design
            log.warning("No validated checkpoint to test (validation never ran): testing the last weights")
        trainer.test(task, datamodule=datamodule, ckpt_path=best, weights_only=True)
        log_per_class(task, datamodule, run)
    if trainer.is_global_zero:
        run.log_artifacts(export_dir, "hf_model")
        run.set_tags({EXPORTED_STEP_TAG: exporter.step})  # the best-on-validation step
        if has_test and explainer is not None:  # after the model is safe in MLflow
            task.net.to(trainer.strategy.root_device)  # Lightning's teardown left it on the CPU
            log_explanations(cfg, explainer, task, datamodule, run)
        log_profile(cfg, trainer, run)
    return objective(trainer, cfg.task.objective)


def log_profile(cfg: DictConfig, trainer: pl.Trainer, run: JobRun) -> None:
    """profiler=...: the profiler's files in the run's artifacts (profile/), and for the PyTorch
    profiler steps.md, where a training step's time goes (dataeff.profiling), from rank 0's trace.
    The folder is the one the config names: a profiler without one writes where Lightning puts it,
    which for an MLflow file store is the store itself."""
    folder = OmegaConf.select(cfg, "trainer.profiler.dirpath")
    if folder is None or not Path(folder).is_dir():
        return
    folder = Path(folder)
    try:
        profile = summarize(folder)
    except (OSError, ValueError, KeyError) as err:  # a trace cut short (a full disk), or unreadable
        log.warning("The profiler's trace in %s could not be read (%s): profile/ keeps its files "
                    "without steps.md.", folder, err)
    else:
        log_step_profile(profile, trainer)
    run.log_artifacts(folder, "profile")


def log_step_profile(profile: StepProfile | None, trainer: pl.Trainer) -> None:
    """The profile's headline in the job's log, or why the PyTorch profiler gave none."""
    if profile is not None:
        host = ", ".join(f"{part} {ms:.1f}" for part, ms in profile.slowest_first())
        log.info("Profiled %d training steps: %.1f ms a step on the host (%s); profile/steps.md",
                 len(profile.steps), profile.step_ms, host)
    elif isinstance(trainer.profiler, PyTorchProfiler):  # TrainingStepProfiler too
        log.warning("profiler=pytorch recorded no whole training step outside validation: the run "
                    "stopped at step %d, before or early in the profiler's window (trainer.profiler."
                    "schedule: wait, warmup, then active steps), or a validation fell on every step of "
                    "it. Lower trainer.profiler.schedule.wait, train longer, or move "
                    "trainer.val_check_interval.", trainer.global_step)


def log_per_class(task: Task, datamodule: DataModule, run: JobRun) -> None:
    """`test_per_class.csv/.md`: recall, precision and the commonest confusion of every label."""
    if task.confusion is None:  # not a classifier
        return
    for name, text in per_class_files(task.confusion, datamodule.label_names).items():
        run.log_text(text, name)


def log_explanations(cfg: DictConfig, explainer, task: Task,
                     datamodule: LabelledTextDataModule | ImageTextDataModule, run: JobRun) -> None:
    """explain=...: the tested model's test predictions attributed to their tokens and image patches
    (explanations/: the page, the tables, the summary), the faithfulness metrics and verdict."""
    folder = Path(cfg.paths.output_dir) / "explanations"
    images = ((datamodule.image_mean, datamodule.image_std) if isinstance(datamodule, ImageTextDataModule)
              else None)
    reader = explainer.reader(task.net, task.tokenizer, images)
    outcome = explainer.explain(reader, datamodule.labelled_examples("test"),
                                [str(name) for name in datamodule.label_names], folder)
    run.log_artifacts(folder, "explanations")
    run.log_metrics(outcome.metrics)
    run.set_tags({EXPLAIN_FAITHFUL_TAG: str(outcome.faithful).lower()})
    for line in outcome.summary:
        log.info(line)


def objective(trainer: pl.Trainer, metric: str) -> float | None:
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    value = best if best is not None else trainer.callback_metrics.get(metric)
    return None if value is None else float(value)


@job_recipe
def run(cfg: DictConfig) -> float | None:
    """Train one model: the config resolved (rank 0; the other ranks read it), the data built, then
    fit, test with the best checkpoint and export, in the job's MLflow run. Returns the objective."""
    submitit_tasks()
    job = resolve_job(cfg, TRAINING_STAGES)
    if job.done is not None:
        return job.objective
    cfg = job.cfg
    checkpoint = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
    pl.seed_everything(cfg.seed, workers=True)
    datamodule = build_data(cfg)  # what its constructor refuses (data.val_size=...) leaves no run
    explainer = build(cfg.explain) if cfg.get("explain") else None  # so does a bad explain.baseline
    with machine_share(cfg), job_argv(), JobRun(cfg, checkpoint, job.key) as run:
        value = fit(cfg, datamodule, run, explainer)
        run.set_tags({OBJECTIVE_TAG: value})
        run.settle_disk(cfg.get("keep_checkpoints", "none"))
        return value
