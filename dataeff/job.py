"""One training job: compose -> instantiate -> fit -> test -> export -> log, in its MLflow run.

`dataeff.train` (the Hydra app) imports this module only once a job runs, so `--help`, `--cfg`
and refused settings answer without loading Lightning, MLflow or transformers.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytorch_lightning as pl
from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException, InstantiationException
from hydra.types import RunMode
from hydra.utils import instantiate
from mlflow.tracking import MlflowClient
from omegaconf import DictConfig, OmegaConf, open_dict
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from dataeff.active.rounds import run_active_learning
from dataeff.audit.stage import run_audit_stage
from dataeff.callbacks import BudgetProgressBar, ExportModel
from dataeff.chain import fetch_sources, run_pretraining_stage
from dataeff.checkpoints import earlier_attempt, read_checkpoint, tokenizer_from_checkpoint
from dataeff.checks import check_settings
from dataeff.data.base import DataModule
from dataeff.data.tokenizer import cached_wordpiece, load_tokenizer
from dataeff.errors import UserError
from dataeff.footprint import DISK_TAG, settle_outputs
from dataeff.launch import job_argv, machine_share, submitit_tasks
from dataeff.models.init import Pretrained, load_init
from dataeff.outbox import DeliveringClient
from dataeff.resolved import forget_handed_down, read_resolved, write_resolved
from dataeff.resources import AtomicCheckpointIO, fault_message
from dataeff.restart import OBJECTIVE_TAG, finished_job, job_key, recorded_objective
from dataeff.store import open_store
from dataeff.tracking import JobRun, parent_run_id
from dataeff.tuning import run_tuning_stage

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


def build_task(cfg: DictConfig, datamodule: DataModule, run: JobRun) -> pl.LightningModule:
    """Init source -> tokenizer -> network -> LightningModule; what was loaded goes to MLflow."""
    pretrained = load_init(cfg) if cfg.get("init") else None
    tokenizer = resolve_tokenizer(cfg, datamodule, pretrained, run.checkpoint)
    datamodule.set_tokenizer(tokenizer)
    make_net = instantiate(cfg.task.net)
    net, reports = make_net(model_cfg=cfg.model, tokenizer=tokenizer, datamodule=datamodule,
                            pretrained=pretrained)
    log_load_reports(run, {**reports, **datamodule.load_reports()}, cfg, pretrained)
    run.set_tags(datamodule.run_tags())
    samples = datamodule.augmentation_samples()
    if samples:
        run.log_text(samples, "augmentation_samples.md")
    grid = datamodule.augmentation_grid()
    if grid is not None:
        run.log_image(grid.permute(1, 2, 0).numpy(), "augmentation_samples.png")
    return build(cfg.task, net=net, tokenizer=tokenizer)


def architecture_tag(cfg: DictConfig, pretrained: Pretrained) -> dict:
    """`model.name` says what was trained: weights of another shape than the model preset (MiniLM
    under bert_tiny) bring their own architecture, named after the init and its shape."""
    preset, source = OmegaConf.select(cfg, "model.config"), pretrained.config
    shape = (source.num_hidden_layers, source.hidden_size)
    if preset is not None and (preset.get("num_hidden_layers"), preset.get("hidden_size")) == shape:
        return {}
    return {"model.name": f"{cfg.init.name}-L{shape[0]}-H{shape[1]}"}


def build(node, **kwargs):
    """`instantiate`, but a UserError raised inside a constructor reaches the user unwrapped, and
    so does Lightning's refusal of a setting (a MisconfigurationException names the argument)."""
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        while cause is not None and not isinstance(cause, (UserError, MisconfigurationException)):
            cause = cause.__cause__
        if cause is None:
            raise
        if isinstance(cause, MisconfigurationException):
            raise UserError(lightning_refusal(cause)) from None
        raise cause from None


def lightning_refusal(err: MisconfigurationException) -> str:
    return (f"Lightning refuses these settings: {err} Change the trainer.* (or callbacks.*) override it "
            "names.")


def build_data(cfg: DictConfig) -> DataModule:
    datamodule = build(cfg.data)
    if not isinstance(datamodule, DataModule):
        kind = type(datamodule)
        raise UserError(f"data._target_={cfg.data.get('_target_')} makes a {kind.__module__}."
                        f"{kind.__name__}, which is no dataeff DataModule. Subclass "
                        "dataeff.data.base.DataModule: it names what a job asks of its data beside "
                        "Lightning's loaders (train_texts, set_tokenizer, ...).")
    return datamodule


def fit(cfg: DictConfig, datamodule: DataModule, run: JobRun) -> float | None:
    """Build the rest from config, train, test with the best checkpoint, export (ExportModel)."""
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
        run.set_tags({"dataeff.exported_step": exporter.step})  # the best-on-validation step
    return objective(trainer, cfg.task.objective)


def settle_validation(trainer_cfg: DictConfig) -> None:
    """`trainer.val_check_interval` as users mean it, whatever the budget: a fraction is a share
    of each epoch, an integer a number of training batches across epochs (Lightning needs
    check_val_every_n_epoch set for the one, unset for the other). A steps budget shorter than
    the interval validates once, at its last step, so there is a best checkpoint to test."""
    interval, per_epoch = trainer_cfg.get("val_check_interval"), trainer_cfg.get("check_val_every_n_epoch")
    with open_dict(trainer_cfg):
        if isinstance(interval, float) and per_epoch is None:
            trainer_cfg.check_val_every_n_epoch = 1
        elif isinstance(interval, int) and per_epoch == 1:
            trainer_cfg.check_val_every_n_epoch = None
    steps = trainer_cfg.get("max_steps") or -1
    if not isinstance(interval, int) or trainer_cfg.check_val_every_n_epoch is not None or steps < 1:
        return
    batches = steps * (trainer_cfg.get("accumulate_grad_batches") or 1)
    if interval > batches:
        log.info("trainer.max_steps=%d ends before trainer.val_check_interval=%d: validating at the last "
                 "step instead", steps, interval)
        trainer_cfg.val_check_interval = batches


