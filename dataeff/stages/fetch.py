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
        fetch_init(cfg, cfg.init, tracking_uri, cache_dir)
    vision = OmegaConf.select(cfg, "vision.init")
    if vision is not None and vision.kind == "mlflow_run":
        cfg.vision.pretrained = fetch_init(cfg, vision, tracking_uri, cache_dir)
    augmenter = OmegaConf.select(cfg, "augment.text.mlm")
    if augmenter is not None and augmenter.source and not Path(str(augmenter.source)).expanduser().exists():
        augmenter.source = str(fetch_run_model(str(augmenter.source), tracking_uri, cache_dir))


def fetch_init(cfg, init, tracking_uri: str, cache_dir: str) -> str:
    """An init node naming a run (`init`, `vision.init`) turned into its fetched folder: kind
    huggingface, `source` the folder, `source_run_id` the run (what the job records)."""
    run_id = str(init.source)
    with open_dict(cfg):
        init.kind, init.source_run_id = "huggingface", run_id
        init.source = str(fetch_run_model(run_id, tracking_uri, cache_dir))
    return init.source
