"""Tests for the label-budget sampler: determinism, stratification, nesting, errors, hashing."""

from itertools import pairwise

import numpy as np
import pytest

from dataeff.data.sampling import draw_subset, subset_hash
from dataeff.errors import UserError

# Imbalanced: 90 of class 0 and 10 of class 1, interleaved so indices do not follow classes.
IMBALANCED = [1 if i % 10 == 3 else 0 for i in range(100)]
FRACTIONS = [0.01, 0.05, 0.1, 0.25, 1.0]
SHOTS = [1, 2, 4, 8]


def class_counts(labels, indices):
    """Number of picked examples per class label."""
    picked = [labels[i] for i in indices]
    return {label: picked.count(label) for label in set(labels)}


@pytest.mark.parametrize("budget", [{"fraction": 0.3}, {"shots": 4}])
def test_same_seed_same_subset(budget):
    first = draw_subset(IMBALANCED, seed=7, **budget)
    second = draw_subset(IMBALANCED, seed=7, **budget)
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("budget", [{"fraction": 0.3}, {"shots": 4}])
def test_different_seeds_differ(budget):
    subsets = {tuple(draw_subset(IMBALANCED, seed=seed, **budget)) for seed in range(5)}
    assert len(subsets) == 5


def test_full_fraction_returns_all_indices_for_any_seed():
    for seed in range(3):
        np.testing.assert_array_equal(
            draw_subset(IMBALANCED, fraction=1.0, seed=seed), np.arange(100)
        )


@pytest.mark.parametrize("budget", [{"fraction": 0.5}, {"shots": 3}])
def test_output_is_sorted_unique_int64(budget):
    indices = draw_subset(IMBALANCED, **budget)
    assert indices.dtype == np.int64
    assert np.all(np.diff(indices) > 0)
    assert indices.min() >= 0
    assert indices.max() < len(IMBALANCED)


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.01, {0: 1, 1: 1}),  # round(0.9)=1, round(0.1)=0 -> floor of 1 keeps class 1
        (0.05, {0: 4, 1: 1}),  # round(4.5)=4 (banker's rounding), round(0.5)=0 -> 1
        (0.1, {0: 9, 1: 1}),
        (0.25, {0: 22, 1: 2}),  # round(22.5)=22, round(2.5)=2
        (0.5, {0: 45, 1: 5}),
        (1.0, {0: 90, 1: 10}),
    ],
)
def test_fraction_is_stratified_per_class(fraction, expected):
    indices = draw_subset(IMBALANCED, fraction=fraction, seed=3)
    assert class_counts(IMBALANCED, indices) == expected


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_fractions_are_nested(seed):
    subsets = [set(draw_subset(IMBALANCED, fraction=f, seed=seed)) for f in FRACTIONS]
    for smaller, larger in pairwise(subsets):
        assert smaller <= larger


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_shots_are_nested(seed):
    subsets = [set(draw_subset(IMBALANCED, shots=k, seed=seed)) for k in SHOTS]
    for smaller, larger in pairwise(subsets):
        assert smaller <= larger


@pytest.mark.parametrize("shots", SHOTS)
def test_shots_gives_exactly_k_per_class(shots):
    indices = draw_subset(IMBALANCED, shots=shots, seed=5)
    assert class_counts(IMBALANCED, indices) == {0: shots, 1: shots}


def test_string_labels():
    labels = ["cat"] * 20 + ["dog"] * 10 + ["emu"] * 5
    assert class_counts(labels, draw_subset(labels, shots=5)) == {"cat": 5, "dog": 5, "emu": 5}
    counts = class_counts(labels, draw_subset(labels, fraction=0.4))
    assert counts == {"cat": 8, "dog": 4, "emu": 2}


def test_numpy_labels_match_list_labels():
    labels = ["b", "a", "c", "a", "b", "c"] * 5
    np.testing.assert_array_equal(
        draw_subset(np.array(labels), shots=2, seed=9), draw_subset(labels, shots=2, seed=9)
    )


def test_mixed_label_types_are_supported():
    labels = [1, "a", 1, "a", 2, "a"]
    assert class_counts(labels, draw_subset(labels, shots=1)) == {1: 1, 2: 1, "a": 1}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fraction": 0.0}, r"data\.fraction must be in \(0, 1\], got 0\.0"),
        ({"fraction": -0.1}, r"data\.fraction must be in \(0, 1\]"),
        ({"fraction": 1.5}, r"use e\.g\. data\.fraction=0\.1 for 10% of the labels"),
        ({"fraction": float("nan")}, r"data\.fraction must be in \(0, 1\]"),
        ({"shots": 0}, r"data\.shots must be a positive integer, got 0"),
        ({"shots": -2}, r"data\.shots must be a positive integer"),
        ({"shots": 2.5}, r"data\.shots must be a positive integer"),
        ({"fraction": 0.1, "shots": 4}, r"set only one of them"),
        ({}, r"set data\.fraction .* or data\.shots"),
        ({"fraction": 0.1, "seed": -1}, r"seed must be a non-negative integer"),
    ],
)
def test_bad_budget_raises_user_error(kwargs, match):
    with pytest.raises(UserError, match=match):
        draw_subset(IMBALANCED, **kwargs)


def test_too_many_shots_names_class_and_count():
    labels = ["cat"] * 20 + ["dog"] * 3
    with pytest.raises(UserError, match=r"class 'dog' has \(3 examples\).*data\.shots<=3"):
        draw_subset(labels, shots=5)


@pytest.mark.parametrize("labels", [[], np.array([], dtype=np.int64)])
def test_empty_labels_raise_user_error(labels):
    with pytest.raises(UserError, match="label list is empty"):
        draw_subset(labels, fraction=0.5)


def test_subset_hash_is_stable_and_short():
    digest = subset_hash([0, 5, 9])
    assert digest == subset_hash(np.array([0, 5, 9], dtype=np.int32))
    assert digest == "323f1f18f426"  # pinned so a change in the hashing scheme is noticed


def test_subset_hash_is_order_insensitive_and_content_sensitive():
    assert subset_hash([9, 0, 5]) == subset_hash([0, 5, 9])
    assert subset_hash([0, 5, 9]) != subset_hash([0, 5, 8])
