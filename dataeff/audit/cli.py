"""`dataeff-audit`: `dataeff-train task=audit`, with `--write-clean DIR` for audit.write_clean=DIR.

    dataeff-audit data=sst2
    dataeff-audit data=labelled data.train.path=train.tsv data.test.path=test.tsv --write-clean clean/
"""

from __future__ import annotations

import sys

from dataeff.app import cli
from dataeff.overrides import quote


def audit_argv(args: list[str]) -> list[str]:
    """The Hydra overrides `dataeff-audit ARGS` stands for."""
    overrides, rest = ["task=audit"], list(args)
    while rest:
        arg = rest.pop(0)
        if arg == "--write-clean" and rest:
            overrides.append(f"audit.write_clean={quote(rest.pop(0))}")
        elif arg.startswith("--write-clean="):
            overrides.append(f"audit.write_clean={quote(arg.split('=', 1)[1])}")
        else:
            overrides.append(arg)
    return overrides


def main() -> None:
    sys.argv = [sys.argv[0], *audit_argv(sys.argv[1:])]
    cli()
