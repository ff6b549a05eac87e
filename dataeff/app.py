"""The dataeff Hydra app: compose -> instantiate -> fit -> log. `-m` makes it a sweep.

    dataeff-train                                  # the embedded default (CPU, minutes)
    dataeff-train data=text data.train.path=corpus.txt model=bert_mini trainer=gpu
    dataeff-train -m seed=1,2,3 task.optimizer.lr=1e-3,3e-4

The app runs the recipe its config names (`recipe`: dataeff.recipes.train, .audit or
.active_learning), loaded by name once a job runs: until then only Hydra is loaded, so `--help` and
`--cfg job` are quick (`--help` itself skips Hydra's slow listing of config groups: dataeff.help).
"""

from __future__ import annotations

import gc
import logging
import sys

import hydra
from hydra.utils import get_method
from omegaconf import DictConfig

import dataeff.resolvers  # noqa: F401  (registers ${dataeff.cwd:})
from dataeff.checks.command_line import CONFIG_DIR as CONFIG_ROOT
from dataeff.checks.command_line import check_command_line
from dataeff.errors import UserError
from dataeff.help import app_help

CONFIG_DIR = str(CONFIG_ROOT)  # as hydra.main wants it
RECIPES = ("dataeff.recipes.train.run", "dataeff.recipes.audit.run", "dataeff.recipes.active_learning.run")


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="train")
def main(cfg: DictConfig) -> float | None:
    try:
        recipe = get_method(cfg.recipe)  # Lightning, MLflow, transformers: loaded for a job only
    except (ImportError, ValueError) as err:
        print(f"\nError: recipe={cfg.recipe} is no workflow the app can run ({err}). The recipes are "
              f"{', '.join(RECIPES)}; task=audit and al=<strategy> choose theirs.", file=sys.stderr)
        sys.exit(1)
    if not gc.isenabled():  # started by cli(): what the imports made stays for good, never walked again
        gc.freeze()
        gc.enable()
    return recipe(cfg)


def cli() -> None:
    """`dataeff-train`: the Hydra app, after a look at what Hydra itself would refuse with a traceback."""
    args = sys.argv[1:]
    try:
        check_command_line(args)
    except UserError as err:
        print(f"\nError: {err}", file=sys.stderr)
        sys.exit(1)
    overrides = [arg for arg in args if arg not in ("--help", "-h")]
    if len(overrides) < len(args) and not any(arg.startswith("-") for arg in overrides):
        try:
            print(app_help(CONFIG_ROOT, "train", overrides))  # what Hydra's --help prints, quicker
            return
        except Exception:  # noqa: BLE001  (an override that does not compose: Hydra's own message)
            pass
    # Importing torch, Lightning, transformers and MLflow makes millions of objects and no garbage,
    # yet sets off full collections that walk them all (~2 s a process); main() turns the collector
    # on again once they are loaded, and frozen. At exit it would walk them once more (another
    # ~2 s); frozen, they are skipped (atexit handlers and deallocation still run).
    gc.disable()
    logging.raiseExceptions = False  # a log file on a full disk: said once, in the job's last words
    try:
        main()
    finally:
        gc.freeze()


if __name__ == "__main__":
    cli()
