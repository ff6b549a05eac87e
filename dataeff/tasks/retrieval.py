"""Cross-modal retrieval scores of an image-text embedding space, and what random ranking scores.

Captions repeat (easy-VQA has 24 for 3,000 pictures; COCO-style data has several per image), so
texts are ranked as distinct captions: image-to-text ranks an image's own caption among all
distinct captions; text-to-image ranks, for each distinct caption, the best-placed of the images
that carry it among all images (a hit at K: any of them in the top K). A tie counts against the
query. Recall@K is the share of queries whose answer is in the top K, the median
rank is 1-based. The random reference is the same recall under a uniformly random ranking, so a
score can be read against it (1/number of candidates at K=1 with one answer per query).
"""

from __future__ import annotations

from math import comb

import torch

KS = (1, 5, 10)


def retrieval_scores(images: torch.Tensor, captions: torch.Tensor, caption_of_image: torch.Tensor,
                     ks=KS) -> dict[str, float]:
    """`images` (N, D) and `captions` (C, D): unit-norm embeddings, one row per distinct caption;
    `caption_of_image` (N,): the index of each image's caption. Keys: i2t_recall_at_K,
    t2i_recall_at_K, their random references chance_i2t_recall_at_K and chance_t2i_recall_at_K (the
    name reports read references by), i2t_median_rank and t2i_median_rank."""
    similarity = images.float() @ captions.float().T  # (N, C)
    relevant = caption_of_image[:, None] == torch.arange(len(captions), device=images.device)  # (N, C)
    own = similarity[relevant]  # each image's similarity to its own caption (one per row)
    # 0-based ranks, a tie counted against the query: collapsed embeddings score as chance, not 1.0
    i2t_rank = ((similarity >= own[:, None]) & ~relevant).sum(1)  # of each image's caption
    best = similarity.masked_fill(~relevant, float("-inf")).max(0).values  # (C,)
    t2i_rank = ((similarity >= best[None, :]) & ~relevant).sum(0)  # of each caption's best-placed image
    n, per_caption = len(images), relevant.sum(0).tolist()
    scores = {"i2t_median_rank": float(i2t_rank.float().median() + 1),
              "t2i_median_rank": float(t2i_rank.float().median() + 1)}
    for k in ks:
        scores[f"i2t_recall_at_{k}"] = float((i2t_rank < k).float().mean())
        scores[f"t2i_recall_at_{k}"] = float((t2i_rank < k).float().mean())
        scores[f"chance_i2t_recall_at_{k}"] = min(k, len(captions)) / len(captions)
        scores[f"chance_t2i_recall_at_{k}"] = sum(random_hit(n, r, k) for r in per_caption) / len(captions)
    return scores


def random_hit(candidates: int, relevant: int, k: int) -> float:
    """The chance that a random ranking of `candidates` puts one of `relevant` in its top k."""
    k = min(k, candidates)
    return 1 - comb(candidates - relevant, k) / comb(candidates, k)


def caption_index(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For per-image caption keys (N,), (the row of each distinct caption's first image, the index of
    each image's caption among them)."""
    distinct, index = torch.unique(keys, return_inverse=True)
    first = torch.full((len(distinct),), len(keys), dtype=torch.long, device=keys.device)
    first.scatter_reduce_(0, index, torch.arange(len(keys), device=keys.device), reduce="amin")
    return first, index


def text_keys(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """An int64 key per text from its token ids (equal texts, equal keys), comparable across
    batches and ranks whatever their padding."""
    ids = input_ids.long() * attention_mask.long()
    powers = torch.full_like(ids[0], 1_000_003).cumprod(0)  # wraps around in int64: a hash
    return (ids * powers).sum(1)
