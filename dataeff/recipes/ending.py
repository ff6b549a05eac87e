"""How every recipe ends: well, with its objective; on a mistake or fault the user can fix (a
UserError, a full disk, memory run out, a setting Lightning refuses), with one paragraph that names
the fix and exit status 1, never a traceback. (A job's MLflow run says the same: dataeff.runs.)"""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from hydra.errors import CompactHydraException
from hydra.types import RunMode
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only
from pytorch_lightning.utilities.exceptions import MisconfigurationException

from dataeff.building import lightning_refusal
from dataeff.errors import UserError
from dataeff.resources import fault_message
from dataeff.stages.resolved import forget_handed_down

log = logging.getLogger("dataeff")
Recipe = Callable[[DictConfig], "float | None"]


def job_recipe(recipe: Recipe) -> Recipe:
    """`recipe` as the app runs it: its objective (for sweepers), or an exit with the reason."""

    @functools.wraps(recipe)
    def job(cfg: DictConfig) -> float | None:
        try:
            return recipe(cfg)
        except UserError as err:
            stop_with(err)
        except Exception as err:
            message = fault_message(err, cfg)  # the disk or the memory ran out: said, not a traceback
            if isinstance(err, MisconfigurationException):  # found once training runs (a monitor key)
                message = lightning_refusal(err)
            if message is None:
                raise
            stop_with(UserError(message))
        finally:
            forget_handed_down()  # the next job in this process (a sweep's, a sub-run) starts clean
        return None

    return job


def stop_with(err: UserError) -> None:
    """The job's end for a mistake or fault the user can fix: one paragraph, no traceback."""
    if HydraConfig.get().mode == RunMode.MULTIRUN:  # Hydra records the failed job, runs the rest of
        raise CompactHydraException(str(err)) from None  # the sweep, and prints this: no traceback
    say(err)
    sys.exit(1)


@rank_zero_only  # once, not once per rank
def say(err: UserError) -> None:
    log.error("%s", err)
    print(f"\nError: {err}", file=sys.stderr)
