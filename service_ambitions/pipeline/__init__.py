"""What to compute for each service, and in which order; blind to where answers come from.

- :mod:`.run`: :class:`~.run.Pipeline`, concurrency across services, ordering, assembly;
- :mod:`.stages`: each stage's request and the reading of its answer; the stage plan;
- :mod:`.calls`: one call of a service, its span and its event;
- :mod:`.snapshots`: one cache row for a whole service, read before its stages.

May import: ``llm``, ``cache`` and the foundations (``inputs``, ``reference``, ``config``, ``core``).
"""

__all__: list[str] = []
