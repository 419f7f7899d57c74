"""Settings and where they come from: defaults, ``config/app.yaml``, ``.env``, ``SA_*`` variables.

- :mod:`.settings`: :class:`~.settings.Settings` and their sources; misspelt keys are errors;
- :mod:`.files`: reading a settings file into one readable error per problem;
- :mod:`.cache_mode`: how a run uses the cache and where it lives by default (a setting's
  values, importable without the cache).

May import: ``core``.
"""

__all__: list[str] = []
