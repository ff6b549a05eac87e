"""Where EDA's synonyms come from: WordNet when it is installed, or any mapping you pass."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)
WORDNET_DIRS = ("/usr/share/wordnet",)  # Debian's wordnet-base


class MappingSynonyms:
    """Synonyms from a dict (word -> list of synonyms): tests, domain lexicons."""

    def __init__(self, mapping: Mapping[str, list[str]]):
        self.mapping = {word.lower(): list(values) for word, values in mapping.items()}

    def __call__(self, word: str) -> list[str]:
        return [s for s in self.mapping.get(word.lower(), []) if s.lower() != word.lower()]


class WordNetSynonyms:
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
        from nltk.corpus.reader.wordnet import WordNetCorpusReader
    except ImportError:
        log.warning("WordNet synonyms need NLTK (pip install nltk) and WordNet data (apt install "
                    "wordnet-base, or nltk.download('wordnet')); synonym replacement and random "
                    "insertion are disabled.")
        return None
    for folder in ([root] if root else []) + list(WORDNET_DIRS):
        if folder and (Path(folder) / "data.noun").exists():
            return WordNetCorpusReader(folder, None)
    try:
        from nltk.corpus import wordnet

        wordnet.ensure_loaded()
        return wordnet
    except LookupError:
        log.warning("No WordNet data found (apt install wordnet-base, or nltk.download('wordnet')); "
                    "synonym replacement and random insertion are disabled.")
        return None
