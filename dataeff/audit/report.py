"""The audit as files a person reads: audit.md (a summary with the worst cases), a CSV per kind
of finding (with each row's line in its file) and a PNG of the label and length distributions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dataeff.audit.findings import Findings
from dataeff.report.render import markdown_table

SHOWN = 10  # cases per section in audit.md; the CSVs hold them all


def write_files(findings: Findings, folder: Path, lines) -> list[Path]:
    """audit.md, the CSVs and the PNG in `folder`; `lines(split, row)` is a row's line in its file."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = {"exact_duplicates.csv": with_lines(findings.exact, lines, "split", "row"),
              "near_duplicates.csv": with_lines(with_lines(findings.near, lines, "split_a", "row_a"),
                                                lines, "split_b", "row_b"),
              "label_issues.csv": with_lines(findings.label_issues.assign(split="train"), lines, "split",
                                             "row"),
              "leakage.csv": findings.leaks, "balance.csv": findings.balance.reset_index(),
              "lengths.csv": findings.lengths}
    paths = []
    for name, table in tables.items():
        table.to_csv(folder / name, index=False)
        paths.append(folder / name)
    (folder / "audit.md").write_text(markdown(findings, tables), encoding="utf-8")
    plot(findings, folder / "audit.png")
    return [folder / "audit.md", folder / "audit.png", *paths]


def with_lines(table: pd.DataFrame, lines, split: str, row: str) -> pd.DataFrame:
    line = "line" if split == "split" else f"line_{split[-1]}"
    numbers = [lines(s, r) for s, r in zip(table[split], table[row])]
    return table.assign(**{line: pd.array(numbers, dtype="Int64")})


def markdown(findings: Findings, tables: dict[str, pd.DataFrame]) -> str:
    sizes = ", ".join(f"{split} {size:,}" for split, size in findings.sizes.items())
    out = [f"# Data audit ({sizes})", "", *summary(findings), ""]
    sections = [("Leakage between splits", findings.leaks),
                ("Exact duplicates (after normalising case and whitespace)", tables["exact_duplicates.csv"]),
                ("Near duplicates (word-shingle Jaccard)", tables["near_duplicates.csv"]),
                ("Likely label errors (out-of-fold logistic regression, cleanlab's confident learning)",
                 tables["label_issues.csv"]),
                ("Labels per split", findings.balance.reset_index()),
                ("Words per example", findings.lengths)]
    for title, table in sections:
        shown = table.head(SHOWN)
        more = f" (the first {SHOWN} of {len(table)}; all in the CSV)" if len(table) > SHOWN else ""
        out += [f"## {title}{more}", "", frame_markdown(shown) if len(shown) else "None.", ""]
    return "\n".join(out)


def summary(findings: Findings) -> list[str]:
    lines = [f"- {row.exact} {row.split} examples have an exact copy in {row.earlier} and {row.near} a near "
             f"copy ({row.share:.1%} of {row.split})" for row in findings.leaks.itertuples()]
    conflicts = findings.metrics()["audit/label_conflicts"]
    lines.append(f"- {len(findings.exact)} examples share their text with another; {int(conflicts)} such "
                 "groups carry different labels")
    lines.append(f"- {len(findings.label_issues)} training labels are likely wrong")
    for split, labels in findings.only_in_one.items():
        lines.append(f"- labels only in {split}: {', '.join(map(str, labels))}")
    return lines


def frame_markdown(table: pd.DataFrame) -> str:
    cells = [[str(value).replace("|", "\\|") for value in row] for row in table.itertuples(index=False)]
    return markdown_table([str(column) for column in table.columns], cells)


def plot(findings: Findings, path: Path) -> None:
    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    labels, words = figure.subplots(1, 2)
    (findings.balance / findings.balance.sum()).plot.bar(ax=labels, title="Label share per split")
    labels.set_ylabel("share of the split")
    findings.lengths.set_index("split")[["min", "median", "p95", "max"]].plot.bar(
        ax=words, title="Words per example")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
