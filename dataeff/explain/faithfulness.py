"""Do the attributions point at what the model uses? ERASER's comprehensiveness (DeYoung et al.
2020): delete a text's top-k attributed tokens and see how far the predicted class's probability
falls, against deleting k of its tokens at random. Explanations that pass make the probability
fall further than chance does, on the same texts (a one-sided Wilcoxon signed-rank test). The
same holds for an image's patches, deleted by painting them with the baseline image's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from scipy.stats import wilcoxon

Text = tuple[torch.Tensor, torch.Tensor]  # token ids, token type ids
Predict = Callable[[list], torch.Tensor]  # examples -> class probabilities (N, C)
Remove = Callable[[object, torch.Tensor], object]  # an example, positions -> it without those units
ALPHA = 0.05


def without(text: Text, positions: torch.Tensor) -> Text:
    keep = torch.ones(len(text[0]), dtype=torch.bool)
    keep[positions] = False
    return text[0][keep], text[1][keep]


def comprehensiveness(predict: Predict, texts: list, scores: list[torch.Tensor],
                      deletable: list[torch.Tensor], targets: torch.Tensor, fraction: float = 0.2,
                      repeats: int = 5, seed: int = 0, remove: Remove = without) -> pd.DataFrame:
    """Per text (or image): the probability of its target as it is, without its top-k units, and
    without k random ones (the mean of `repeats` draws); k is `fraction` of its deletable units, at
    least 1."""
    generator = torch.Generator().manual_seed(seed)
    top, random = [], []
    for text, score, positions in zip(texts, scores, deletable):
        k = max(1, round(fraction * len(positions)))
        top.append(remove(text, positions[score[positions].argsort(descending=True)[:k]]))
        random += [remove(text, positions[torch.randperm(len(positions), generator=generator)[:k]])
                   for _ in range(repeats)]
    rows = torch.arange(len(texts))
    full = predict(texts)[rows, targets]
    top_p = predict(top)[rows, targets]
    random_p = predict(random)[torch.arange(len(random)), targets.repeat_interleave(repeats)]
    return pd.DataFrame({"probability": full.numpy(), "without_top": top_p.numpy(),
                         "without_random": random_p.view(len(texts), repeats).mean(1).numpy()})


def verdict(table: pd.DataFrame, prefix: str = "explain/") -> tuple[dict[str, float], bool]:
    """The metrics a run logs, and whether the explanations pass (the top-k deletion lowers the
    probability more than the random one, significantly)."""
    top = table["probability"] - table["without_top"]
    random = table["probability"] - table["without_random"]
    gain = top - random
    p = float(wilcoxon(gain, alternative="greater").pvalue) if np.any(gain != 0) else 1.0
    metrics = {f"{prefix}comprehensiveness": float(top.mean()),
               f"{prefix}comprehensiveness_random": float(random.mean()),
               f"{prefix}comprehensiveness_gain": float(gain.mean()),
               f"{prefix}faithfulness_p": p}
    return metrics, bool(gain.mean() > 0 and p < ALPHA)
