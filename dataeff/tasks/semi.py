"""Semi-supervised objectives: what a classifier learns from unlabelled text beside its labels.

Both teach the model with its own confident predictions on an unlabelled sentence (the teacher
side, no gradient) and train its prediction on the same sentence, or on a perturbed copy when
`ssl.augment` is set (the student side):

- `PseudoLabel`: self-training (Lee 2013): the teacher's argmax as a hard label, cross-entropy;
- `Consistency`: UDA (Xie et al. 2020): the teacher's sharpened distribution as a soft target,
  KL divergence to the student's prediction on the augmented sentence.

Only predictions at least `threshold` confident teach (confidence masking), and the unlabelled
loss's weight ramps linearly from 0 to `weight` over `ramp_steps` optimizer steps.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class SemiSupervised:
    def __init__(self, threshold: float = 0.9, weight: float = 1.0, ramp_steps: int = 0):
        self.threshold, self.weight, self.ramp_steps = threshold, weight, ramp_steps

    def weight_at(self, step: int) -> float:
        return self.weight * min(1.0, (step + 1) / self.ramp_steps) if self.ramp_steps else self.weight

    def __call__(self, teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                 truth: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The unlabelled loss (mean over the batch, masked examples counting 0) and statistics:
        the share of the batch that taught (`mask_rate`) and, where the true label is known (a
        simulation), how many of those taught the right class (`correct`, `known`)."""
        probs = teacher_logits.detach().float().softmax(-1)
        confidence, guess = probs.max(-1)
        mask = (confidence >= self.threshold).float()
        loss = (self.per_example(probs, student_logits.float()) * mask).mean()
        stats = {"mask_rate": mask.mean()}
        if truth is not None:
            known = (truth >= 0).float() * mask
            stats |= {"correct": ((guess == truth).float() * known).sum(), "known": known.sum()}
        return loss, stats

    def per_example(self, probs: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class PseudoLabel(SemiSupervised):
    name = "pseudo_label"

    def per_example(self, probs, student_logits):
        return F.cross_entropy(student_logits, probs.argmax(-1), reduction="none")


class Consistency(SemiSupervised):
    name = "uda"

    def __init__(self, threshold: float = 0.8, weight: float = 1.0, ramp_steps: int = 0,
                 temperature: float = 0.4):
        super().__init__(threshold, weight, ramp_steps)
        self.temperature = temperature

    def per_example(self, probs, student_logits):
        target = sharpen(probs, self.temperature)
        return (target * (target.clamp_min(1e-12).log() - student_logits.log_softmax(-1))).sum(-1)


def sharpen(probs: torch.Tensor, temperature: float) -> torch.Tensor:
    """p^(1/T), renormalised: T < 1 makes a soft target more confident (UDA's 0.4)."""
    if temperature == 1:
        return probs
    powered = probs.clamp_min(1e-12) ** (1 / temperature)
    return powered / powered.sum(-1, keepdim=True)
