"""`explain=integrated_gradients`: after a classifier's test, its test predictions, a sample of them
attributed to their tokens (and image patches), and what that shows, as files in a folder: a page
(explanations.html), the attributions (explanations.csv), each class's most attributed tokens
(class_tokens.csv) and patches (class_patches.csv), and a summary with the faithfulness verdict
(explanations.md)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
from torch.utils.data import Dataset

from dataeff.errors import UserError
from dataeff.explain.attributions import BASELINES, IMAGE_BASELINES
from dataeff.explain.faithfulness import comprehensiveness, verdict
from dataeff.explain.image_text import ImageTextReader, Normalisation, class_patches
from dataeff.explain.page import page
from dataeff.explain.reader import PathSettings, Reader
from dataeff.explain.text import TextReader, class_tokens
from dataeff.models.fusion import FusionModel

UNITS = {"text": "tokens", "image": "patches"}
CLOSE_ENOUGH = 0.01  # a mean |convergence delta| below this: the steps suffice


@dataclass
class Outcome:
    metrics: dict[str, float]
    faithful: bool
    summary: list[str]


class Explainer:
    """On the page: the `confident_errors` wrong predictions made with the highest probability, the
    `unsure_correct` right ones with the lowest, and `random` others; attributed: those and more
    test examples drawn at random, `max_examples` in all, for the class tokens (a token counts
    where it occurs in `min_count` attributed texts), the class patches and the faithfulness check."""

    def __init__(self, name: str = "integrated_gradients", steps: int = 32, baseline: str = "pad",
                 image_baseline: str = "noise", internal_batch_size: int = 64, confident_errors: int = 5,
                 unsure_correct: int = 5, random: int = 5, max_examples: int = 200, top_tokens: int = 10,
                 min_count: int = 3, deletion_fraction: float = 0.2, deletion_repeats: int = 5,
                 batch_size: int = 16, seed: int = 0):
        check_settings(steps, baseline, image_baseline, max_examples, deletion_fraction, deletion_repeats)
        self.name, self.path = name, PathSettings(steps, baseline, image_baseline, internal_batch_size)
        self.shown = {"confident error": confident_errors, "unsure correct": unsure_correct, "random": random}
        self.max_examples, self.top_tokens, self.min_count = max_examples, top_tokens, min_count
        self.deletion = {"fraction": deletion_fraction, "repeats": deletion_repeats, "seed": seed}
        self.batch_size, self.seed = batch_size, seed

    def reader(self, net: torch.nn.Module, tokenizer, images: tuple[list, list] | None = None) -> Reader:
        """How this net's examples are read: a fusion model's by their images, normalised as its data
        normalised them (`images`: data.image_mean, data.image_std), and texts."""
        if isinstance(net, FusionModel):
            if images is None:
                raise UserError("Explaining an image-text model needs its data's image normalisation "
                                "(data.image_mean, data.image_std).")
            normalisation = Normalisation(*(list(values) for values in images))
            return ImageTextReader(net, tokenizer, normalisation, self.path, self.batch_size, self.seed)
        return TextReader(net, tokenizer, self.path, self.batch_size)

    def explain(self, reader: Reader, examples: Dataset, label_names: list[str], folder: Path,
                ids: list[int] | None = None, shown: str | None = None) -> Outcome:
        """Attribute, check, write the files into `folder`; what to log. `ids`: what the page and
        tables call each example (default: its position); `shown`: a group name to show every
        example under, instead of choosing some (the audit's likely label errors)."""
        items, labels = reader.read(examples)
        probabilities = reader.probabilities(items)
        groups = (self.choose(probabilities, labels) if shown is None
                  else dict.fromkeys(range(len(labels)), shown))
        chosen = list(groups)
        picked, targets = [items[i] for i in chosen], probabilities.argmax(-1)[chosen]
        scores, deltas = reader.attribute(picked, targets)
        metrics, passes = self.check(reader, picked, scores, targets)
        metrics |= {"explain/examples": float(len(chosen)),
                    "explain/convergence_delta": float(deltas.abs().mean())}
        names = ids or list(range(len(items)))
        table = long_table(reader, picked, [names[i] for i in chosen], [groups[i] for i in chosen], scores,
                           labels[chosen], probabilities[chosen], label_names)
        pictures = {names[i]: reader.picture(item, {m: s[n] for m, s in scores.items()})
                    for n, (i, item) in enumerate(zip(chosen, picked)) if groups[i] != "attributed"}
        summary = self.summary(metrics, passes)
        write(folder, table, self, summary, {k: v for k, v in pictures.items() if v})
        return Outcome(metrics, all(passes.values()), summary)

    def check(self, reader: Reader, items: list, scores: dict, targets: torch.Tensor):
        """The faithfulness check per modality (metrics explain/<modality>/... where there are two),
        and whether each modality passes."""
        metrics, passes = {}, {}
        for modality, modality_scores in scores.items():
            deletable = [reader.units(item, modality) for item in items]
            remove = lambda item, positions, m=modality: reader.without(item, m, positions)  # noqa: E731
            table = comprehensiveness(reader.probabilities, items, modality_scores, deletable, targets,
                                      remove=remove, **self.deletion)
            found, passes[modality] = verdict(table, prefix(modality, scores))
            metrics |= found
        if len(scores) > 1:
            metrics["explain/image_share"] = image_share(scores)
        return metrics, passes

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

    def summary(self, metrics: dict[str, float], passes: dict[str, bool]) -> list[str]:
        verdict_line = f"The explanations {said(all(passes.values()))} the faithfulness check"
        deletions = {modality: self.deletion_line(metrics, modality, passes) for modality in passes}
        if len(passes) == 1:
            lines = [f"{verdict_line}: {next(iter(deletions.values()))}"]
        else:
            lines = [f"{verdict_line} (each modality must pass):"]
            lines += [f"{UNITS[m].capitalize()} {said(passes[m])}: {line}"
                      for m, line in deletions.items()]
            lines.append(f"The image carries {metrics['explain/image_share']:.0%} of the attribution (the "
                         "mean share of |attribution|), the text the rest.")
        path = self.path
        start = f"a [{path.baseline.upper()}] text" if "text" in passes else ""
        start += " and " * ("text" in passes and "image" in passes)
        start += f"a {path.image_baseline} image" if "image" in passes else ""
        delta = metrics["explain/convergence_delta"]
        enough = ("near 0: enough steps" if delta < CLOSE_ENOUGH else "the attributions miss the "
                  f"probability's change by that much on average; explain.steps={2 * path.steps} would "
                  "narrow it")
        return [*lines, f"Integrated Gradients: {path.steps} steps from {start}; mean |convergence delta| "
                        f"{delta:.4f} ({enough})."]

    def deletion_line(self, metrics: dict[str, float], modality: str, passes: dict) -> str:
        at, units, examples = prefix(modality, passes), UNITS[modality], int(metrics["explain/examples"])
        return (f"deleting each example's top {self.deletion['fraction']:.0%} attributed {units} lowers "
                f"the predicted class's probability by {metrics[f'{at}comprehensiveness']:.3f} on average, "
                f"deleting as many at random by {metrics[f'{at}comprehensiveness_random']:.3f} (one-sided "
                f"Wilcoxon p={metrics[f'{at}faithfulness_p']:.2g}, {examples} examples).")


def said(passes: bool) -> str:
    return "pass" if passes else "do NOT pass"


def prefix(modality: str, modalities) -> str:
    """Where a modality's faithfulness metrics go: explain/... alone, explain/<modality>/... of two."""
    return "explain/" if len(modalities) == 1 else f"explain/{modality}/"


def check_settings(steps, baseline, image_baseline, max_examples, deletion_fraction,
                   deletion_repeats) -> None:
    """What would fail after the model trained, refused when the job starts."""
    for key, value, known in (("baseline", baseline, BASELINES), ("image_baseline", image_baseline,
                                                                   IMAGE_BASELINES)):
        if value not in known:
            raise UserError(f"explain.{key}={value!r} is not one of {' | '.join(known)}: where Integrated "
                            "Gradients' path starts.")
    counts = {"steps": steps, "max_examples": max_examples, "deletion_repeats": deletion_repeats}
    for key, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise UserError(f"explain.{key}={value} is not a whole number of at least 1.")
    if not 0 < deletion_fraction < 1:
        raise UserError(f"explain.deletion_fraction={deletion_fraction} is not a share between 0 and 1 (the "
                        "faithfulness check deletes that share of each example's tokens or patches, at "
                        "least one).")


def image_share(scores: dict[str, list[torch.Tensor]]) -> float:
    text = torch.stack([s.abs().sum() for s in scores["text"]])
    image = torch.stack([s.abs().sum() for s in scores["image"]])
    return float((image / (text + image).clamp_min(1e-12)).mean())


def long_table(reader: Reader, items: list, names: list, groups: list[str], scores: dict,
               labels: torch.Tensor, probabilities: torch.Tensor, label_names: list[str]) -> pd.DataFrame:
    """One row per token (and patch) of every attributed example."""
    rows = []
    for n, item in enumerate(items):
        predicted = int(probabilities[n].argmax())
        label = label_names[int(labels[n])] if labels[n] >= 0 else "?"
        head = (names[n], groups[n], label, label_names[predicted], float(probabilities[n, predicted]))
        for modality, modality_scores in scores.items():
            units = reader.names(item, modality)
            rows += [(*head, modality, position, unit, value)
                     for position, (unit, value) in enumerate(zip(units, modality_scores[n].tolist()))]
    return pd.DataFrame(rows, columns=["example", "group", "label", "predicted", "probability", "modality",
                                       "position", "token", "attribution"])


def write(folder: Path, table: pd.DataFrame, explainer: Explainer, summary: list[str],
          pictures: dict[int, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table.to_csv(folder / "explanations.csv", index=False)
    tokens = class_tokens(table, explainer.min_count, explainer.top_tokens)
    patches = class_patches(table)
    if (table["modality"] == "text").any():
        tokens.to_csv(folder / "class_tokens.csv", index=False)
    if not patches.empty:
        patches.to_csv(folder / "class_patches.csv", index=False)
    shown = table[table["group"] != "attributed"]
    title = f"Explanations ({explainer.name})"
    (folder / "explanations.html").write_text(page(title, summary, shown, tokens, pictures, patches),
                                              encoding="utf-8")
    (folder / "explanations.md").write_text("".join(f"- {line}\n" for line in summary), encoding="utf-8")
