"""OmegaConf resolvers the configs use; imported by the entry point before Hydra composes."""

import os

from omegaconf import OmegaConf

# the launch directory as an absolute path, usable where ${hydra:...} is not set yet (hydra.run.dir)
OmegaConf.register_new_resolver("dataeff.cwd", os.getcwd, use_cache=True, replace=True)
