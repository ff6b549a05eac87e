"""Active learning as MLflow runs: `dataeff-train task=classify al=<strategy>` is a loop run whose
rounds are its child runs.

Each round is an ordinary classify job (`dataeff-train <the loop's overrides> ~al`) trained on a
file of the examples labelled so far, found again by a hash of its overrides like a study's
pretraining, so a loop run again reuses the rounds it finished. The round's exported model then
scores the rest of the pool and the strategy picks the next query. Round runs carry `al.strategy`,
`al.round`, `al.labelled` and `al_queried.csv` (pool row, round, score, label of every labelled
example), so any round can be reproduced; the loop run gets each round's test metrics and the
scoring time at step = labels so far.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd
import torch
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME
from omegaconf import DictConfig, open_dict

from dataeff.active.acquisition import NEEDS, STRATEGIES
from dataeff.active.loop import Loop, Oracle
from dataeff.active.scoring import Scorer
from dataeff.data.labelled import LabelledTextDataModule
from dataeff.errors import UserError
from dataeff.models.vectors import Texts, encoder_vectors
from dataeff.overrides import keep_overrides, quote, typed_overrides
from dataeff.runs.artifacts import fetch_run_model
from dataeff.runs.job_run import JobRun
from dataeff.runs.keys import LOOP_ROLE, digest, recorded_objective
from dataeff.runs.tags import OBJECTIVE_TAG
from dataeff.stages.subrun import Where, stage_run
from dataeff.tokenizer import cached_wordpiece, wordpiece_folder

log = logging.getLogger(__name__)
ROUND_ROLE = "al_round"
# what each round sets itself: its labelled file (jsonl, its labels final: no noise added again),
# the whole file as its budget, the pool's tokenizer and class names; rounds never audit
SET_BY_LOOP = ("al", "data.train", "data.train.path", "data.train.format", "data.fraction", "data.shots",
               "data.label_noise", "data.labels", "tokenizer.path", "audit.before_study")


def run_active_learning(cfg: DictConfig, datamodule, key: str) -> float | None:
    """The loop: round 0 on the initial draw, then `al.rounds` queries; the last round's objective."""
    al = cfg.al
    if cfg.trainer.get("fast_dev_run"):  # a smoke test smoke-tests one round on a few examples
        al.rounds, al.initial_size = min(al.rounds, 1), min(al.initial_size, 8)
        al.query_size = min(al.query_size, 4)
    check_loop(cfg, datamodule)
    table = datamodule.source_table("train")
    check_pool_size(al, len(table))
    pool = Texts(table["text"].tolist(), table["pair"].tolist() if "pair" in table else None)
    loop = Loop(al.strategy, pool, Oracle(table["label"].tolist()), al.query_size, al.seed, al.mc_samples)
    rounds = Rounds(cfg, key, table.index.to_numpy(), datamodule.columns, pool, datamodule.label_names)
    with open_dict(cfg):
        cfg.tags["role"] = LOOP_ROLE
    with JobRun(cfg, None, key) as run:
        vectors = initial_vectors(cfg, pool) if al.initial == "kmeans" else None
        loop.start(al.initial_size, vectors)
        round_run, value = None, None
        for number in range(al.rounds + 1):
            if number:
                scorer = Scorer(fetch_run_model(round_run, rounds.where.tracking_uri, cfg.paths.cache_dir),
                                cfg.data.max_length, al.score_batch_size) if NEEDS[al.strategy] else None
                picked = loop.query(scorer, number)
                seconds = scorer.seconds if scorer else 0.0
                del scorer  # its model's GPU memory goes back before the next round trains
                torch.cuda.empty_cache()
                log.info("Round %d: %s queried %d examples (%.1f s of scoring)", number, al.strategy,
                         len(picked), seconds)
                run.log_metrics({"al/score_seconds": seconds}, len(loop.queries))
            round_run, value = rounds.train(loop, number, round_run, run)
        run.set_tags({OBJECTIVE_TAG: value})
    return value


def check_loop(cfg: DictConfig, datamodule) -> None:
    al = cfg.al
    if al.strategy not in STRATEGIES:
        raise UserError(f"al.strategy={al.strategy} is not a strategy; use one of {', '.join(STRATEGIES)} "
                        "(al=<strategy> picks one).")
    if cfg.task.name != "classify" or not isinstance(datamodule, LabelledTextDataModule):
        raise UserError("Active learning queries labels for a text classifier: use it with task=classify and "
                        "labelled text (data=labelled data.train.path=..., or data=sst2).")
    if al.initial not in ("random", "kmeans"):
        raise UserError(f"al.initial={al.initial} is not random or kmeans.")
    if min(al.initial_size, al.query_size) < 1 or al.rounds < 0:
        raise UserError("al.initial_size and al.query_size must be at least 1 and al.rounds at least 0.")
    if al.initial == "kmeans" and cfg.init.get("kind") != "huggingface":
        raise UserError(f"al.initial=kmeans chooses a diverse first set on a pretrained encoder's vectors, "
                        f"and init={cfg.init.name} brings none before the loop; use init=minilm (or "
                        "init=huggingface init.source=<folder>), or al.initial=random.")


def check_pool_size(al: DictConfig, pool: int) -> None:
    wanted = al.initial_size + al.rounds * al.query_size
    if wanted > pool:
        raise UserError(f"The loop would label {wanted} examples (al.initial_size + al.rounds x "
                        f"al.query_size) but the pool (the training file) has {pool}; lower "
                        "al.rounds or al.query_size.")


