"""A trained classifier's view of the unlabelled pool: probabilities, the classifier's input vectors
and MC-dropout samples, computed in batches on the GPU when there is one."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from dataeff.active.acquisition import PoolView
from dataeff.hf import load_local, model_folder
from dataeff.models import pooled  # noqa: F401  (AutoConfig knows mean-pooled classifiers)
from dataeff.models.vectors import Texts, autocast, encode, in_batches, length_order
from dataeff.tokenizer import load_tokenizer


class Scorer:
    """A classifier exported by a dataeff run (`hf_model/`), on the best device there is."""

    def __init__(self, folder: str | Path, max_length: int = 128, batch_size: int = 256):
        folder = model_folder(folder, "the scoring model")
        self.model = load_local(AutoModelForSequenceClassification.from_pretrained, folder, str(folder))
        self.tokenizer = load_tokenizer(folder)
        self.labels = [self.model.config.id2label[i] for i in range(self.model.config.num_labels)]
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model.to(self.device)
        self.max_length, self.batch_size = max_length, batch_size
        self.seconds = 0.0  # time spent scoring, for the run's metrics

    def view(self, pool: Texts, labelled: Texts | None = None, needs: set[str] = frozenset(),
             mc_samples: int = 10) -> PoolView:
        """What a strategy needs of the pool (and the labelled set's vectors, for core-set)."""
        start = time.perf_counter()
        want_vectors = "embeddings" in needs
        view = PoolView(size=len(pool))
        if needs & {"probs", "embeddings"}:
            view.probs, view.embeddings = self.predict(pool, vectors=want_vectors)
        if want_vectors and labelled is not None and len(labelled):
            view.labelled_embeddings = self.predict(labelled, vectors=True)[1]
        if "mc_probs" in needs:
            view.mc_probs = torch.stack([self.predict(pool, dropout=True)[0] for _ in range(mc_samples)])
        self.seconds += time.perf_counter() - start
        return view

    @torch.no_grad()
    def predict(self, texts: Texts, vectors: bool = False, dropout: bool = False):
        """(N, C) probabilities and, with `vectors`, the (N, D) vectors the classifier reads."""
        self.model.train(dropout)
        captured: list[torch.Tensor] = []
        hook = self.model.classifier.register_forward_hook(
            lambda module, args, output: captured.append(args[0].float().cpu())) if vectors else None
        try:
            probs = in_batches(texts, self.batch_size, self._probs)
        finally:
            if hook is not None:
                hook.remove()
        order = length_order(texts)
        return probs, (torch.cat(captured)[torch.argsort(torch.tensor(order))] if captured else None)

    def _probs(self, batch: Texts) -> torch.Tensor:
        encoded = encode(self.tokenizer, batch, self.max_length, self.device)
        with autocast(self.device):
            logits = self.model(**encoded).logits
        return logits.float().softmax(-1).cpu()
