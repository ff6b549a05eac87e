"""Acquisition functions: which unlabelled examples to label next, from a model's outputs on the pool.

Each strategy looks at a `PoolView` (probabilities, embeddings, MC-dropout samples: never a label)
and returns the `k` pool positions to query, best first, with the score that ranked each:

- `random`: the baseline every other strategy is measured against;
- `least_confidence`, `margin`, `entropy`: uncertainty sampling (Lewis & Gale 1994; Settles 2009);
- `bald`: mutual information between prediction and weights, by MC dropout (Gal et al. 2017);
- `coreset`: greedy k-center on the classifier's input vectors (Sener & Savarese 2018);
- `badge`: k-means++ seeding on gradient embeddings, uncertain and diverse (Ash et al. 2020).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class PoolView:
    """What a strategy may look at, for the N unlabelled examples of the pool."""

    size: int                                        # N
    probs: torch.Tensor | None = None                # (N, C) predicted class probabilities
    embeddings: torch.Tensor | None = None           # (N, D) the classifier's input vectors
    labelled_embeddings: torch.Tensor | None = None  # (L, D) the same for the labelled set
    mc_probs: torch.Tensor | None = None             # (T, N, C) with dropout on (BALD)


Picks = tuple[np.ndarray, np.ndarray]  # pool positions, best first, and their scores
Strategy = Callable[[PoolView, int, np.random.Generator], Picks]


def top_k(scores: torch.Tensor, k: int) -> Picks:
    """The k highest scores; ties go to the earlier position, so a choice is reproducible."""
    values = scores.double().cpu().numpy()
    order = np.lexsort((np.arange(len(values)), -values))[:k]
    return order, values[order]


def entropy_of(probs: torch.Tensor) -> torch.Tensor:
    return -(probs * probs.clamp_min(1e-12).log()).sum(-1)


def random_picks(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    return rng.permutation(view.size)[:k], np.full(k, np.nan)


def least_confidence(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    return top_k(1 - view.probs.max(-1).values, k)


def margin(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    """The closest calls: the smallest gap between the two likeliest classes (scored as -gap)."""
    best_two = view.probs.topk(2, dim=-1).values
    return top_k(best_two[:, 1] - best_two[:, 0], k)


def entropy(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    return top_k(entropy_of(view.probs), k)


def bald(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    """H[mean prediction] - mean H[prediction]: high where the dropout samples disagree."""
    samples = view.mc_probs
    return top_k(entropy_of(samples.mean(0)) - entropy_of(samples).mean(0), k)


def coreset(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    """Greedy k-center: each pick is the pool point farthest from everything labelled or picked."""
    points = view.embeddings.float()
    centres = view.labelled_embeddings
    nearest = (torch.cdist(points, centres.float()).min(1).values if centres is not None and len(centres)
               else torch.full((len(points),), float("inf")))
    picks, scores = [], []
    for _ in range(k):
        pick = int(torch.argmax(nearest))
        picks.append(pick)
        scores.append(float(nearest[pick]))
        nearest = torch.minimum(nearest, torch.cdist(points, points[pick:pick + 1]).squeeze(1))
        nearest[pick] = -1.0  # never twice
    return np.asarray(picks), np.asarray(scores)


def gradient_embeddings(view: PoolView) -> torch.Tensor:
    """BADGE's vectors: the last layer's loss gradient under the predicted label, (p - onehot) x h."""
    probs = view.probs.float()
    residual = probs - torch.nn.functional.one_hot(probs.argmax(-1), probs.shape[-1]).float()
    return (residual.unsqueeze(-1) * view.embeddings.float().unsqueeze(1)).flatten(1)


def badge(view: PoolView, k: int, rng: np.random.Generator) -> Picks:
    """k-means++ seeding on gradient embeddings: the largest gradient first, then each pick drawn
    with probability proportional to its squared distance from the picks so far."""
    points = gradient_embeddings(view)
    first = int(torch.argmax(points.norm(dim=1)))
    picks, scores = [first], [float(points[first].norm() ** 2)]
    squared = torch.cdist(points, points[first:first + 1]).squeeze(1) ** 2
    for _ in range(k - 1):
        weights = squared.double().cpu().numpy()
        weights[picks] = 0.0
        if weights.sum() <= 0:  # every remaining point sits on a pick: any of them will do
            weights = np.ones_like(weights)
            weights[picks] = 0.0
        pick = int(rng.choice(len(weights), p=weights / weights.sum()))
        picks.append(pick)
        scores.append(float(squared[pick]))
        squared = torch.minimum(squared, torch.cdist(points, points[pick:pick + 1]).squeeze(1) ** 2)
    return np.asarray(picks), np.asarray(scores)


STRATEGIES: dict[str, Strategy] = {
    "random": random_picks, "least_confidence": least_confidence, "margin": margin,
    "entropy": entropy, "bald": bald, "coreset": coreset, "badge": badge,
}
# what each strategy reads of the model's view of the pool (random reads nothing: no scoring)
NEEDS = {"random": set(), "least_confidence": {"probs"}, "margin": {"probs"}, "entropy": {"probs"},
         "bald": {"mc_probs"}, "coreset": {"embeddings"}, "badge": {"probs", "embeddings"}}


def choose(name: str, view: PoolView, k: int, seed: int | list[int]) -> Picks:
    """The k pool positions strategy `name` queries (fewer when the pool has fewer)."""
    k = min(k, view.size)
    return STRATEGIES[name](view, k, np.random.default_rng(seed)) if k else (np.empty(0, int), np.empty(0))
