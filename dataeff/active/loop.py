"""The active-learning loop, in simulation: a pool of texts whose labels an oracle reveals only for
the examples the loop queries. What trains and scores each round is given to it (`rounds.py` runs
each round as a dataeff job), so the loop itself is plain bookkeeping that tests can check."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from dataeff.active.acquisition import NEEDS, PoolView, choose
from dataeff.models.vectors import Texts


class Oracle:
    """The labeller: it holds the pool's labels and hands one out only when that example is
    queried, and never twice."""

    def __init__(self, labels: Sequence):
        self._labels = labels
        self.asked: set[int] = set()

    def reveal(self, positions: Sequence[int]) -> list:
        again = self.asked.intersection(positions)
        if again or len(set(positions)) != len(positions):
            raise RuntimeError(f"pool examples queried twice: {sorted(again)[:10]}")
        self.asked.update(positions)
        return [self._labels[i] for i in positions]


@dataclass
class Query:
    """One queried example: its pool position, the round that asked, the score that chose it."""

    position: int
    round: int
    score: float
    label: object


@dataclass
class Loop:
    """The labelled set as it grows: the initial draw, then one query per round."""

    strategy: str
    pool: Texts
    oracle: Oracle
    query_size: int
    seed: int = 0
    mc_samples: int = 10
    queries: list[Query] = field(default_factory=list)

    @property
    def labelled(self) -> list[int]:
        return [query.position for query in self.queries]

    def unlabelled(self) -> list[int]:
        taken = set(self.labelled)
        return [i for i in range(len(self.pool)) if i not in taken]

    def start(self, size: int, vectors: torch.Tensor | None = None) -> None:
        """Round 0: `size` examples at random, or, given the initial encoder's vectors, the example
        nearest each of `size` k-means centres (a diverse start)."""
        if vectors is None:
            positions = np.random.default_rng([self.seed, 0]).permutation(len(self.pool))[:size]
        else:
            positions = nearest_to_centres(vectors, size, self.seed)
        self._label([int(p) for p in positions], 0, [float("nan")] * len(positions))

    def query(self, scorer, round_: int) -> list[int]:
        """The next `query_size` examples, chosen by the strategy on the scorer's view of the pool
        (`scorer` may be None for a strategy that reads nothing of it: random)."""
        unlabelled, needs = self.unlabelled(), NEEDS[self.strategy]
        view = (scorer.view(self.pool.take(unlabelled), self.pool.take(self.labelled), needs, self.mc_samples)
                if needs else PoolView(size=len(unlabelled)))
        picks, scores = choose(self.strategy, view, self.query_size, [self.seed, round_])
        positions = [unlabelled[int(p)] for p in picks]
        self._label(positions, round_, [float(s) for s in scores])
        return positions

    def _label(self, positions: list[int], round_: int, scores: list[float]) -> None:
        labels = self.oracle.reveal(positions)
        self.queries += [Query(p, round_, s, y) for p, s, y in zip(positions, scores, labels)]


def nearest_to_centres(vectors: torch.Tensor, k: int, seed: int, iterations: int = 20) -> list[int]:
    """k-means (k-means++ start, Lloyd's steps) on the vectors; the distinct point nearest each centre."""
    points = torch.nn.functional.normalize(vectors.float(), dim=1)
    generator = np.random.default_rng(seed)
    centres = [points[int(generator.integers(len(points)))]]
    for _ in range(k - 1):
        squared = torch.cdist(points, torch.stack(centres)).min(1).values.double().numpy() ** 2
        chance = squared / squared.sum() if squared.sum() > 0 else np.full(len(points), 1 / len(points))
        centres.append(points[int(generator.choice(len(points), p=chance))])
    centres = torch.stack(centres)
    for _ in range(iterations):
        nearest = torch.cdist(points, centres).argmin(1)
        for c in range(k):
            members = points[nearest == c]
            if len(members):
                centres[c] = members.mean(0)
    distances, chosen = torch.cdist(centres, points), []
    for c in range(k):
        order = distances[c].argsort().tolist()
        chosen.append(next(i for i in order if i not in chosen))
    return chosen
