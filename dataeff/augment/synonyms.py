"""Where EDA's synonyms come from: WordNet when it is installed, or any mapping you pass."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)
WORDNET_DIRS = ("/usr/share/wordnet",)  # Debian: wordnet-base + wordnet-sense-index


class Synonyms:
    """A word's synonyms, for EDA's replacements and insertions; `available` is False for a source
    that has none to give here (WordNet not installed)."""

    available = True

    def __call__(self, word: str) -> list[str]:
        raise NotImplementedError


class MappingSynonyms(Synonyms):
    """Synonyms from a dict (word -> list of synonyms): tests, domain lexicons."""

    def __init__(self, mapping: Mapping[str, list[str]]):
        self.mapping = {word.lower(): list(values) for word, values in mapping.items()}

    def __call__(self, word: str) -> list[str]:
        return [s for s in self.mapping.get(word.lower(), []) if s.lower() != word.lower()]


class WordNetSynonyms(Synonyms):
    """WordNet lemmas through NLTK's reader: Debian's `wordnet-base` files or NLTK's own data."""

    def __init__(self, root: str | None = None):
        self.reader = _wordnet_reader(root)

    @property
    def available(self) -> bool:
        return self.reader is not None

    def __call__(self, word: str) -> list[str]:
        if self.reader is None:
            return []
        names = {lemma.name().replace("_", " ").lower() for synset in self.reader.synsets(word)
                 for lemma in synset.lemmas()}
        names.discard(word.lower())
        return sorted(name for name in names if " " not in name)


def _wordnet_reader(root: str | None):
    try:
        import nltk
        from nltk.corpus import wordnet
    except ImportError:
        log.warning("WordNet synonyms need NLTK (pip install nltk) and WordNet data (apt install "
                    "wordnet-base wordnet-sense-index, or nltk.download('wordnet')); synonym "
                    "replacement and random insertion are disabled.")
        return None
    for folder in ([root] if root else []) + list(WORDNET_DIRS):
        if folder and (Path(folder) / "data.noun").exists() and (Path(folder) / "index.sense").exists():
            data = _as_nltk_data(Path(folder))
            if data not in nltk.data.path:  # one entry, however many augmenters are built
                nltk.data.path.insert(0, data)
            break
    try:
        wordnet.ensure_loaded()
        return wordnet
    except LookupError:
        log.warning("No WordNet data found (apt install wordnet-base wordnet-sense-index, or "
                    "nltk.download('wordnet')); synonym replacement and random insertion are "
                    "disabled.")
        return None


# WordNet 3.0's lexicographer files (wnintro(5WN) "lexnames"), numbered 00-44, with their part of
# speech (1 noun, 2 verb, 3 adjective, 4 adverb).
LEXNAMES = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event",
    "noun.feeling", "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object",
    "noun.person", "noun.phenomenon", "noun.plant", "noun.possession", "noun.process",
    "noun.quantity", "noun.relation", "noun.shape", "noun.state", "noun.substance", "noun.time",
    "verb.body", "verb.change", "verb.cognition", "verb.communication", "verb.competition",
    "verb.consumption", "verb.contact", "verb.creation", "verb.emotion", "verb.motion",
    "verb.perception", "verb.possession", "verb.social", "verb.stative", "verb.weather", "adj.ppl",
)
POS_NUMBER = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}


def _as_nltk_data(folder: Path) -> str:
    """An NLTK data folder (`corpora/wordnet/`) made once in the user's cache from a plain WordNet
    database folder such as Debian's. NLTK >= 3.9 reads only under its data paths and refuses
    symlinks out of them, so the files are copied; Debian ships no `lexnames`, which NLTK's reader
    opens on start, so the standard one is written beside them."""
    data = Path.home() / ".cache" / "dataeff" / "nltk_data"
    corpus = data / "corpora" / "wordnet"
    if not (corpus / "lexnames").exists():
        shutil.copytree(folder, corpus, ignore=shutil.ignore_patterns("bin", "pixmaps", "wnres"),
                        dirs_exist_ok=True)
        if not (folder / "lexnames").exists():
            (corpus / "lexnames").write_text("".join(
                f"{number:02d}\t{name}\t{POS_NUMBER[name.split('.')[0]]}\n"
                for number, name in enumerate(LEXNAMES)))
    return str(data)
