"""explain=... is for text classifiers with a test split: said before any run."""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from dataeff.errors import UserError

TEXT_CLASSIFIERS = ("classify", "linear_probe", "setfit")  # networks over tokens (explain=...)


def check_explain(cfg: DictConfig) -> None:
    """explain=... attributes a text classifier's test predictions to its tokens."""
    if not cfg.get("explain"):
        return
    name = cfg.task.get("name")
    if name not in TEXT_CLASSIFIERS:  # their data is labelled text (check_data_fits_task)
        raise UserError(f"explain={cfg.explain.get('name')} attributes a text classifier's test predictions "
                        f"to their tokens: use it with task={' | '.join(TEXT_CLASSIFIERS)}, not task={name}.")
    if not OmegaConf.select(cfg, "data.test") or OmegaConf.select(cfg, "data.test.path", default="") is None:
        raise UserError(f"explain={cfg.explain.get('name')} explains the test predictions, and "
                        f"data={cfg.data.get('name')} has no test split: set data.test.path=<file>.")
