"""A text classifier's examples for the explainer: token ids and types, attributed at the token
embeddings, tokens deleted by dropping them; and each predicted class's most attributed tokens."""

from __future__ import annotations

import pandas as pd
import torch
from torch.utils.data import Dataset

from dataeff.data.examples import LabelledCollator
from dataeff.explain.attributions import Attributor, token_arm
from dataeff.explain.faithfulness import Text, without
from dataeff.explain.reader import PathSettings, Reader


class TextReader(Reader):
    modalities = ("text",)

    def __init__(self, net: torch.nn.Module, tokenizer, path: PathSettings, batch_size: int = 16):
        super().__init__(net, path, batch_size)
        self.tokenizer = tokenizer
        self.collate = LabelledCollator(tokenizer.pad_token_id)
        self.special = torch.tensor(tokenizer.all_special_ids)

    def read(self, examples: Dataset) -> tuple[list[Text], torch.Tensor]:
        items = [examples[i] for i in range(len(examples))]
        return [(ids, types) for ids, types, _ in items], torch.tensor([label for *_, label in items])

    def batch(self, items: list[Text]) -> dict[str, torch.Tensor]:
        batch = self.collate([(ids, types, 0) for ids, types in items])
        return {key: value.to(self.device) for key, value in batch.items() if key != "labels"}

    def attributor(self) -> Attributor:
        arm = token_arm(self.net, self.tokenizer, self.path.baseline)
        return Attributor(self.net, [arm], self.path.steps, self.path.internal_batch_size)

    def units(self, item: Text, modality: str) -> torch.Tensor:
        return torch.nonzero(~torch.isin(item[0], self.special)).flatten()

    def without(self, item: Text, modality: str, positions: torch.Tensor) -> Text:
        return without(item, positions)

    def names(self, item: Text, modality: str) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(item[0].tolist())


def class_tokens(table: pd.DataFrame, min_count: int, top: int) -> pd.DataFrame:
    """Per predicted class, the text tokens with the largest mean attribution over the attributed
    texts they occur in (at least `min_count`), each text counted once per token."""
    words = table[(table["modality"] == "text") & ~table["token"].str.fullmatch(r"\[[A-Z]+\]")]
    per_text = words.groupby(["predicted", "token", "example"], as_index=False)["attribution"].sum()
    stats = per_text.groupby(["predicted", "token"]).agg(mean_attribution=("attribution", "mean"),
                                                         count=("example", "nunique")).reset_index()
    stats = stats[stats["count"] >= min_count]
    return (stats.sort_values(["predicted", "mean_attribution"], ascending=[True, False])
            .groupby("predicted").head(top).reset_index(drop=True))
