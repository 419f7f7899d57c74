"""Shortlists of big catalogues: the items most relevant to the features being mapped.

A mapping call carries its catalogue as a table, so a 500-item catalogue makes every call
long and expensive, and most rows are irrelevant to the handful of features in it. Above a
size threshold, each call instead carries the items BM25 (lexical retrieval, via
``bm25s``: no model to download, deterministic) ranks highest for those features. Every
feature gets its best items in turn, so one feature with many matching words cannot crowd
out the rest. Ids the model names are still checked against the whole catalogue.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.install import install_source
from service_ambitions.reference.data import Catalogue, CatalogueItem

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Shortlister", "tokens"]

_WORD = re.compile(r"[a-z0-9]+")
# Words too common in catalogue and feature text to say anything about relevance.
_STOPWORD_TEXT = (
    "a an and are as at be by for from has have in is it its of on or that the their this to "
    "was were will with can our your they them service services system systems data"
)
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def tokens(text: str) -> list[str]:
    """Lower-case words without stop words: what BM25 counts."""
    return [word for word in _WORD.findall(text.lower()) if word not in _STOPWORDS]


class Shortlister:
    """Ranks one catalogue's items against feature texts; the index is built on first use."""

    def __init__(self, catalogue: Catalogue) -> None:
        """A shortlister for ``catalogue``.

        Raises:
            ConfigError: the optional ``bm25s`` package (the ``shortlist`` extra) is not installed.
        """
        if importlib.util.find_spec("bm25s") is None:
            raise ConfigError(
                f"catalogue {catalogue.field!r} has {len(catalogue.items)} items, more than shortlist.threshold, "
                "and shortlists need the optional 'shortlist' extra",
                hint="in a checkout: uv sync --extra shortlist; for an installed tool: uv tool install --reinstall "
                f"--with bm25s {install_source()}; or set shortlist.threshold to null to send whole catalogues",
            )
        self.catalogue = catalogue

    @cached_property
    def _index(self) -> Any:
        import bm25s  # about half a second to import: only runs with a big catalogue pay it

        items = self.catalogue.items
        corpus = [tokens(f"{item.name} {item.description} {item.id.replace('-', ' ')}") for item in items]
        index = bm25s.BM25()
        index.index(corpus, show_progress=False)
        return index

    def pick(self, queries: Sequence[str], size: int) -> list[CatalogueItem]:
        """Up to ``size`` items, in catalogue order, taking each query's best items in turn.

        Items no query shares a word with are never picked: a shorter list is better than
        padding it with noise.
        """
        rankings = [self._ranking(query) for query in queries]
        chosen: dict[int, None] = {}
        depth = 0
        while len(chosen) < size and any(depth < len(ranking) for ranking in rankings):
            for ranking in rankings:
                if depth < len(ranking) and len(chosen) < size:
                    chosen.setdefault(ranking[depth])
            depth += 1
        return [self.catalogue.items[i] for i in sorted(chosen)]

    def _ranking(self, query: str) -> list[int]:
        """Item positions with a positive score, best first (ties in catalogue order)."""
        words = tokens(query)
        if not words:
            return []
        import numpy as np

        scores: np.ndarray[Any, Any] = self._index.get_scores(words)
        # Best first; a stable sort keeps catalogue order among equal scores. Runs for every
        # mapping prompt, cached or not (the prompt is the cache key), so it stays in numpy.
        order = np.argsort(-scores, kind="stable")
        return [int(i) for i in order[: int(np.count_nonzero(scores > 0))]]
