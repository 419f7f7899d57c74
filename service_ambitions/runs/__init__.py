"""Run journals, resume and the one-writer lock: everything a run leaves behind besides its output.

- :mod:`.journal`: the manifest and events of a run, and reading them back;
- :mod:`.resume`: finding the run to continue, what it already wrote, and input order;
- :mod:`.lock`: one live run per output;
- :mod:`.suspended`: calls waiting on provider batches (batch mode), for the run that collects them;
- :mod:`.tally`: the one fold over a run's events (panel, summary, ``report``, counts);
- :mod:`.usage`: ``report``'s document, from that fold;
- :mod:`.details`: what ``runs show`` adds to the manifest: each service's state, and a batch run's batches.

May import: the foundations (``inputs``, ``reference``, ``config``, ``core``); never ``cache``.
"""

__all__: list[str] = []
