"""`dataeff-audit` (`dataeff-train task=audit`): the audit of a labelled data set as an MLflow run,
and, on request, the cleaned files."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig, open_dict

from dataeff.audit.explained import explain_label_issues
from dataeff.audit.findings import Findings, audit
from dataeff.audit.report import write_files
from dataeff.data.labelled import LabelledDataModule
from dataeff.data.rows import line_number
from dataeff.errors import UserError
from dataeff.runs.job_run import JobRun
from dataeff.runs.tags import OBJECTIVE_TAG

log = logging.getLogger(__name__)
SPLITS = ("train", "val", "test")


def run_audit(cfg: DictConfig, datamodule, key: str) -> float:
    """Audit every split the data config names; stop on leakage past `audit.fail_on_leakage`."""
    if not isinstance(datamodule, LabelledDataModule):
        raise UserError("The audit reads labelled data (text, images or both): use data=labelled "
                        "(data.train.path=...), data=sst2, data=easyvqa_answers, data=manifest or "
                        "data=image_folder.")
    tables = {split: datamodule.source_table(split) for split in SPLITS if datamodule.labelled.sources[split]}
    settings = cfg.audit
    with open_dict(cfg):
        cfg.tags["role"] = "audit"
    with JobRun(cfg, None, key) as run:
        findings = audit(tables, settings.near.threshold, settings.near.shingle, settings.labels.folds,
                         settings.labels.seed, cfg.data.max_length, settings.labels.get("encoder"),
                         settings.images.max_distance)
        lines = lambda split, row: line_number(datamodule.labelled.sources[split], int(row))  # noqa: E731
        folder = Path(cfg.paths.output_dir) / "audit"
        if settings.labels.get("explain_run"):  # why a trained classifier disagrees with each label
            findings.label_issues = explain_label_issues(
                findings.label_issues, tables["train"], settings.labels.explain_run,
                cfg.logger.mlflow.tracking_uri, cfg.paths.cache_dir, folder)
        write_files(findings, folder, lines)
        run.log_artifacts(folder, "audit")
        metrics = findings.metrics() | planted_noise_scores(findings, datamodule.labelled.flipped_rows)
        run.log_metrics(metrics)
        print((folder / "audit.md").read_text(encoding="utf-8"))
        if settings.write_clean:
            write_clean(tables, findings, Path(settings.write_clean), datamodule.columns,
                        settings.clean_labels)
            run.log_artifacts(Path(settings.write_clean), "clean")  # for the jobs that train on them
        value = metrics.get("audit/test_in_train", 0.0)
        run.set_tags({OBJECTIVE_TAG: value})
        check_leakage(findings, settings.fail_on_leakage)
    return value


def planted_noise_scores(findings: Findings, flipped: set[int]) -> dict[str, float]:
    """With labels flipped on purpose (data.label_noise), how well the audit found them."""
    if not flipped:
        return {}
    flagged = set(findings.label_issues["row"])
    found = len(flagged & flipped)
    return {"audit/label_issue_precision": found / len(flagged) if flagged else 0.0,
            "audit/label_issue_recall": found / len(flipped)}


def check_leakage(findings: Findings, limit: float | None) -> None:
    if limit is None:
        return
    worst = findings.leaks[findings.leaks["earlier"] == "train"]
    over = worst[worst["share"] > limit]
    if len(over):
        row = over.sort_values("share").iloc[-1]
        raise UserError(f"{row.share:.1%} of the {row.split} examples have an exact or near copy in train "
                        f"({row.exact} exact, {row.near} near), more than audit.fail_on_leakage={limit}. "
                        "Remove them (dataeff-audit --write-clean DIR writes train without them) or raise "
                        "the limit; the copies are listed in the audit run's exact_duplicates.csv and "
                        "near_duplicates.csv.")


def write_clean(tables: dict[str, pd.DataFrame], findings: Findings, folder: Path, columns: dict,
                labels: str) -> None:
    """train/val/test.jsonl: training rows that copy a val/test example or another training row
    (the first copy stays) removed, flagged labels dropped or relabelled; val and test as they are."""
    if labels not in ("drop", "relabel"):
        raise UserError(f"audit.clean_labels={labels} is not drop or relabel.")
    train = tables["train"]
    leaked = leaked_train_rows(findings)
    repeats = findings.exact[(findings.exact["split"] == "train")]
    repeated = set(repeats[repeats.duplicated("group")]["row"])
    issues = findings.label_issues.set_index("row")
    clean = train.drop(index=sorted((leaked | repeated) & set(train.index)))
    flagged = sorted(set(issues.index) & set(clean.index))
    if labels == "drop":
        clean = clean.drop(index=flagged)
    else:
        clean.loc[flagged, "label"] = issues.loc[flagged, "suggested"]
    folder.mkdir(parents=True, exist_ok=True)
    names = {role: column for role, column in columns.items() if column}
    for split, table in {**tables, "train": clean}.items():  # jsonl: any text survives the round trip
        table.rename(columns=names).to_json(folder / f"{split}.jsonl", orient="records", lines=True,
                                            force_ascii=False)
    done = "dropped" if labels == "drop" else "set to the suggested class"
    print(f"Cleaned files in {folder}: train {len(train)} -> {len(clean)} rows ({len(leaked)} copied val or "
          f"test, {len(repeated)} repeated, {len(flagged)} likely label errors {done}).", file=sys.stderr)


def leaked_train_rows(findings: Findings) -> set[int]:
    """Training rows with an exact or near copy in val or test."""
    exact = findings.exact
    held_out = set(exact[exact["split"] != "train"]["group"])
    rows = set(exact[(exact["split"] == "train") & exact["group"].isin(held_out)]["row"])
    near = findings.near
    for side, other in (("a", "b"), ("b", "a")):
        pairs = near[(near[f"split_{side}"] == "train") & (near[f"split_{other}"] != "train")]
        rows |= set(pairs[f"row_{side}"])
    return rows
