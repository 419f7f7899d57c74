"""Views of a run's result for the people who read it: readers of output records, never of the cache.

- :mod:`.records`: evolution records of any schema version, migrated on the way in, with
  unreadable lines counted and their reasons kept;
- :mod:`.diff`: what changed between two runs' records.

May import: ``inputs``, ``reference``, ``config``, ``core``; never ``jobs`` nor anything
that calls a model.
"""

__all__: list[str] = []
