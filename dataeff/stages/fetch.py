"""The stage that fetches the MLflow runs a job starts from into the cache (rank 0)."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf, open_dict

from dataeff.runs.artifacts import fetch_run_model


def fetch_sources(cfg) -> None:
    """Rank 0 fetches the MLflow runs the job starts from into the cache (`init=mlflow_run`, the MLM
    augmenter's run, `vision/init=mlflow_run`: the ViT's folder becomes vision.pretrained) and points
    the config at those folders, so the other ranks (which read rank 0's resolved config) never talk
    to MLflow."""
    tracking_uri, cache_dir = cfg.logger.mlflow.tracking_uri, cfg.paths.cache_dir
    if cfg.init.get("kind") == "mlflow_run" and cfg.init.get("source"):
        run_id = str(cfg.init.source)
        with open_dict(cfg):
            cfg.init.kind, cfg.init.source_run_id = "huggingface", run_id
            cfg.init.source = str(fetch_run_model(run_id, tracking_uri, cache_dir))
    vision = OmegaConf.select(cfg, "vision.init")
    if vision is not None and vision.kind == "mlflow_run":
        run_id = str(vision.source)
        with open_dict(cfg):
            vision.kind, vision.source_run_id = "huggingface", run_id
            cfg.vision.pretrained = vision.source = str(fetch_run_model(run_id, tracking_uri, cache_dir))
    augmenter = OmegaConf.select(cfg, "augment.text.mlm")
    if augmenter is not None and augmenter.source and not Path(str(augmenter.source)).expanduser().exists():
        augmenter.source = str(fetch_run_model(str(augmenter.source), tracking_uri, cache_dir))
