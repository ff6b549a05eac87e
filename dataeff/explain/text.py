"""`explain=integrated_gradients` for a text classifier: after its test, the test predictions, a
sample of them attributed to their tokens, and what that shows, as files in a folder: a page
(explanations.html), the attributions (explanations.csv), each class's most attributed tokens
(class_tokens.csv) and a summary with the faithfulness verdict (explanations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from dataeff.data.examples import LabelledCollator
from dataeff.errors import UserError
from dataeff.explain.attributions import BASELINES, TokenAttributor
from dataeff.explain.faithfulness import Text, comprehensiveness, verdict
from dataeff.explain.page import page


@dataclass
class Outcome:
    metrics: dict[str, float]
    faithful: bool
    summary: list[str]


class TextExplainer:
    """On the page: the `confident_errors` wrong predictions made with the highest probability, the
    `unsure_correct` right ones with the lowest, and `random` others; attributed: those and more
    test examples drawn at random, `max_examples` in all, for the class tokens (a token counts
    where it occurs in `min_count` attributed texts) and the faithfulness check."""

    def __init__(self, name: str = "integrated_gradients", steps: int = 32, baseline: str = "pad",
                 internal_batch_size: int = 64, confident_errors: int = 5, unsure_correct: int = 5,
                 random: int = 5, max_examples: int = 200, top_tokens: int = 10, min_count: int = 3,
                 deletion_fraction: float = 0.2, deletion_repeats: int = 5, batch_size: int = 16,
                 seed: int = 0):
        check_settings(steps, baseline, max_examples, deletion_fraction, deletion_repeats)
        self.name, self.steps, self.baseline = name, steps, baseline
        self.internal_batch_size = internal_batch_size
        self.shown = {"confident error": confident_errors, "unsure correct": unsure_correct, "random": random}
        self.max_examples, self.top_tokens, self.min_count = max_examples, top_tokens, min_count
        self.deletion = {"fraction": deletion_fraction, "repeats": deletion_repeats, "seed": seed}
        self.batch_size, self.seed = batch_size, seed

    @torch.no_grad()
    def predict(self, net, texts: list[Text]) -> torch.Tensor:
        collate, out = LabelledCollator(self.pad_id), []
        for start in range(0, len(texts), self.batch_size):
            batch = collate([(ids, types, 0) for ids, types in texts[start:start + self.batch_size]])
            batch = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
            out.append(net(**batch).logits.float().softmax(-1).cpu())
        return torch.cat(out)

    def explain(self, net, tokenizer, examples: Dataset, label_names: list[str], folder: Path,
                ids: list[int] | None = None, shown: str | None = None) -> Outcome:
        """Attribute, check, write the files into `folder`; what to log. `ids`: what the page and
        tables call each example (default: its position); `shown`: a group name to show every
        example under, instead of choosing some (the audit's likely label errors)."""
        net.eval()
        self.pad_id, self.device = tokenizer.pad_token_id, next(net.parameters()).device
        items = [examples[i] for i in range(len(examples))]
        texts = [(ids, types) for ids, types, _ in items]
        labels = torch.tensor([label for _, _, label in items])
        probabilities = self.predict(net, texts)
        every = dict.fromkeys(range(len(labels)), shown)
        groups = self.choose(probabilities, labels) if shown is None else every
        chosen = list(groups)
        predicted = probabilities.argmax(-1)
        scores, deltas = self.attribute(net, tokenizer, [texts[i] for i in chosen], predicted[chosen])
        special = torch.tensor(tokenizer.all_special_ids)
        deletable = [torch.nonzero(~torch.isin(texts[i][0], special)).flatten() for i in chosen]
        check = comprehensiveness(lambda batch: self.predict(net, batch), [texts[i] for i in chosen], scores,
                                  deletable, predicted[chosen], **self.deletion)
        metrics, faithful = verdict(check)
        metrics |= {"explain/examples": float(len(chosen)),
                    "explain/convergence_delta": float(deltas.abs().mean())}
        table = long_table(tokenizer, texts, chosen, groups, scores, labels, probabilities, label_names)
        table["example"] = [(ids or range(len(texts)))[i] for i in table["example"]]
        tokens = class_tokens(table, self.min_count, self.top_tokens)
        summary = summary_lines(metrics, faithful, self)
        write(folder, table, tokens, summary, self.name)
        return Outcome(metrics, faithful, summary)

    def choose(self, probabilities: torch.Tensor, labels: torch.Tensor) -> dict[int, str]:
        """Example index -> its group, page groups first, then the random rest up to max_examples."""
        confidence, predicted = probabilities.max(-1)
        known = labels >= 0  # dataeff-explain on texts without labels: -1
        wrong = torch.nonzero(known & (predicted != labels)).flatten()
        right = torch.nonzero(known & (predicted == labels)).flatten()
        surest_wrong = wrong[confidence[wrong].argsort(descending=True)][:self.shown["confident error"]]
        least_sure_right = right[confidence[right].argsort()][:self.shown["unsure correct"]]
        groups = {int(i): "confident error" for i in surest_wrong}
        groups |= {int(i): "unsure correct" for i in least_sure_right}
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(self.seed))
        rest = [int(i) for i in order if int(i) not in groups]
        shown_random = self.shown["random"]
        groups |= {i: "random" for i in rest[:shown_random]}
        more = max(0, self.max_examples - len(groups))
        return groups | {i: "attributed" for i in rest[shown_random:shown_random + more]}

    def attribute(self, net, tokenizer, texts: list[Text], targets: torch.Tensor):
        attributor = TokenAttributor(net, tokenizer, self.steps, self.baseline, self.internal_batch_size)
        collate, scores, deltas = LabelledCollator(self.pad_id), [], []
        for start in range(0, len(texts), self.batch_size):
            part = texts[start:start + self.batch_size]
            batch = collate([(ids, types, 0) for ids, types in part])
            batch = {k: v.to(self.device) for k, v in batch.items() if k != "labels"}
            with torch.enable_grad():
                score, delta = attributor(batch, targets[start:start + self.batch_size].to(self.device))
            scores += [row[:len(ids)].float().cpu() for row, (ids, _) in zip(score, part)]
            deltas.append(delta.float().cpu())
        return scores, torch.cat(deltas)


