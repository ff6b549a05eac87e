"""`dataeff-train --help` without Hydra's slow path. Hydra lists the config groups by deep-copying
its whole config repository once per group and option (~150 times here: 3 s of a 3.5 s `--help`);
the app's groups are the folders of `conf/`, so a directory walk lists them. Otherwise it is
Hydra's help: its template (`hydra.help.template`), its sections, the config composed with the
overrides given."""

from __future__ import annotations

import string
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict


def config_groups(config_dir: Path) -> str:
    """`group: option, option` per line, as Hydra's $APP_CONFIG_GROUPS (hydra/ groups aside)."""
    lines = []
    for folder in sorted(path for path in config_dir.rglob("*") if path.is_dir()):
        group = folder.relative_to(config_dir).as_posix()
        options = sorted(file.stem for file in folder.glob("*.yaml"))
        if options and group.split("/")[0] != "hydra":
            lines.append(f"{group}: {', '.join(options)}")
    return "".join(line + "\n" for line in lines)


def app_help(config_dir: Path, config_name: str, overrides: list[str]) -> str:
    with initialize_config_dir(str(config_dir), version_base="1.3", job_name="train"):  # as Hydra names it
        cfg = compose(config_name, overrides=overrides, return_hydra_config=True)
    template = cfg.hydra.help.template
    with open_dict(cfg):
        del cfg["hydra"]
    return string.Template(template).safe_substitute(
        APP_CONFIG_GROUPS=config_groups(config_dir), CONFIG=OmegaConf.to_yaml(cfg),
        HYDRA_CONFIG_GROUPS="(dataeff-train --hydra-help)", FLAGS_HELP="(dataeff-train --hydra-help)")
