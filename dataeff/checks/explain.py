"""explain=... is for classifiers with a test split: said before any run."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from dataeff.errors import UserError

TEXT_CLASSIFIERS = ("classify", "linear_probe", "setfit")  # networks over tokens (dataeff-explain)
EXPLAINED = (*TEXT_CLASSIFIERS, "fusion")  # explain=...: tokens, and image patches of task=fusion


def check_explain(cfg: DictConfig) -> None:
    """explain=... attributes a classifier's test predictions to its tokens (and image patches)."""
    if not cfg.get("explain"):
        return
    name = cfg.task.get("name")
    if name not in EXPLAINED:  # their data is labelled (check_data_fits_task)
        raise UserError(f"explain={cfg.explain.get('name')} attributes a classifier's test predictions to "
                        f"their tokens and image patches: use it with task={' | '.join(EXPLAINED)}, not "
                        f"task={name}.")
    if not OmegaConf.select(cfg, "data.test") or OmegaConf.select(cfg, "data.test.path", default="") is None:
        raise UserError(f"explain={cfg.explain.get('name')} explains the test predictions, and "
                        f"data={cfg.data.get('name')} has no test split: set data.test.path=<file>.")
