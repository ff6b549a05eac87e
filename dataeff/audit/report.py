"""The audit as files a person reads: audit.md (a summary with the worst cases), a CSV per kind
of finding (with each row's line in its file) and a PNG of the label and length distributions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dataeff.audit.findings import Findings
from dataeff.report.markdown import markdown_table

SHOWN = 10  # cases per section in audit.md; the CSVs hold them all


SECTIONS = {  # CSV -> the section of audit.md that shows its worst cases
    "leakage.csv": "Leakage between splits",
    "exact_duplicates.csv": "Exact duplicates (after normalising case and whitespace)",
    "near_duplicates.csv": "Near duplicates (word-shingle Jaccard)",
    "label_issues.csv": "Likely label errors (out-of-fold logistic regression, cleanlab)",
    "unreadable_images.csv": "Images that cannot be read",
    "image_copies.csv": "Copies of an image (pHash distance)",
    "balance.csv": "Labels per split",
    "lengths.csv": "Words per example",
    "image_sizes.csv": "Image sizes",
}


def write_files(findings: Findings, folder: Path, lines) -> None:
    """audit.md, the CSVs and the PNG in `folder`; `lines(split, row)` is a row's line in its file."""
    folder.mkdir(parents=True, exist_ok=True)
    tables = csv_tables(findings, lines)
    for name, table in tables.items():
        table.to_csv(folder / name, index=False)
    (folder / "audit.md").write_text(markdown(findings, tables), encoding="utf-8")
    plot(findings, folder / "audit.png")


def csv_tables(findings: Findings, lines) -> dict[str, pd.DataFrame]:
    both_lines = lambda table: with_lines(with_lines(table, lines, "split_a", "row_a"),  # noqa: E731
                                          lines, "split_b", "row_b")
    tables = {"leakage.csv": findings.leaks,
              "exact_duplicates.csv": with_lines(findings.exact, lines, "split", "row"),
              "near_duplicates.csv": both_lines(findings.near),
              "label_issues.csv": with_lines(findings.label_issues.assign(split="train"), lines, "split",
                                             "row"),
              "balance.csv": findings.balance.reset_index(), "lengths.csv": findings.lengths}
    if len(findings.image_sizes):
        tables |= {"unreadable_images.csv": with_lines(findings.unreadable, lines, "split", "row"),
                   "image_copies.csv": both_lines(findings.image_copies),
                   "image_sizes.csv": findings.image_sizes}
    return tables


def with_lines(table: pd.DataFrame, lines, split: str, row: str) -> pd.DataFrame:
    line = "line" if split == "split" else f"line_{split[-1]}"
    numbers = [lines(s, r) for s, r in zip(table[split], table[row])]
    return table.assign(**{line: pd.array(numbers, dtype="Int64")})


def markdown(findings: Findings, tables: dict[str, pd.DataFrame]) -> str:
    sizes = ", ".join(f"{split} {size:,}" for split, size in findings.sizes.items())
    out = [f"# Data audit ({sizes})", "", *summary(findings), ""]
    for name, table in tables.items():
        shown = table.head(SHOWN)
        more = f" (the first {SHOWN} of {len(table)}; all in {name})" if len(table) > SHOWN else ""
        out += [f"## {SECTIONS[name]}{more}", "", frame_markdown(shown) if len(shown) else "None.", ""]
    return "\n".join(out)


def summary(findings: Findings) -> list[str]:
    lines = [f"- {row.exact} {row.split} examples have an exact copy in {row.earlier} and {row.near} a near "
             f"copy ({row.share:.1%} of {row.split})" for row in findings.leaks.itertuples()]
    metrics = findings.metrics()
    if len(findings.lengths):
        lines.append(f"- {len(findings.exact)} examples share their text with another; "
                     f"{int(metrics['audit/label_conflicts'])} such groups carry different labels")
        lines.append(f"- {len(findings.label_issues)} training labels are likely wrong")
    if len(findings.image_sizes):
        lines.append(f"- {len(findings.unreadable)} images cannot be read; {len(findings.image_copies)} "
                     "pairs of examples show the same picture in different files "
                     f"({int(metrics['audit/test_image_in_train'])} test examples with one in train)")
    for split, labels in findings.only_in_one.items():
        lines.append(f"- labels only in {split}: {', '.join(map(str, labels))}")
    return lines


def frame_markdown(table: pd.DataFrame) -> str:
    cells = [[str(value).replace("|", "\\|") for value in row] for row in table.itertuples(index=False)]
    return markdown_table([str(column) for column in table.columns], cells)


def plot(findings: Findings, path: Path) -> None:
    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    labels, sizes = figure.subplots(1, 2)
    (findings.balance / findings.balance.sum()).plot.bar(ax=labels, title="Label share per split")
    labels.set_ylabel("share of the split")
    if len(findings.lengths):
        findings.lengths.set_index("split")[["min", "median", "p95", "max"]].plot.bar(
            ax=sizes, title="Words per example")
    else:
        extent = ["min_width", "max_width", "min_height", "max_height"]
        findings.image_sizes.set_index("split")[extent].plot.bar(ax=sizes, title="Image sizes (pixels)")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
