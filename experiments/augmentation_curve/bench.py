"""Benchmark: the augmentation_curve study on SST-2, timed, with its report table printed.

    python experiments/augmentation_curve/bench.py                          # the whole study (long)
    python experiments/augmentation_curve/bench.py data.data_seed=0 init=scratch data.fraction=0.072,1.0

Needs ../shared/data/sst2 (or $DATAEFF_SST2); without it, says so and exits 0.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from study_bench import run_study  # noqa: E402

REFERENCE = ("Literature: EDA +3.0 points at 500 sentences and +0.8 with full data from scratch "
             "(Wei & Zou 2019); about no gain for pretrained encoders (Longpre et al. 2020)")

if __name__ == "__main__":
    sys.exit(run_study("augmentation_curve", sys.argv[1:], REFERENCE))
