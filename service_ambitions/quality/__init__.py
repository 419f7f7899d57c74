"""Answer quality: deterministic findings on output records, no model needed.

- :mod:`.rules`: each rule over one service's evolution, and the per-service score;
- :mod:`.report`: findings over a whole file of records, summed for ``check``, ``view``
  and ``run --check``.

May import: ``inputs``, ``reference``, ``config``, ``core``; never a model or the cache.
"""

__all__: list[str] = []
