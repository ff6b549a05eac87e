"""Integrated Gradients (Sundararajan et al. 2017) over a text classifier's token embeddings, with
captum's `LayerIntegratedGradients`: each token's share of the predicted class's probability, from a
baseline where every text token is [PAD] (or [MASK]) and [CLS], [SEP] and positions stay."""

from __future__ import annotations

import torch
from captum.attr import LayerIntegratedGradients

BASELINES = ("pad", "mask")


class TokenAttributor:
    """`__call__(batch, targets)`: per token of each text, its attribution to the probability of
    `targets` (summed over the embedding), and per text the convergence delta (the attributions'
    sum minus the probability's change from the baseline: near 0 when `steps` suffice)."""

    def __init__(self, net: torch.nn.Module, tokenizer, steps: int = 32, baseline: str = "pad",
                 internal_batch_size: int = 64):
        self.net, self.steps, self.internal_batch_size = net, steps, internal_batch_size
        self.reference = tokenizer.pad_token_id if baseline == "pad" else tokenizer.mask_token_id
        self.kept = torch.tensor(sorted({tokenizer.cls_token_id, tokenizer.sep_token_id}))
        self.attributor = LayerIntegratedGradients(self.probabilities, net.get_input_embeddings())

    def probabilities(self, input_ids, attention_mask, token_type_ids) -> torch.Tensor:
        logits = self.net(input_ids=input_ids, attention_mask=attention_mask,
                          token_type_ids=token_type_ids).logits
        return logits.float().softmax(-1)

    def baseline(self, input_ids: torch.Tensor) -> torch.Tensor:
        """The input with its text tokens replaced: special tokens and padding stay as they are."""
        keep = torch.isin(input_ids, self.kept.to(input_ids.device))
        return torch.where(keep, input_ids, torch.full_like(input_ids, self.reference))

    def __call__(self, batch: dict[str, torch.Tensor], targets: torch.Tensor):
        ids = batch["input_ids"]
        attributions, delta = self.attributor.attribute(
            inputs=ids, baselines=self.baseline(ids), target=targets,
            additional_forward_args=(batch["attention_mask"], batch["token_type_ids"]),
            n_steps=self.steps, internal_batch_size=self.internal_batch_size, return_convergence_delta=True)
        scores = attributions.sum(-1) * batch["attention_mask"]  # padding attributes nothing
        return scores.detach(), delta.detach()