def log_per_class(task, datamodule: DataModule, run: JobRun) -> None:
    """`test_per_class.csv/.md`: recall, precision and the commonest confusion of every label."""
    from dataeff.report.per_class import per_class, per_class_markdown  # matplotlib: load late

    confusion = getattr(task, "confusion", None)  # a classifier's, with labelled data
    if confusion is None:
        return
    table = per_class(confusion, datamodule.label_names)
    run.log_text(table.to_csv(index=False), "test_per_class.csv")
    run.log_text(per_class_markdown(table) + "\n", "test_per_class.md")


def objective(trainer: pl.Trainer, metric: str) -> float | None:
    best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
    value = best if best is not None else trainer.callback_metrics.get(metric)
    return None if value is None else float(value)


def settle_disk(cfg: DictConfig, run: JobRun) -> None:
    """Once the job's work is done: its weights stay once, and its footprint is a tag."""
    client = run.client
    linkable = not (isinstance(client, DeliveringClient) and client.outbox.pending())
    megabytes = settle_outputs(cfg.paths.output_dir, cfg.get("keep_checkpoints", "none"),
                               run.artifact_uri, linkable)
    run.set_tags({DISK_TAG: round(megabytes, 1)})


def skipped_job(tracking_uri: str, key: str):
    """In a continued sweep, the FINISHED run of this job (same config), which is not trained again."""
    parent = parent_run_id()
    done = finished_job(MlflowClient(tracking_uri), parent, key) if parent else None
    if done is not None:
        log.info("Skipped: this sweep already FINISHED this job as MLflow run %s (%s); rerun=true trains "
                 "it again.", done.info.run_id, done.info.run_name)
    return done


def resolve_stages(cfg: DictConfig) -> None:
    """Rank 0 fills in what the job starts from, in order, and writes the result for the other
    ranks (resolved.yaml): a study's pretraining run, the runs' weights fetched into the cache, a
    tuned hyperparameter, an earlier attempt in this job's folder to continue."""
    run_pretraining_stage(cfg)
    fetch_sources(cfg)
    run_tuning_stage(cfg)
    earlier = earlier_attempt(cfg.paths.output_dir) if not cfg.get("ckpt_path") else None
    if earlier:
        cfg.ckpt_path = earlier
        log.info("This job's folder holds an earlier attempt: continuing from %s", cfg.ckpt_path)
    write_resolved(cfg)


def run_job(cfg: DictConfig) -> float | None:
    """The job the app was started for; its objective (for sweepers), or an exit with the reason.
    Rank 0 resolves the config (checks, store, stages) and writes it; the other ranks read it."""
    run = None
    try:
        submitit_tasks()
        first, key = rank_zero_only.rank == 0, ""
        if first:
            check_settings(cfg)
            settle_validation(cfg.trainer)  # before the config is logged: it says what runs
            cfg.logger.mlflow.tracking_uri = open_store(cfg.logger.mlflow.tracking_uri)  # no credentials
            key = job_key(cfg)  # before the stages below fill in the config,
            OmegaConf.resolve(cfg.tags)  # and so are the tags: what the job was asked for (noise=0.1, ...)
            done = None if cfg.rerun else skipped_job(cfg.logger.mlflow.tracking_uri, key)
            if done is not None:
                return recorded_objective(done)
            run_audit_stage(cfg, HydraConfig.get().overrides.task)
            if cfg.task.name == "audit":  # the data, not a model
                from dataeff.audit.run import run_audit  # cleanlab, sklearn: loaded for an audit only

                return run_audit(cfg, build_data(cfg), key)
            if cfg.get("al"):  # a loop of classify jobs, each a run of its own
                return run_active_learning(cfg, build_data(cfg), key)
            resolve_stages(cfg)
        else:
            cfg = read_resolved(cfg.paths.output_dir, rank_zero_only.rank)
        checkpoint = read_checkpoint(cfg.ckpt_path) if cfg.get("ckpt_path") else None
        pl.seed_everything(cfg.seed, workers=True)
        datamodule = build_data(cfg)  # what its constructor refuses (data.val_size=...) leaves no run
        with machine_share(cfg), job_argv(), JobRun(cfg, checkpoint, key) as run:
            value = fit(cfg, datamodule, run)
            run.set_tags({OBJECTIVE_TAG: value})
            if first:
                settle_disk(cfg, run)
            return value
    except (KeyboardInterrupt, SystemExit) as stop:
        if run is not None and run.killed(stop):
            sys.exit(run.exit_code)  # 130 for Ctrl-C, 143 for SIGTERM, as a shell expects
        raise
    except UserError as err:
        stop_with(err)
    except Exception as err:
        message = fault_message(err, cfg)  # the disk or the memory ran out: said, not a traceback
        if isinstance(err, MisconfigurationException):  # found once training runs (a monitor key)
            message = lightning_refusal(err)
        if message is None:
            raise
        stop_with(UserError(message + (run.lost_note() if run else "")))
    finally:
        forget_handed_down()


def stop_with(err: UserError) -> None:
    """The job's end for a mistake or fault the user can fix: one paragraph, no traceback."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # Hydra records the failed job, runs the rest of
        raise CompactHydraException(str(err)) from None  # the sweep, and prints this: no traceback
    if rank_zero_only.rank == 0:
        log.error("%s", err)
        print(f"\nError: {err}", file=sys.stderr)
    sys.exit(1)
