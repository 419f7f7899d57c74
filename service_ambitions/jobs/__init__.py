"""The application layer: what the commands ask the library to do.

Each module holds one job concern:

- :mod:`.setup`: settings → reference data, prompts, models and the cache, all checked
  (:func:`prepare`, :func:`open_cache`);
- :mod:`.checks`: ``validate``'s pre-flight checks, each on its own;
- :mod:`.plan`: the dry-run estimate of a run or a map (calls, cache hits, tokens, cost);
- :mod:`.inputs`: what a job reads (the services still to do, the records to map);
- :mod:`.batch`: batch mode's part of a job (waves of batches, detaching, collecting);
- :mod:`.run`: ``run`` (:func:`generate`) and ``map`` (:func:`remap`), recorded from start
  to end.

The CLI calls these and the read side of ``runs`` (usage, tally, records).

May import: ``pipeline``, ``llm``, ``cache``, ``runs`` and the foundations; never ``views``
or ``cli``.
"""

__all__: list[str] = []
