"""Label-budget sampler: choose which training examples keep their labels.

Subsets are class-stratified and nested. Each class gets one random permutation that depends
only on the seed and the class, and a budget (a fraction of the data or K shots per class)
takes a prefix of it, so a smaller budget's subset always lies inside a larger one's. That
keeps learning curves over budgets comparable: a bigger budget only adds examples.
"""

import hashlib
from collections.abc import Hashable, Sequence
from numbers import Integral, Real

import numpy as np

from dataeff.errors import UserError


def draw_subset(
    labels: Sequence[Hashable] | np.ndarray,
    *,
    fraction: float | None = None,
    shots: int | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Sorted int64 indices into `labels` (a sequence of hashable class labels: ints or strings).

    Give exactly one budget: `fraction` keeps max(1, round(fraction * n_c)) examples of each
    class c, `shots` keeps exactly `shots` examples of each class.
    """
    _check_budget(fraction, shots, seed)
    groups = _class_groups(labels)
    if shots is not None:
        _check_shots_fit(groups, shots)
    picked = []
    for position, (_, members) in enumerate(groups):
        # Keyed by (seed, class position) only, so every budget sees the same order: nesting.
        order = np.random.default_rng([seed, position]).permutation(len(members))
        take = shots if shots is not None else max(1, round(fraction * len(members)))
        picked.append(members[order[:take]])
    return np.sort(np.concatenate(picked)).astype(np.int64)


def subset_hash(indices: Sequence[int] | np.ndarray) -> str:
    """Short stable hex digest (sha256, first 12 hex chars) of the sorted indices, to log."""
    # Fixed little-endian int64 bytes, so the digest is the same on every platform.
    data = np.sort(np.asarray(indices, dtype=np.int64)).astype("<i8").tobytes()
    return hashlib.sha256(data).hexdigest()[:12]


def _check_budget(fraction: float | None, shots: int | None, seed: int) -> None:
    """Raise UserError unless exactly one valid budget and a usable seed are given."""
    if fraction is not None and shots is not None:
        raise UserError(
            f"Both data.fraction={fraction} and data.shots={shots} are set; "
            "set only one of them (set the other to null)."
        )
    if fraction is None and shots is None:
        raise UserError(
            "No label budget is set; set data.fraction (e.g. data.fraction=0.1) "
            "or data.shots (e.g. data.shots=8)."
        )
    if fraction is not None and not (isinstance(fraction, Real) and 0 < fraction <= 1):
        raise UserError(
            f"data.fraction must be in (0, 1], got {fraction!r}; "
            "use e.g. data.fraction=0.1 for 10% of the labels."
        )
    if shots is not None and not (_is_int(shots) and shots >= 1):
        raise UserError(
            f"data.shots must be a positive integer, got {shots!r}; "
            "use e.g. data.shots=8 for 8 labels per class."
        )
    if not (_is_int(seed) and seed >= 0):
        # numpy's seed sequences reject negative entries with an opaque error.
        raise UserError(f"seed must be a non-negative integer, got {seed!r}; use e.g. seed=0.")


def _is_int(value: object) -> bool:
    """True for Python/numpy integers; bools are excluded as they are almost always a typo."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _class_groups(labels: Sequence[Hashable] | np.ndarray) -> list[tuple[Hashable, np.ndarray]]:
    """(label, int64 member indices) per class, in a seed-independent sorted class order."""
    if len(labels) == 0:
        raise UserError(
            "The label list is empty, so there is nothing to sample; "
            "check that the data config points at a non-empty training split."
        )
    members: dict[Hashable, list[int]] = {}
    for index, label in enumerate(labels):
        members.setdefault(label, []).append(index)
    try:
        classes = sorted(members)
    except TypeError:  # mixed label types (e.g. 1 and "a") do not compare; order by text
        classes = sorted(members, key=str)
    return [(label, np.asarray(members[label], dtype=np.int64)) for label in classes]


def _check_shots_fit(groups: list[tuple[Hashable, np.ndarray]], shots: int) -> None:
    """Raise UserError naming the smallest class if it has fewer than `shots` examples."""
    label, members = min(groups, key=lambda group: len(group[1]))
    if len(members) < shots:
        raise UserError(
            f"data.shots={shots} is more than class {label!r} has ({len(members)} examples); "
            f"use data.shots<={len(members)} or a data.fraction budget instead."
        )