def initial_vectors(cfg: DictConfig, pool: Texts):
    return encoder_vectors(cfg.init.source, pool, cfg.data.max_length, cfg.al.score_batch_size)


class Rounds:
    """Each round as a classify job on the labelled file, run (or found) like a pretraining stage."""

    def __init__(self, cfg: DictConfig, key: str, rows, columns: dict, pool: Texts, labels: list[str]):
        self.cfg, self.rows, self.columns = cfg, rows, columns
        # the task's classes (not any example's label): a round whose examples lack one still has it
        class_names = "[" + ",".join(quote(label) for label in labels) + "]"
        self.where = Where.of(cfg)
        self.folder = Path(cfg.paths.cache_dir) / "active_learning"
        # the loop's key in each round's: a strategy's round 0 is its own run, not shared with the
        # loops of other strategies (a run has one parent), and a loop run again finds its rounds
        self.base = [*loop_overrides(typed_overrides()), "~al", "data.fraction=1.0",
                     "data.shots=null", "++data.label_noise=0", "audit.before_study=false",
                     f"++data.labels={class_names}", *pool_tokenizer(cfg, pool),
                     f"++tags.al_loop={quote(key)}"]

    def train(self, loop: Loop, number: int, previous: str | None,
              loop_run: JobRun) -> tuple[str, float | None]:
        base = self.base
        if previous is not None and self.cfg.al.warm_start:  # from the last round, not the initial encoder,
            base = [*without_start(base), "init=mlflow_run", f"init.source={previous}",  # at the loop's rate
                    f"task.optimizer.lr={self.cfg.task.optimizer.lr}"]
        path = self.labelled_file(loop)
        labelled = f"++data.train={{_target_:dataeff.data.sources.TextFile,path:{quote(path)},format:jsonl}}"
        run_id = stage_run([*base, labelled], self.where, ROUND_ROLE)
        return run_id, self.record(run_id, loop, number, loop_run)

    def record(self, run_id: str, loop: Loop, number: int, loop_run: JobRun) -> float | None:
        """The round joins this loop (a round found again too): its tags and queried examples, and
        its test metrics on the loop run; returns its objective."""
        client = MlflowClient(self.where.tracking_uri)
        labelled = len(loop.queries)
        for name, value in {MLFLOW_PARENT_RUN_ID: loop_run.run_id,
                            MLFLOW_RUN_NAME: f"{loop.strategy} round {number}", "al.strategy": loop.strategy,
                            "al.round": number, "al.labelled": labelled, "al.initial": self.cfg.al.initial,
                            "al.loop_run_id": loop_run.run_id}.items():
            client.set_tag(run_id, name, str(value))
        client.log_text(run_id, self.queried_csv(loop), "al_queried.csv")
        round_run = client.get_run(run_id)
        value = recorded_objective(round_run)
        shown = {k: v for k, v in round_run.data.metrics.items() if k.startswith("test/")}
        loop_run.log_metrics({**shown, **({self.cfg.task.objective: value} if value is not None else {}),
                              "al/labelled": labelled}, labelled)
        return value

    def labelled_file(self, loop: Loop) -> Path:
        """The labelled examples as the data config reads them, named by their content."""
        names = self.columns
        records = [{names["text"]: loop.pool.text[q.position], names["label"]: str(q.label),
                    "pool_row": int(self.rows[q.position]),
                    **({names["pair"]: loop.pool.pair[q.position]} if loop.pool.pair else {})}
                   for q in loop.queries]
        text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
        path = self.folder / f"labelled-{digest(text)}.jsonl"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = path.with_suffix(".partial")
            partial.write_text(text, encoding="utf-8")
            partial.replace(path)
        return path

    def queried_csv(self, loop: Loop) -> str:
        table = pd.DataFrame({"pool_row": [int(self.rows[q.position]) for q in loop.queries],
                              "round": [q.round for q in loop.queries],
                              "score": [q.score for q in loop.queries],
                              "label": [q.label for q in loop.queries]})
        out = io.StringIO()
        table.to_csv(out, index=False)
        return out.getvalue()


def loop_overrides(overrides) -> list[str]:
    """The loop job's overrides that its rounds share: not the ones the loop sets per round."""
    return keep_overrides(overrides, lambda key: key not in SET_BY_LOOP
                          and not key.startswith(("al.", "hydra.")))


def without_start(overrides: list[str]) -> list[str]:
    """Without what sets the starting point and its learning rate (a warm start sets both)."""
    return keep_overrides(overrides, lambda key: key.split(".")[0] != "init" and key != "task.optimizer.lr")


def pool_tokenizer(cfg: DictConfig, pool: Texts) -> list[str]:
    """From scratch, every round uses one WordPiece trained on the whole pool (its texts are not
    labels), not one per labelled file."""
    if cfg.init.get("kind") != "scratch" or cfg.model.get("pretrained") or cfg.tokenizer.get("path"):
        return []
    tok = cfg.tokenizer
    texts = pool.text + (pool.pair or [])
    cached_wordpiece(texts, cfg.paths.cache_dir, tok.vocab_size, tok.lowercase, tok.min_frequency)
    folder = wordpiece_folder(texts, cfg.paths.cache_dir, tok.vocab_size, tok.lowercase, tok.min_frequency)
    return [f"tokenizer.path={quote(folder)}"]

