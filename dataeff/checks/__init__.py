"""Everything checked before a run exists: a mistake gets one paragraph that names the fix.

- `command_line`: before Hydra composes (a group left empty, an unwritable output folder);
- `settings`: the composed config's choices (data that fits the task, budgets, shapes);
- `values`: numbers in range wherever they sit (seeds, learning rates, probabilities);
- `targets`: every `_target_`'s keyword arguments, so a misspelt setting is named, not a traceback.
"""

from dataeff.checks.command_line import CONFIG_DIR, WritableOutputs, check_command_line
from dataeff.checks.settings import check_settings, pretraining_overrides

__all__ = ["CONFIG_DIR", "WritableOutputs", "check_command_line", "check_settings", "pretraining_overrides"]
