"""Benchmark: the transfer_curve study on SST-2, timed, with its report table printed.

    python experiments/transfer_curve/bench.py                      # the whole study (~1-2 h on 2 cores)
    python experiments/transfer_curve/bench.py data.data_seed=0     # any dataeff-train override narrows it

Needs ../shared/data/sst2 (or $DATAEFF_SST2); without it, says so and exits 0.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study_bench import run_study  # noqa: E402

# TF-IDF (1-2 grams) + logistic regression on the same test set, from ../shared/data/README.md
REFERENCE = ("Reference, TF-IDF + logistic regression on the same test set: "
             "57.9 ± 2.5 / 69.5 ± 0.7 / 81.3% at 1 / 10 / 100% of the labels")

if __name__ == "__main__":
    sys.exit(run_study("transfer_curve", sys.argv[1:], REFERENCE))
