"""The explanations as a page the MLflow UI's artifact view shows (one self-contained HTML file):
each example's tokens shaded by their attribution (green: towards the predicted class, red:
against it), with its given and predicted labels and the probability, under the faithfulness
verdict and each class's most attributed tokens."""

from __future__ import annotations

import html

import pandas as pd

STYLE = """body{font-family:system-ui,sans-serif;max-width:60em;margin:1em auto;color:#222}
.example{margin:.6em 0;padding:.5em;border:1px solid #ddd;border-radius:4px;line-height:1.8}
.meta{font-size:.85em;color:#555;margin-bottom:.3em}.wrong{color:#b00}
.tok{padding:1px 2px;margin:0 1px;border-radius:2px}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:2px 6px;font-size:.9em}"""


def shade(score: float, scale: float) -> str:
    """A background for a token: its attribution relative to the example's largest."""
    alpha = min(1.0, abs(score) / scale) if scale > 0 else 0.0
    rgb = "0,150,0" if score >= 0 else "200,0,0"
    return f"background:rgba({rgb},{alpha:.2f})"


def example_html(example: pd.DataFrame) -> str:
    """One example (rows of the long table: its tokens in order) as a block."""
    first = example.iloc[0]
    scale = float(example["attribution"].abs().max())
    wrong = first["label"] not in ("?", first["predicted"])  # "?": a text given without its label
    meta = (f"{html.escape(str(first['group']))} · label <b>{html.escape(str(first['label']))}</b> · "
            f"predicted <b class='{'wrong' if wrong else ''}'>{html.escape(str(first['predicted']))}</b> "
            f"(p={first['probability']:.3f}) · example {first['example']}")
    # spaces between the tokens, so that long texts wrap in the MLflow UI's narrow artifact view
    tokens = " ".join(f"<span class='tok' style='{shade(row.attribution, scale)}' "
                     f"title='{row.attribution:+.4f}'>{html.escape(row.token)}</span>"
                     for row in example.itertuples())
    anchor = f"example-{first['example']}"  # explanations.html#example-<id> links to it
    return f"<div class='example' id='{anchor}'><div class='meta'>{meta}</div>{tokens}</div>"


def class_tokens_html(table: pd.DataFrame) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(r.predicted))}</td><td>{html.escape(r.token)}</td>"
                   f"<td>{r.mean_attribution:+.4f}</td><td>{r.count}</td></tr>" for r in table.itertuples())
    return ("<table><tr><th>predicted class</th><th>token</th><th>mean attribution</th><th>texts</th></tr>"
            f"{rows}</table>")


def page(title: str, summary: list[str], shown: pd.DataFrame, class_tokens: pd.DataFrame) -> str:
    """`shown`: the long table of the examples on the page (example, group, label, predicted,
    probability, position, token, attribution)."""
    blocks = "".join(example_html(rows) for _, rows in shown.groupby("example", sort=False))
    lines = "".join(f"<li>{html.escape(line)}</li>" for line in summary)
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1><ul>{lines}</ul>"
            f"<h2>Examples</h2><p>Shading: a token's Integrated Gradients attribution to the predicted "
            f"class's probability, green towards it, red against it (hover for the value).</p>{blocks}"
            f"<h2>Most attributed tokens per predicted class</h2>{class_tokens_html(class_tokens)}"
            "</body></html>")
