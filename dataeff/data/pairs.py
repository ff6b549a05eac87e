"""SetFit's training pairs (Tunstall et al. 2022): two labelled examples, similar when they share a
class. Which pairs are drawn is setfit's own `ContrastiveDataset`, over the examples' positions, so
the token ids come from the labelled split as it is cached (batches: `examples.PairCollator`). The
data module gets it as `pairs` (a partial), so only task=setfit loads setfit."""

from __future__ import annotations

import torch
from setfit.sampler import ContrastiveDataset
from torch.utils.data import Dataset

from dataeff.data.examples import LabelledExamples
from dataeff.data.online import OnlineTexts
from dataeff.data.order import split_key
from dataeff.errors import UserError

SAMPLINGS = ("oversampling", "undersampling", "unique")
MAX_EXAMPLES = 4_000  # 8M candidate pairs, as Python dicts in setfit's sampler: about 2 GB


class SetFitPairs(Dataset):
    """Pairs of `examples` with a target cosine similarity (1: same class, 0: another).

    `iterations` None: every pair once (setfit's sampling: `oversampling` repeats the rarer kind,
    same-class or different-class, until both are as many; `undersampling` cuts the commoner;
    `unique` keeps them as they come); N: N same-class and N different-class pairs per example, as
    the SetFit paper's runs (20). `max_pairs` caps the distinct pairs drawn (-1: no cap). SetFit is
    for few labels: setfit's sampler enumerates every pair of the examples first, so more than
    `MAX_EXAMPLES` are refused."""

    def __init__(self, examples: LabelledExamples | OnlineTexts, iterations: int | None = None,
                 sampling: str = "oversampling", max_pairs: int = -1):
        if sampling not in SAMPLINGS:
            raise UserError(f"data.pairs.sampling={sampling!r} is not one of {' | '.join(SAMPLINGS)}: how "
                            "SetFit balances same-class and different-class pairs.")
        labels = torch.as_tensor(examples.labels).tolist()
        if len(set(labels)) < 2:
            raise UserError("SetFit learns from pairs of examples of different classes, and the labelled "
                            "subset has one class only: raise data.shots or data.fraction.")
        if len(labels) > MAX_EXAMPLES:
            count, pairs = f"{len(labels):,}", f"{len(labels) ** 2 // 2:,}"
            raise UserError(f"task=setfit pairs every labelled example with every other, and this subset has "
                            f"{count} ({pairs} pairs): SetFit is for few labels. Choose a budget of at most "
                            f"{MAX_EXAMPLES:,} (data.shots=64, data.fraction=...), or task=classify for "
                            "this many.")
        drawn = ContrastiveDataset(list(range(len(examples))), labels, multilabel=False,
                                   num_iterations=iterations, sampling_strategy=sampling, max_pairs=max_pairs)
        self.examples = examples
        self.pairs = [(pair["sentence_1"], pair["sentence_2"], pair["label"]) for pair in drawn]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> tuple[tuple, tuple, float]:
        draw, index = split_key(key)
        first, second, similarity = self.pairs[index]
        # the pair's draw for both sides: augmented online, each epoch sees new versions
        return self.examples[draw, first], self.examples[draw, second], similarity

    def lengths(self) -> torch.Tensor:
        """Tokens of the longer text of each pair (batches of similar lengths pad little)."""
        tokens = self.examples.lengths()
        return torch.tensor([max(tokens[a], tokens[b]) for a, b, _ in self.pairs])
