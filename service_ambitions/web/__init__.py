"""The web face: ``service-ambitions serve``, a runtime API over runs (the ``web`` extra).

- :mod:`.app`: the Starlette application — token authentication, the JSON API over runs
  (list, detail with each service's state, report, events as server-sent events resumable
  with ``Last-Event-ID``) and the cache's stats, and its OpenAPI description.

A face like ``cli``: it reads runs and asks ``jobs``; it never talks to a provider or the
cache directly (an import-linter contract holds it to that).
"""

__all__: list[str] = []
