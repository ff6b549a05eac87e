"""What a job's run is called and tagged with: its name in a sweep, its parent, its params as
MLflow takes them (dotted keys, capped lengths), the axes a study compares, the commit."""

from __future__ import annotations

import subprocess
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from dataeff.overrides import typed_overrides
from dataeff.runs.store import redact

PARENT_FILE = "mlflow_parent_run_id"  # the sweep's parent run id, in the sweep folder
MAX_PARAM, MAX_TAG = 6000, 8000


def flatten(tree, prefix: str = "") -> dict[str, str]:
    """Dotted keys -> string values, as MLflow params want them (lists stay one value)."""
    if isinstance(tree, dict):
        items = {}
        for key, value in tree.items():
            items.update(flatten(value, f"{prefix}{key}."))
        return items
    return {prefix[:-1]: redact(str(tree))[:MAX_PARAM]}


def axis_tags(cfg: DictConfig) -> dict[str, str]:
    """The ablation axes named in `tracking.axes`, plus the user's free-form `tags`."""
    tags = {key: str(OmegaConf.select(cfg, key)) for key in cfg.tracking.axes}
    tags.update({str(k): str(v) for k, v in (cfg.get("tags") or {}).items()})
    return tags


def git_commit(folder: str) -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def job_overrides() -> list[str]:
    return typed_overrides() if HydraConfig.initialized() else []


def run_name() -> str | None:
    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    if hydra.mode == RunMode.MULTIRUN:
        return f"{hydra.job.num}: {hydra.job.override_dirname}"[:250]
    return Path(hydra.runtime.output_dir).name


def parent_run_id() -> str | None:
    """The sweep's parent run, which `SweepRun` wrote into the sweep directory."""
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return None
    marker = Path(HydraConfig.get().sweep.dir) / PARENT_FILE
    return marker.read_text().strip() if marker.exists() else None
