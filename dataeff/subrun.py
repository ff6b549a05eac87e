"""How a job runs the runs it needs first (a study's pretraining, tuning trials, the audit, active
learning's rounds): the app again, with the sub-run's overrides, in one of two launchers.

- `process` (the default): `python -m dataeff.train <overrides>` in a fresh process, as a user
  would type it; the sub-run shares nothing with the job (memory, Lightning's state, threads).
- `in_process`: the same app in this process (`subruns=in_process`), as Hydra's own launchers run
  a job: a sub-run costs no interpreter start and no 5-10 s of imports, which is what tests and
  debugging want. The caller's Hydra state (its HydraConfig, its argv, its logging) is put back
  afterwards; the sub-run seeds the global RNGs as any job does.

Both return the app's exit code: 0 when the sub-run's job ended well.
"""

from __future__ import annotations

import contextlib
import logging
import runpy
import subprocess
import sys
from collections.abc import Callable, Iterator

from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig

APP = "dataeff.train"  # the module both launchers run, by name


def in_subprocess(argv: list[str]) -> int:
    return subprocess.run([sys.executable, "-m", APP, *argv], check=False).returncode


def in_process(argv: list[str]) -> int:
    app = runpy.run_module(APP, run_name="dataeff_subrun")  # the app's module, run by name
    # argv[0] stays this process's entry point: Lightning's DDP launcher starts the sub-run's other
    # ranks from it
    with own_hydra_state(), argv_of([sys.argv[0], *argv]):
        try:
            app["main"]()
        except SystemExit as done:
            return done.code if isinstance(done.code, int) else 1
    return 0


LAUNCHERS: dict[str, Callable[[list[str]], int]] = {"process": in_subprocess, "in_process": in_process}


@contextlib.contextmanager
def own_hydra_state() -> Iterator[None]:
    """The sub-run initialises Hydra and configures logging for itself; the caller's come back."""
    global_hydra, hydra_config = GlobalHydra.instance(), HydraConfig.instance()
    saved_hydra, saved_config = global_hydra.hydra, hydra_config.cfg
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    global_hydra.clear()
    try:
        yield
    finally:
        global_hydra.clear()
        if saved_hydra is not None:
            global_hydra.initialize(saved_hydra)
        hydra_config.cfg = saved_config
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)


@contextlib.contextmanager
def argv_of(argv: list[str]) -> Iterator[None]:
    saved, sys.argv = sys.argv, argv
    try:
        yield
    finally:
        sys.argv = saved
