"""The explanations as a page the MLflow UI's artifact view shows (one self-contained HTML file):
each example's tokens shaded by their attribution (green: towards the predicted class, red:
against it) and its image's patches tinted the same way, with its given and predicted labels and
the probability, under the faithfulness verdict and each class's most attributed tokens and
patches."""

from __future__ import annotations

import html
import math

import pandas as pd
import torch

from dataeff.explain.overlay import heatmap_png

STYLE = """body{font-family:system-ui,sans-serif;max-width:60em;margin:1em auto;color:#222}
.example{margin:.6em 0;padding:.5em;border:1px solid #ddd;border-radius:4px;line-height:1.8}
.meta{font-size:.85em;color:#555;margin-bottom:.3em}.wrong{color:#b00}
.tok{padding:1px 2px;margin:0 1px;border-radius:2px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:.9em}
.picture{display:block;margin:.3em 0}.classes{display:flex;gap:1em;flex-wrap:wrap}"""


def shade(score: float, scale: float) -> str:
    """A background for a token: its attribution relative to the example's largest."""
    alpha = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    rgb = "0,150,0" if score >= 0 else "200,0,0"
    return f"background:rgba({rgb},{alpha:.2f})"


def picture_html(png: str | None, alt: str) -> str:
    return f"<img class='picture' alt='{html.escape(alt)}' src='data:image/png;base64,{png}'>" if png else ""


def example_html(example: pd.DataFrame, png: str | None = None) -> str:
    """One example (rows of the long table: its tokens in order, then its patches) as a block."""
    first = example.iloc[0]
    words = example[example["modality"] == "text"]
    scale = float(words["attribution"].abs().max()) if len(words) else 0.0  # the image's are its own
    wrong = first["label"] not in ("?", first["predicted"])  # "?": a text given without its label
    meta = (f"{html.escape(str(first['group']))} · label <b>{html.escape(str(first['label']))}</b> · "
            f"predicted <b class='{'wrong' if wrong else ''}'>{html.escape(str(first['predicted']))}</b> "
            f"(p={first['probability']:.3f}) · example {first['example']}")
    # spaces between the tokens, so that long texts wrap in the MLflow UI's narrow artifact view
    tokens = " ".join(f"<span class='tok' style='{shade(row.attribution, scale)}' "
                     f"title='{row.attribution:+.4f}'>{html.escape(row.token)}</span>"
                     for row in words.itertuples())
    anchor = f"example-{first['example']}"  # explanations.html#example-<id> links to it
    image = picture_html(png, f"example {first['example']}, its patches tinted by attribution")
    return f"<div class='example' id='{anchor}'><div class='meta'>{meta}</div>{image}{tokens}</div>"


def class_tokens_html(table: pd.DataFrame) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(r.predicted))}</td><td>{html.escape(r.token)}</td>"
                   f"<td>{r.mean_attribution:+.4f}</td><td>{r.count}</td></tr>" for r in table.itertuples())
    return ("<table><tr><th>predicted class</th><th>token</th><th>mean attribution</th><th>texts</th></tr>"
            f"{rows}</table>")


def class_patches_html(patches: pd.DataFrame) -> str:
    """Per predicted class, its mean attribution per patch as a tinted grid."""
    if patches.empty:
        return ""
    side = math.isqrt(int(patches["position"].max()) + 1)
    maps = []
    for name, rows in patches.groupby("predicted"):
        grid = torch.zeros(side * side)
        grid[torch.tensor(rows["position"].to_numpy())] = torch.tensor(rows["mean_attribution"].to_numpy(),
                                                                       dtype=torch.float)
        image = picture_html(heatmap_png(grid.view(side, side).float()), f"class {name}'s mean attribution")
        maps.append(f"<figure>{image}<figcaption>{html.escape(str(name))} "
                    f"({int(rows['count'].max())} images)</figcaption></figure>")
    heading = "<h2>Mean attribution per patch, per predicted class</h2>"
    return f"{heading}<div class='classes'>{''.join(maps)}</div>"


def page(title: str, summary: list[str], shown: pd.DataFrame, class_tokens: pd.DataFrame,
         pictures: dict | None = None, class_patches: pd.DataFrame | None = None) -> str:
    """`shown`: the long table of the examples on the page (example, group, label, predicted,
    probability, modality, position, token, attribution); `pictures`: example -> its image with
    the patches tinted (a base64 PNG)."""
    pictures = pictures or {}
    examples = shown.groupby("example", sort=False)
    blocks = "".join(example_html(rows, pictures.get(key)) for key, rows in examples)
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    tokens = (f"<h2>Most attributed tokens per predicted class</h2>{class_tokens_html(class_tokens)}"
              if (shown["modality"] == "text").any() else "")
    patches = class_patches_html(class_patches if class_patches is not None else pd.DataFrame())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{lines}</ul>"
            f"<h2>Examples</h2><p>Shading: a token's (or an image patch's) Integrated Gradients attribution "
            f"to the predicted class's probability, green towards it, red against it (hover a token for "
            f"the value).</p>{blocks}{tokens}{patches}</body></html>")
