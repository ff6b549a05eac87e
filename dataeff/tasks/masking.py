"""Dynamic masking for masked-LM training (BERT's 80/10/10 rule), drawn fresh for every batch."""

from __future__ import annotations

import math

import torch

from dataeff.errors import UserError

IGNORE = -100  # label of positions that carry no loss


def slots_per_row(length: int, prob: float) -> int:
    """How many targets a row of `length` positions may hold when every batch must have the same
    shape (a compiled model): the expected count plus four standard deviations, so that a full row
    draws more, and loses the excess, once in 10,000 to 30,000 rows (binomial tails, 32 to 512)."""
    mean = prob * length
    return min(length, math.ceil(mean + 4 * math.sqrt(mean * (1 - prob))))


class Masker:
    """Choose `prob` of the real (non-special, non-padding) tokens; of those, 80% become
    [MASK], 10% a random ordinary token, 10% stay. Labels are -100 everywhere else. With
    `static`, a row keeps at most `slots_per_row` targets (the first ones)."""

    def __init__(self, mask_token_id: int, special_ids: list[int], vocab_size: int,
                 prob: float = 0.15, static: bool = False):
        if not 0 < prob < 1:
            raise UserError(f"task.mask_prob={prob} is outside (0, 1); BERT uses "
                            "task.mask_prob=0.15.")
        self.mask_token_id, self.vocab_size, self.prob, self.static = mask_token_id, vocab_size, prob, static
        self.special_ids = torch.tensor(sorted(set(special_ids)))
        ordinary = torch.ones(vocab_size, dtype=torch.bool)
        ordinary[self.special_ids] = False
        self.ordinary_ids = ordinary.nonzero().squeeze(1)  # random replacements are real tokens

    def __call__(self, input_ids: torch.Tensor, generator: torch.Generator | None = None):
        """Return (masked input ids, labels); `input_ids` is left untouched."""
        device = input_ids.device
        maskable = ~torch.isin(input_ids, self.special_ids.to(device))
        draw = torch.rand(input_ids.shape, device=device, generator=generator)
        chosen = (draw < self.prob) & maskable
        if not chosen.any() and maskable.any():  # a batch with no target would give a NaN loss
            chosen.view(-1)[maskable.view(-1).nonzero()[0]] = True
        if self.static:
            chosen &= chosen.cumsum(1) <= slots_per_row(input_ids.shape[1], self.prob)
        labels = torch.where(chosen, input_ids, IGNORE)
        # one more uniform draw splits the chosen tokens 80/10/10
        action = torch.rand(input_ids.shape, device=device, generator=generator)
        masked = input_ids.clone()
        masked[chosen & (action < 0.8)] = self.mask_token_id
        randomize = chosen & (action >= 0.8) & (action < 0.9)
        picks = torch.randint(len(self.ordinary_ids), (int(randomize.sum()),), device=device,
                              generator=generator)
        masked[randomize] = self.ordinary_ids.to(device)[picks]
        return masked, labels
