"""Foundations every room may use: errors and exit codes, domain models, events, secrets, time.

- :mod:`.errors`: every error class and the one exit-code table;
- :mod:`.problems`: validation errors as one readable line;
- :mod:`.secrets`: scrubbing keys from everything written or printed;
- :mod:`.clock`: the one source of "now";
- :mod:`.models`: the domain's input and output models (services, evolutions, stages);
- :mod:`.events`: typed events, everything a run did, one JSON line each;
- :mod:`.telemetry`: OpenTelemetry spans and metrics, logfire when configured;
- :mod:`.install`: where this installation came from (what install hints name).

May import: nothing of this package outside ``core``.
"""

__all__: list[str] = []
