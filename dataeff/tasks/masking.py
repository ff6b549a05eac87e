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
        """Return (masked input ids, labels); `input_ids` is left untouched. Only tensor operations
        of fixed shapes: on a GPU nothing waits for the device (no count or `any` read back)."""
        device = input_ids.device
        special, ordinary = self._ids_on(device)
        maskable = ~torch.isin(input_ids, special)
        draw = torch.rand(input_ids.shape, device=device, generator=generator)
        chosen = (draw < self.prob) & maskable
        # a batch with no target would give a NaN loss: then its first maskable token is one
        first = torch.arange(maskable.numel(), device=device) == maskable.view(-1).byte().argmax()
        chosen |= first.view_as(chosen) & maskable & ~chosen.any()
        if self.static:
            chosen &= chosen.cumsum(1) <= slots_per_row(input_ids.shape[1], self.prob)
        labels = torch.where(chosen, input_ids, IGNORE)
        # one more uniform draw splits the chosen tokens 80/10/10
        action = torch.rand(input_ids.shape, device=device, generator=generator)
        picks = torch.randint(len(ordinary), input_ids.shape, device=device, generator=generator)
        replacement = ordinary[picks]
        masked = torch.where(chosen & (action < 0.8), self.mask_token_id, input_ids)
        masked = torch.where(chosen & (action >= 0.8) & (action < 0.9), replacement, masked)
        return masked, labels

    def _ids_on(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The special and ordinary ids on `device`, copied there once (a copy a step would wait)."""
        if self.special_ids.device != device:
            self.special_ids, self.ordinary_ids = self.special_ids.to(device), self.ordinary_ids.to(device)
        return self.special_ids, self.ordinary_ids
