"""The web face: ``service-ambitions serve`` (the ``web`` extra).

- :mod:`.app`: the Starlette application — token, same-origin and security headers.
- :mod:`.state`: what it serves, and a run id made a run's directory.
- :mod:`.api`: the JSON API (workspace, upload, validate, plan, start/stop/continue, runs,
  live figures, report, events, findings, roadmap, diff, cache) and its OpenAPI description.
- :mod:`.pages`: the server-rendered pages (``templates/``, ``static/``).
- :mod:`.agui`: each run as an AG-UI event stream.
- :mod:`.reads` and :mod:`.memo`: what pages and API read, kept while its files are unchanged.
- :mod:`.server`: uvicorn, stopping quickly and quietly.

A face like ``cli``: it asks ``jobs`` (runs start as the CLI's own processes) and reads
runs; it never talks to a provider or the cache directly (an import-linter contract holds
it to that).
"""

__all__: list[str] = []
