"""Rank 0's resolved config: what it holds, and which file another rank reads."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from dataeff.stages.resolved import (
    ENV,
    LAUNCH,
    RESOLVED,
    digest,
    forget_handed_down,
    read_resolved,
    values,
    write_resolved,
)


def test_values_resolve_what_they_can_and_keep_the_rest_as_written():
    cfg = OmegaConf.create({"a": 1, "b": "${a}", "c": "${nowhere.x}", "d": ["${a}", "${nowhere}"]})
    assert values(cfg) == {"a": 1, "b": 1, "c": "${nowhere.x}", "d": [1, "${nowhere}"]}


def test_another_rank_reads_the_file_its_own_launch_wrote_never_a_stale_one(tmp_path, monkeypatch):
    """A folder handed down by an earlier job of this process (its launch token differs) is passed
    over for the job's own folder, where rank 0 of this launch wrote."""
    stale, own = tmp_path / "earlier", tmp_path / "job"
    cfg = OmegaConf.create({"paths": {"output_dir": str(own)}, "seed": 3})
    monkeypatch.setattr(os, "getpid", lambda: os.getppid())  # this process plays the rank 0 that started us
    write_resolved(cfg)
    assert os.environ[ENV] == str(own.resolve())
    stale.mkdir()
    (stale / RESOLVED).write_text("seed: 99\n")
    (stale / LAUNCH).write_text("pid=1")
    monkeypatch.setenv(ENV, str(stale))
    read = read_resolved(own, rank=1, wait_s=5)
    assert read.seed == 3 and digest(read) == digest(cfg)
    forget_handed_down()
    assert ENV not in os.environ
