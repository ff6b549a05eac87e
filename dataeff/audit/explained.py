"""The audit's likely label errors explained (audit.labels.explain_run): a text classifier trained
on this data, a finished run's, says which tokens its prediction for each flagged row rests on,
so a person sees why the model disagrees with the label. The page is audit/explanations/, and each
row of label_issues.csv links to its example there."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dataeff.explain.from_run import encoded, preset_explainer, run_classifier

PAGE = "explanations/explanations.html"


def explain_label_issues(issues: pd.DataFrame, train: pd.DataFrame, run_id: str, tracking_uri: str,
                         cache_dir: str, folder: Path) -> pd.DataFrame:
    """`issues` with an `explanation` column (a link into the page written under `folder`) for
    the first `max_examples` (the issues come most doubtful first); the rest are left blank."""
    if issues.empty:
        return issues.assign(explanation=pd.Series(dtype=str))
    explainer = preset_explainer([])
    model = run_classifier(run_id, tracking_uri, cache_dir)
    rows = [int(row) for row in issues["row"]][:explainer.max_examples]
    flagged = train.loc[rows]
    examples = encoded(model, list(flagged["text"]), list(flagged["label"]),
                       f"the training data (audit.labels.explain_run={run_id})",
                       list(flagged["pair"]) if "pair" in flagged else None)
    explainer.explain(explainer.reader(model.net, model.tokenizer), examples, model.names,
                      folder / "explanations", ids=rows, shown="likely label error")
    links = [f"{PAGE}#example-{row}" for row in rows] + [""] * (len(issues) - len(rows))
    return issues.assign(explanation=links)
