"""What is checked before Hydra composes a job: the command line (what Hydra would answer with a
traceback) and the output folder Hydra is about to create."""

from __future__ import annotations

import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from dataeff.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent.parent / "conf"
REQUIRED_GROUPS = ("task", "model", "tokenizer", "init", "data", "trainer", "callbacks", "paths")
PROBE_BYTES = 64 * 1024  # more than Hydra writes before the job starts


def check_command_line(args: list[str]) -> None:
    """What Hydra would answer with a traceback (or take, then fail on later): a config group the app
    needs, left out; a nested group chosen like a value (vision.init=mim for vision/init=mim)."""
    parser = OverridesParser.create()
    for arg in args:
        try:
            override = parser.parse_override(arg)
        except HydraException:
            continue  # a flag or its value (-m, --cfg job); Hydra reports real mistakes itself
        group, value = override.key_or_group, None if override.is_delete() else override.value()
        if group == "logger" and not (CONFIG_DIR / "logger" / f"{value}.yaml").is_file():
            raise UserError(
                f"{arg}: dataeff records every run in MLflow, and a quick local try needs no server for "
                "that: runs go to the SQLite file $DATAEFF_ROOT/mlflow.db. To keep a try apart from your "
                "studies, point the store elsewhere (DATAEFF_ROOT=/tmp/try dataeff-train ..., or "
                "MLFLOW_TRACKING_URI=sqlite:////tmp/try.db) and leave logger= out.")
        if group in REQUIRED_GROUPS and value is None:
            options = sorted(path.stem for path in (CONFIG_DIR / group).glob("*.yaml"))
            raise UserError(f"{arg}: the {group} group cannot be left empty; choose one of "
                            f"{group}={' | '.join(options)}, or leave {group}= out for the default.")
        key = group.lstrip("+~")
        nested = CONFIG_DIR / key.replace(".", "/")
        if "." in key and nested.is_dir() and (isinstance(value, str) or override.is_sweep_override()):
            raise UserError(f"{arg}: {nested_group_typed_as_value(key, arg.split('=', 1)[1])}")
        if value is None and (CONFIG_DIR / group).is_dir() and not override.is_delete():
            raise UserError(f"{arg}: Hydra leaves a config group out with ~{group} (e.g. ~{group} after "
                            f"an experiment that sets it), not with {group}=null.")



def nested_group_typed_as_value(key: str, value: str) -> str:
    """vision.init=mim: Hydra puts the string where the group's node goes, and the job fails later."""
    choice = key.replace(".", "/")
    options = sorted(path.stem for path in (CONFIG_DIR / choice).glob("*.yaml"))
    listed = "" if choice.startswith("hydra/") else f" (one of {choice}={' | '.join(options)})"  # + plugins'
    return (f"{choice} is a config group, chosen with a slash: {choice}={value}{listed}; "
            f"{key}.<key>=... sets one of its values.")


class WritableOutputs(Callback):
    """Hydra creates the job's output folder before the app runs, and a folder it cannot create
    would end in Hydra's traceback: say it here first, before any run exists."""

    def on_run_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.run.dir)

    def on_multirun_start(self, config: DictConfig, **kwargs) -> None:
        self._check(config.hydra.sweep.dir)

    @staticmethod
    def _check(folder: str) -> None:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            print(f"\nError: The output folder {folder} cannot be created ({err.strerror}). Point "
                  "DATAEFF_ROOT (or paths.log_dir=) at a writable folder.", file=sys.stderr)
            sys.exit(1)
        probe = Path(folder) / ".dataeff-room"
        try:  # room for Hydra's record of the job (.hydra/, the log): a full disk, said before it starts
            probe.write_bytes(bytes(PROBE_BYTES))
        except OSError as err:
            print(f"\nError: The output folder {folder} cannot be written ({err.strerror}). Free some "
                  "space on its disk, or point DATAEFF_ROOT (or hydra.run.dir=) at a disk with room.",
                  file=sys.stderr)
            sys.exit(1)
        finally:
            probe.unlink(missing_ok=True)
