"""Run records, resume and the one-writer lock: everything a run leaves behind besides its output.

- :mod:`.records`: the manifest and events of a run, and reading them back;
- :mod:`.resume`: finding the run to continue, what it already wrote, and input order;
- :mod:`.lock`: one live run per output;
- :mod:`.suspended`: calls waiting on provider batches (batch mode), for the run that collects them;
- :mod:`.batches`: a batch run's batches as its events tell them (``runs show``, ``report``).

May import: the foundations (``inputs``, ``reference``, ``config``, ``core``); never ``cache``.
"""

__all__: list[str] = []