def check_settings(steps, baseline, max_examples, deletion_fraction, deletion_repeats) -> None:
    """What would fail after the model trained, refused when the job starts."""
    if baseline not in BASELINES:
        raise UserError(f"explain.baseline={baseline!r} is not one of {' | '.join(BASELINES)}: the token "
                        "each text token starts from on Integrated Gradients' path.")
    counts = {"steps": steps, "max_examples": max_examples, "deletion_repeats": deletion_repeats}
    for key, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise UserError(f"explain.{key}={value} is not a whole number of at least 1.")
    if not 0 < deletion_fraction < 1:
        raise UserError(f"explain.deletion_fraction={deletion_fraction} is not a share between 0 and 1 (the "
                        "faithfulness check deletes that share of each text's tokens, at least one).")


def long_table(tokenizer, texts, chosen, groups, scores, labels, probabilities, label_names) -> pd.DataFrame:
    """One row per token of every attributed text."""
    rows = []
    for index, score in zip(chosen, scores):
        tokens = tokenizer.convert_ids_to_tokens(texts[index][0].tolist())
        predicted = int(probabilities[index].argmax())
        for position, (token, value) in enumerate(zip(tokens, score.tolist())):
            label = label_names[int(labels[index])] if labels[index] >= 0 else "?"
            rows.append((index, groups[index], label, label_names[predicted],
                         float(probabilities[index, predicted]), position, token, value))
    return pd.DataFrame(rows, columns=["example", "group", "label", "predicted", "probability", "position",
                                       "token", "attribution"])


def class_tokens(table: pd.DataFrame, min_count: int, top: int) -> pd.DataFrame:
    """Per predicted class, the text tokens with the largest mean attribution over the attributed
    texts they occur in (at least `min_count`), each text counted once per token."""
    words = table[~table["token"].str.fullmatch(r"\[[A-Z]+\]")]
    per_text = words.groupby(["predicted", "token", "example"], as_index=False)["attribution"].sum()
    stats = per_text.groupby(["predicted", "token"]).agg(mean_attribution=("attribution", "mean"),
                                                         count=("example", "nunique")).reset_index()
    stats = stats[stats["count"] >= min_count]
    return (stats.sort_values(["predicted", "mean_attribution"], ascending=[True, False])
            .groupby("predicted").head(top).reset_index(drop=True))


def summary_lines(metrics: dict[str, float], faithful: bool, explainer: TextExplainer) -> list[str]:
    share = explainer.deletion["fraction"]
    verdict_line = ("The explanations pass the faithfulness check" if faithful
                    else "The explanations do NOT pass the faithfulness check")
    return [f"{verdict_line}: deleting each text's top {share:.0%} attributed tokens lowers the predicted "
            f"class's probability by {metrics['explain/comprehensiveness']:.3f} on average, deleting as many "
            f"at random by {metrics['explain/comprehensiveness_random']:.3f} (one-sided Wilcoxon p="
            f"{metrics['explain/faithfulness_p']:.2g}, {int(metrics['explain/examples'])} texts).",
            f"Integrated Gradients: {explainer.steps} steps from a [{explainer.baseline.upper()}] baseline; "
            f"mean |convergence delta| {metrics['explain/convergence_delta']:.4f} (near 0: enough steps)."]


def write(folder: Path, table: pd.DataFrame, tokens: pd.DataFrame, summary: list[str], name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "explanations.csv", index=False)
    tokens.to_csv(folder / "class_tokens.csv", index=False)
    shown = table[table["group"] != "attributed"]
    (folder / "explanations.html").write_text(page(f"Explanations ({name})", summary, shown, tokens),
                                              encoding="utf-8")
    lines = "".join(f"- {line}\n" for line in summary)
    (folder / "explanations.md").write_text(lines, encoding="utf-8")
