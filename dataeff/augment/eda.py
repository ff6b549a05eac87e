"""EDA (Wei & Zou 2019): synonym replacement, random insertion, random swap, random deletion.

Each operation edits n = max(1, alpha x words) words of a whitespace-tokenised sentence; each
augmented copy gets one operation, the operations taking turns. Without synonyms (no WordNet),
replacement and insertion are skipped, and the others still run.
"""

from __future__ import annotations

import random

from dataeff.augment.base import TextAugmenter
from dataeff.augment.synonyms import Synonyms, WordNetSynonyms
from dataeff.errors import UserError

OPERATIONS = ("synonym_replacement", "random_insertion", "random_swap", "random_deletion")
_STOPWORDS = """a an the and or but if of at by for with about to from in on is are was were be been
it its this that these those i me my we our you your he him his she her they them their what which
who whom do does did not no so than too very can will"""
STOPWORDS = frozenset(_STOPWORDS.split())


def edits(alpha: float, words: list[str]) -> int:
    return max(1, int(alpha * len(words)))


def synonym_replacement(words: list[str], n: int, rng: random.Random, synonyms) -> list[str]:
    """Replace up to n distinct non-stopwords, each by one of its synonyms."""
    out = list(words)
    candidates = [i for i, w in enumerate(words) if w.lower() not in STOPWORDS]
    rng.shuffle(candidates)
    replaced = 0
    for i in candidates:
        options = synonyms(words[i])
        if options:
            out[i] = rng.choice(options)
            replaced += 1
            if replaced == n:
                break
    return out


def random_insertion(words: list[str], n: int, rng: random.Random, synonyms) -> list[str]:
    """Insert n synonyms of random words at random places (fewer only if no word has one)."""
    out = list(words)
    with_synonyms = [w for w in words if synonyms(w)]
    for _ in range(n if with_synonyms else 0):
        out.insert(rng.randint(0, len(out)), rng.choice(synonyms(rng.choice(with_synonyms))))
    return out


def random_swap(words: list[str], n: int, rng: random.Random, synonyms=None) -> list[str]:
    """Swap two random positions, n times: the multiset of words is unchanged."""
    out = list(words)
    for _ in range(n if len(out) > 1 else 0):
        i, j = rng.sample(range(len(out)), 2)
        out[i], out[j] = out[j], out[i]
    return out


def random_deletion(words: list[str], p: float, rng: random.Random, synonyms=None) -> list[str]:
    """Drop each word with probability p; never returns an empty sentence."""
    if len(words) <= 1:
        return list(words)
    kept = [w for w in words if rng.random() > p]
    return kept or [rng.choice(words)]


FUNCTIONS = {"synonym_replacement": synonym_replacement, "random_insertion": random_insertion,
             "random_swap": random_swap, "random_deletion": random_deletion}


class EDA(TextAugmenter):
    """One EDA operation per augmented sentence, with a rate `alpha_*` per operation (0: off)."""

    def __init__(self, alpha_sr: float = 0.1, alpha_ri: float = 0.1, alpha_rs: float = 0.1,
                 alpha_rd: float = 0.1, synonyms: Synonyms | None = None):
        self.alphas = dict(zip(OPERATIONS, (alpha_sr, alpha_ri, alpha_rs, alpha_rd), strict=True))
        for name, alpha in self.alphas.items():
            if not 0 <= alpha <= 1:
                raise UserError(f"EDA's rate for {name} is {alpha}; rates are in [0, 1] (0 turns it off), "
                                "e.g. augment.text.eda.alpha_sr=0.1.")
        self.synonyms = synonyms if synonyms is not None else WordNetSynonyms()
        has_synonyms = self.synonyms.available
        self.operations = [name for name, alpha in self.alphas.items() if alpha > 0 and (
            has_synonyms or name not in ("synonym_replacement", "random_insertion"))]
        if not self.operations:
            raise UserError("Every EDA operation is off (all rates 0, or no synonyms for the ones that are "
                            "on); set e.g. augment.text.eda.alpha_rs=0.1.")

    def __call__(self, text: str, rng: random.Random, copy: int = 0) -> str:
        words = text.split()
        if not words:
            return text
        name = self.operations[copy % len(self.operations)]
        alpha = self.alphas[name]
        amount = alpha if name == "random_deletion" else edits(alpha, words)
        return " ".join(FUNCTIONS[name](words, amount, rng, self.synonyms))
